package gatewayworker

import "log/slog"

// Chat is gateway.Chat, the built-in demo chat, as BusinessWorker
// events, line for line: the newcomer gets "Hello <client_id>" and
// "online <id> <id> ..." (the clients connected before it), everyone
// gets "<client_id> login", each message becomes "<client_id> said
// <text>" to everyone, and "<client_id> logout" follows a departure.
// examples/gatewayworker/Events.php does the same in PHP.
//
// It is a [WorkerHandler] for a [Worker]; Logger (nil discards) is told
// of commands that fail.
type Chat struct {
	NopWorkerHandler
	Logger *slog.Logger
}

// OnConnect greets the newcomer, lists who is there and tells everyone.
func (c Chat) OnConnect(e *Event) {
	w := e.Worker
	c.check(w.SendToClient(e.ClientID, []byte("Hello "+e.ClientID)))
	online := "online"
	ids, err := w.GetAllClientIDList(e.Context())
	c.check(err)
	for _, id := range ids {
		if id != e.ClientID {
			online += " " + id
		}
	}
	c.check(w.SendToClient(e.ClientID, []byte(online)))
	c.check(w.SendToAll([]byte(e.ClientID+" login"), nil, nil))
}

// OnMessage repeats a message to everyone. Replies to the heartbeat's
// ping_data (the chat page answers {"type":"pong"}) are not repeated.
func (c Chat) OnMessage(e *Event) {
	if len(e.Message) == 0 || string(e.Message) == `{"type":"pong"}` {
		return
	}
	c.check(e.Worker.SendToAll([]byte(e.ClientID+" said "+string(e.Message)), nil, nil))
}

// OnClose tells everyone who left.
func (c Chat) OnClose(e *Event) {
	c.check(e.Worker.SendToAll([]byte(e.ClientID+" logout"), nil, nil))
}

func (c Chat) check(err error) {
	if err != nil && c.Logger != nil {
		c.Logger.Warn("chat: a command failed", "err", err)
	}
}
