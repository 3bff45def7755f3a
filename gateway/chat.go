package gateway

import (
	"strings"
	"unicode"
)

// Chat is the built-in business logic: GatewayWorker's demo chat, line
// for line. A newcomer gets "Hello <client_id>", everyone gets
// "<client_id> login", each message becomes "<client_id> said <text>"
// to everyone, and "<client_id> logout" follows a departure. One line
// goes beyond the demo: the newcomer also gets "online <id> <id> ...",
// the clients connected before it, so that a page can list them.
//
// Set Hub before the hub serves its first client:
//
//	chat := &gateway.Chat{}
//	hub := gateway.New(gateway.Options{Handler: chat})
//	chat.Hub = hub
type Chat struct {
	NopHandler
	Hub *Hub
}

// OnConnect greets the newcomer and tells everyone.
func (c *Chat) OnConnect(ci ClientInfo) {
	c.Hub.SendToClient(ci.ID, []byte("Hello "+ci.ID))
	// Unsorted, unlike GetAllClientIDList: a storm of reconnects should
	// not sort every id once per newcomer. The page sorts its list.
	online := []byte("online")
	for _, other := range c.Hub.snapshot(nil) {
		if other.id != ci.ID {
			online = append(append(online, ' '), other.id...)
		}
	}
	c.Hub.SendToClient(ci.ID, online)
	c.Hub.SendToAll([]byte(ci.ID+" login"), nil, nil)
}

// OnMessage repeats a message to everyone. Replies to the heartbeat's
// ping_data (the chat page answers {"type":"pong"}) are not repeated.
func (c *Chat) OnMessage(ci ClientInfo, data []byte) {
	if len(data) == 0 || string(data) == `{"type":"pong"}` {
		return
	}
	text := stripControls(string(data))
	if text == "" {
		return
	}
	c.Hub.SendToAll([]byte(ci.ID+" said "+text), nil, nil)
}

// stripControls removes control characters other than tab, so that a
// client cannot move the cursor of, clear or ring the terminal of the
// telnet users it chats with (ANSI escapes begin with ESC).
func stripControls(s string) string {
	clean := true
	for _, r := range s {
		if r != '\t' && unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r != '\t' && unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// OnClose tells everyone who left.
func (c *Chat) OnClose(ci ClientInfo) {
	c.Hub.SendToAll([]byte(ci.ID+" logout"), nil, nil)
}
