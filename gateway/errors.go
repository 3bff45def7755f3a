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
)

// Disconnect says why the gateway ended a connection. WebSocket clients
// receive Code and Reason in their close frame; Reason is at most 123
// bytes, the limit of a close frame.
type Disconnect struct {
	Code   int
	Reason string
}

// The disconnects the hub gives.
var (
	// DisconnectNormal ends a connection closed by CloseClient.
	DisconnectNormal = Disconnect{Code: 1000, Reason: ""}
	// DisconnectShutdown ends every connection when the hub shuts down.
	DisconnectShutdown = Disconnect{Code: 1001, Reason: "server shutting down"}
	// DisconnectHeartbeat ends a client silent for ping_interval ×
	// ping_not_response_limit.
	DisconnectHeartbeat = Disconnect{Code: 1001, Reason: "heartbeat timeout"}
	// DisconnectSlow ends a client whose send queue overflowed or whose
	// socket accepted nothing for send_timeout (GatewayWorker's send_fail).
	DisconnectSlow = Disconnect{Code: 1008, Reason: "too slow: send queue full"}
	// DisconnectTooBig ends a client that sent a message over
	// max_message_bytes.
	DisconnectTooBig = Disconnect{Code: 1009, Reason: "message too big"}
	// DisconnectDestroyed ends a connection cut by DestroyClient; no close
	// frame is sent.
	DisconnectDestroyed = Disconnect{Code: 1006, Reason: "destroyed"}
)

// Error implements error, so that a Disconnect can end a read loop.
func (d Disconnect) Error() string {
	if d.Reason == "" {
		return "gateway: disconnect"
	}
	return "gateway: disconnect: " + d.Reason
}
