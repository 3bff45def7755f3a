package gateway

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the push API
// maps them to HTTP statuses.
var (
	// ErrClientNotFound: no client with that id is connected here.
	ErrClientNotFound = errors.New("gateway: client not found")
	// ErrBadClientID: the string is not a 20-hex-digit client id.
	ErrBadClientID = errors.New("gateway: malformed client id")
	// ErrBadCall: a Call names an unknown method or lacks an argument.
	ErrBadCall = errors.New("gateway: bad call")
	// ErrShutdown: the hub is shutting down and takes no new clients.
	ErrShutdown = errors.New("gateway: shutting down")
	// ErrNoSessionCodec: a raw session method was called on a hub
	// without Options.SessionCodec.
	ErrNoSessionCodec = errors.New("gateway: no session codec")
)

// Disconnect says why the gateway ended a connection. WebSocket clients
// receive Code and Reason in their close frame; Reason is at most 123
// bytes, the limit of a close frame.
type Disconnect struct {
	Code   int
	Reason string
}

// The disconnects the hub gives. A client dropped as too slow (its queue
// overflowed, or its socket took nothing for send_timeout) gets no close
// frame: the writer that would send it is the part that is stuck.
const (
	codeNormal   = 1000 // CloseClient
	codeGoAway   = 1001 // shutdown, heartbeat timeout
	codeProtocol = 1002 // a client broke RFC 6455
	codeBadData  = 1007 // a close frame's reason is not UTF-8
	codeTooBig   = 1009 // a message over max_message_bytes
	reasonTooBig = "message too big"
)

func disconnectNormal() Disconnect { return Disconnect{Code: codeNormal} }
func disconnectShutdown() Disconnect {
	return Disconnect{Code: codeGoAway, Reason: "server shutting down"}
}
func disconnectHeartbeat() Disconnect {
	return Disconnect{Code: codeGoAway, Reason: "heartbeat timeout"}
}
func disconnectTooBig() Disconnect { return Disconnect{Code: codeTooBig, Reason: reasonTooBig} }

// Error implements error, so that a Disconnect can end a read loop.
func (d Disconnect) Error() string {
	if d.Reason == "" {
		return "gateway: disconnect"
	}
	return "gateway: disconnect: " + d.Reason
}
