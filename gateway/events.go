package gateway

import (
	"net/http"
	"net/netip"
	"net/url"
)

// Handler receives the business events of a hub, as GatewayWorker's
// Events class does. For one client, events arrive in order, one at a
// time, on the goroutine that reads that client at the moment (so
// OnMessage calls for one client never overlap); different clients'
// events run concurrently. A handler that blocks delays only its own
// client's reading.
//
// Handlers push with the hub's API (SendToClient, JoinGroup, ...); those
// calls never block on a socket.
type Handler interface {
	// OnConnect runs when a client has connected and has its id, before
	// any of its messages.
	OnConnect(c ClientInfo)
	// OnWebSocketConnect runs after OnConnect for WebSocket clients, with
	// the upgrade request's path, headers, query and cookies.
	OnWebSocketConnect(c ClientInfo, r *WebSocketRequest)
	// OnMessage runs for each message (a WebSocket message, or a line of
	// the text protocol without its line end). data is valid only until
	// OnMessage returns.
	OnMessage(c ClientInfo, data []byte)
	// OnClose runs once when the connection has ended, whoever ended it.
	// The client is no longer in the hub; c.UID, c.Session and
	// c.SessionRaw hold its last uid binding and session.
	OnClose(c ClientInfo)
}

// ClientInfo describes the client an event is about.
type ClientInfo struct {
	// ID is the client id.
	ID string
	// Addr is the client's address: the peer of the edge connection,
	// or the one trusted forwarding headers name.
	Addr netip.AddrPort
	// LocalAddr is the address the client connected to: the text
	// listener's, the WebSocket listener's, or for a client that came
	// through the edge the edge's listener address. Zero if unknown.
	LocalAddr netip.AddrPort
	// Transport is "websocket" or "text".
	Transport string
	// UID and Session are set for OnClose only: the client's last uid
	// and session. A session last written raw is converted by
	// [Options.SessionCodec] (nil if it could not be), and then
	// SessionRaw holds its bytes; otherwise SessionRaw is nil.
	UID        string
	Session    Session
	SessionRaw []byte
}

// WebSocketRequest is what OnWebSocketConnect learns from the upgrade
// request. The address the client connected to is the ClientInfo's
// LocalAddr.
type WebSocketRequest struct {
	// Method is the request method ("GET").
	Method string
	// RequestURI is the request target as the client sent it: path and
	// query, not re-encoded.
	RequestURI string
	// Proto is the protocol version ("HTTP/1.1").
	Proto string
	// Host is the Host header, port included if the client sent one
	// (Go keeps it out of Header).
	Host string
	// Path is the decoded path of RequestURI.
	Path string
	// Header holds the request's headers but Host.
	Header http.Header
	// Query is the parsed query of RequestURI.
	Query url.Values
	// Cookies maps each cookie's name to its value.
	Cookies map[string]string
}

// NopHandler ignores every event. Embed it to implement only some.
type NopHandler struct{}

func (NopHandler) OnConnect(ClientInfo)                             {}
func (NopHandler) OnWebSocketConnect(ClientInfo, *WebSocketRequest) {}
func (NopHandler) OnMessage(ClientInfo, []byte)                     {}
func (NopHandler) OnClose(ClientInfo)                               {}

// Session is a client's key/value session (GatewayWorker's $_SESSION).
// Values are what JSON decodes to.
type Session map[string]any

// clone returns a deep copy, so that a caller can keep or change it
// without touching the hub's copy.
func (s Session) clone() Session {
	if s == nil {
		return nil
	}
	c := make(Session, len(s))
	for k, v := range s {
		c[k] = cloneValue(v)
	}
	return c
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(v))
		for k, e := range v {
			c[k] = cloneValue(e)
		}
		return c
	case Session:
		return v.clone()
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = cloneValue(e)
		}
		return c
	default:
		return v
	}
}
