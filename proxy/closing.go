package proxy

import (
	"net"

	"github.com/wssgate/wssgate/internal/wsframe"
)

// How a stream ends. Each side's closing handshake is tracked in a
// closeState: a close frame read from the side, one written to it. The
// first event that explains the end (a close frame, a side vanishing,
// goAway, abort) is recorded in the result, and every step of the
// closing arms the CloseTimeout countdown, after which the timer aborts
// what is left. Once a close frame went each way between proxy and
// client, the proxy closes the client connection, as a server does.

// side is one end of a stream.
type side uint8

const (
	sideClient side = iota
	sideUpstream
)

func (s side) String() string {
	if s == sideClient {
		return "client"
	}
	return "upstream"
}

// closeState tracks the closing handshake with one side.
type closeState struct {
	recv bool // a close frame was read from the side
	sent bool // a close frame was written to the side
}

// goAway starts the proxy's own close: a close frame with code and reason
// (truncated to 123 bytes) to the client, and a masked one to the
// upstream, each at its next frame boundary. Data frames after it are
// dropped, and the peers' close replies are not passed on. Later calls do
// nothing. goAway is safe from any goroutine and never blocks on the
// network: the frames are queued for the forwarders.
func (s *stream) goAway(code uint16, reason string) {
	s.mu.Lock()
	if s.finished || s.proxyClosing {
		s.mu.Unlock()
		return
	}
	s.proxyClosing = true
	s.recordLocked(int(code), "proxy")
	s.armLingerLocked()
	s.mu.Unlock()

	// Queue toward the upstream first: the client's reply, which may come
	// as soon as the client has the proxy's close, must find it queued.
	s.c2u.queueClose(code, reason)
	s.u2c.queueClose(code, reason)
	s.c2u.kick()
	s.u2c.kick()
}

// frameTooBig ends the stream for a client frame over MaxFrameBytes: the
// client gets 1009 and the upstream 1001, each at its next frame
// boundary (the upstream's at once: the frame is not relayed).
func (s *stream) frameTooBig() {
	s.mu.Lock()
	if s.finished || s.proxyClosing {
		s.mu.Unlock()
		return
	}
	s.proxyClosing = true
	s.recordLocked(wsframe.CloseTooBig, "proxy")
	s.armLingerLocked()
	s.mu.Unlock()
	s.c2u.queueClose(wsframe.CloseGoingAway, "client frame too big")
	s.u2c.queueClose(wsframe.CloseTooBig, "frame too big")
	s.u2c.kick()
}

// abort closes both connections at once, which ends run promptly even if
// a peer never answers or never reads. It is idempotent.
func (s *stream) abort() {
	if s.aborted.Swap(true) {
		return
	}
	s.mu.Lock()
	s.recordLocked(0, "proxy")
	s.mu.Unlock()
	hardClose(s.client)
	hardClose(s.upstream)
}

// recordLocked records who started the end of the stream and the close
// code, unless that is known already.
func (s *stream) recordLocked(code int, by string) {
	if s.result.ClosedBy == "" {
		s.result.ClosedBy = by
		s.result.CloseCode = code
	}
}

// armLingerLocked starts the CloseTimeout countdown, once.
func (s *stream) armLingerLocked() {
	if s.lingerAt == 0 && !s.finished {
		now := s.now()
		s.lingerAt = now + s.opts.CloseTimeout
		s.scheduleLocked(now)
	}
}

// dirEnded is called when a forwarder returns: the other direction now
// has CloseTimeout to end.
func (s *stream) dirEnded() {
	s.mu.Lock()
	s.recordLocked(0, "proxy") // only if nothing explains the end
	s.armLingerLocked()
	s.mu.Unlock()
}

// closeReceived is called by the forwarder reading from when it read a
// close frame with code.
func (s *stream) closeReceived(from side, code int) {
	s.mu.Lock()
	s.recordLocked(code, from.String())
	s.sides[from].recv = true
	s.closeStepUnlock()
}

// closeWritten is called by a forwarder once it wrote a close frame to
// side to: the proxy's own with code, or a forwarded one when code < 0.
func (s *stream) closeWritten(to side, code int) {
	s.mu.Lock()
	if code >= 0 {
		s.recordLocked(code, "proxy")
	}
	s.sides[to].sent = true
	s.closeStepUnlock()
}

// closeStepUnlock follows a step of a closing handshake, with s.mu held:
// it starts the CloseTimeout countdown, unlocks, and closes the client
// connection if its handshake is now complete.
func (s *stream) closeStepUnlock() {
	shut := s.shutClientLocked()
	s.armLingerLocked()
	s.mu.Unlock()
	if shut {
		hardClose(s.client)
	}
}

// shutClientLocked reports whether the proxy must now close the client
// connection: the client's closing handshake is complete (a close frame
// went each way), and the proxy, the server as far as the client can
// tell, closes the TCP connection first (RFC 6455 §7.1.1). An upstream is
// left to close its connection, bounded by CloseTimeout, so that the
// upstream, not the proxy, keeps the TIME_WAIT state.
func (s *stream) shutClientLocked() bool {
	c := s.sides[sideClient]
	if c.recv && c.sent && !s.clientShut {
		s.clientShut = true
		return true
	}
	return false
}

// sideGone is called when from's connection ended without a close frame:
// nothing more is written to it, and code is what the other side is told.
func (s *stream) sideGone(from side, code int) {
	s.mu.Lock()
	s.recordLocked(code, from.String())
	s.armLingerLocked()
	s.mu.Unlock()
	s.toSide(from).dstGone.Store(true)
}

// toSide returns the direction writing to side.
func (s *stream) toSide(to side) *relayDir {
	if to == sideClient {
		return &s.u2c
	}
	return &s.c2u
}

// closeWrite shuts down the writing side of c where supported (TCP, TLS),
// as httputil's switchProtocolCopier does.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// hardClose closes c at once. For TLS it closes the underlying connection
// first: a close_notify alert to a peer that does not read could block.
func hardClose(c net.Conn) {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		nc.NetConn().Close()
	}
	c.Close()
}
