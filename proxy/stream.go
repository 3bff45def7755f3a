package proxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wssgate/wssgate/internal/wsframe"
)

// Relay tuning.
const (
	// defaultCloseTimeout bounds the wait for peers to finish closing.
	defaultCloseTimeout = 2 * time.Second
	// pingPayload is the payload of the proxy's own pings. Pongs that
	// echo it answer the proxy, so they are not passed on to the upstream.
	pingPayload = "wssgate"
	// closeUpstreamGone is sent to a client whose upstream vanished without
	// a close frame. 1014 (Bad Gateway) says it more precisely, but
	// gorilla/websocket (v1.5.3) and other clients reject 1014 as invalid
	// and fail the connection with a protocol error; 1011 is accepted by
	// every client.
	closeUpstreamGone = wsframe.CloseInternalError
)

// streamOptions configures a stream. The zero value relays without
// timeouts or pings.
type streamOptions struct {
	// IdleTimeout closes the stream with 1001 "idle timeout" to both sides
	// when nothing was read from either side for this long: no data, no
	// ping, no pong. Zero means no limit.
	IdleTimeout time.Duration
	// MaxFrameBytes bounds one frame from the client: a longer one, as
	// soon as its header is read, gets the client close 1009 and the
	// upstream 1001, and its payload is not relayed. Zero means no limit.
	MaxFrameBytes int64
	// PingInterval is how often the proxy pings the client (payload
	// "wssgate"). The client's pongs to these pings are not passed on.
	// Zero means no pings.
	PingInterval time.Duration
	// PingTimeout, with PingInterval, is how long the client may send
	// nothing at all, pongs included, before the upstream gets 1001 and
	// the client is closed. Like gorilla/websocket's pongWait, it should
	// exceed PingInterval. Zero means no limit.
	PingTimeout time.Duration
	// CloseTimeout bounds the closing: once a close frame was seen or sent,
	// or either side ended, whatever is still open this long after is
	// closed. Zero means 2s.
	CloseTimeout time.Duration
	// WriteTimeout ends the stream when a write to either side makes no
	// progress for this long: a peer that stopped reading is closed, and
	// the other side is told it went away. Zero means no limit.
	WriteTimeout time.Duration
	// Buffers is the pool of large read buffers. Nil means a pool private
	// to the stream.
	Buffers *bufferPool
	// Counters, shared by the streams of a route, are kept up to date as
	// the stream relays. Nil counts nothing.
	Counters *relayCounters
}

// streamResult reports how a stream went.
type streamResult struct {
	// FromClient and ToClient count the bytes relayed each way, bytes
	// buffered before the relay started included. Frames the proxy
	// dropped, swallowed or injected are not counted.
	FromClient, ToClient int64
	// MessagesFromClient and MessagesToClient count the complete data
	// messages relayed each way.
	MessagesFromClient, MessagesToClient int64
	// CloseCode is the first close code seen or sent: 1005 for a close
	// frame without a code, 0 when no close frame was seen or sent.
	CloseCode int
	// ClosedBy says who ended the stream: "client", "upstream" or "proxy"
	// (goAway, a timeout or abort).
	ClosedBy string
}

// stream relays one proxied WebSocket connection, the hijacked client
// connection and the upstream one, parsing frame headers as they pass
// (see wsframe.Parser) so that the proxy can inject control frames between
// frames and end the stream with proper close codes.
//
// Each direction has one goroutine, its forwarder, which is the only
// writer to its destination: control frames from goAway and the timer are
// queued on the direction and written by the forwarder at the next frame
// boundary. A forwarder blocked in Read is woken for them by a read
// deadline in the past. A stream thus costs two goroutines (the caller's
// and one) and one timer, and holds a large buffer only while a read
// fills its small one.
type stream struct {
	client, upstream net.Conn
	opts             streamOptions
	c2u, u2c         relayDir

	start      time.Time    // when newStream ran; times below count from it
	timed      bool         // IdleTimeout or PingTimeout is set
	lastRead   atomic.Int64 // when anything was last read from either side
	lastClient atomic.Int64 // when the client last sent anything
	aborted    atomic.Bool
	sendFailed atomic.Bool // a write to a peer failed; counted once
	wg         sync.WaitGroup

	mu           sync.Mutex // guards the fields below
	sides        [2]closeState
	proxyClosing bool // goAway or a timeout started the proxy's own close
	clientShut   bool // the proxy closed the client after its handshake
	result       streamResult
	timer        *time.Timer
	timerAt      time.Duration // when timer fires; 0 when it is not set
	nextPing     time.Duration
	lingerAt     time.Duration // when the closing is cut short; 0 = not closing
	finished     bool
}

// newStream returns a stream relaying between client, the hijacked client
// connection, and upstream, the connection to the backend, once the
// upgrade is done. clientBuffered and upstreamBuffered are the bytes each
// side sent that were read ahead (into bufio readers) during the upgrade;
// they are relayed first. The stream owns both connections from here: run
// closes them.
func newStream(client net.Conn, clientBuffered []byte, upstream net.Conn, upstreamBuffered []byte, opts streamOptions) *stream {
	if opts.Buffers == nil {
		opts.Buffers = newBufferPool()
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = defaultCloseTimeout
	}
	if opts.PingInterval <= 0 {
		opts.PingTimeout = 0
	}
	s := &stream{client: client, upstream: upstream, opts: opts, start: time.Now()}
	s.timed = opts.IdleTimeout > 0 || opts.PingTimeout > 0
	s.c2u.init(s, sideClient, client, upstream, clientBuffered)
	s.u2c.init(s, sideUpstream, upstream, client, upstreamBuffered)
	if c := opts.Counters; c != nil {
		s.c2u.ctr, s.u2c.ctr = &c.in, &c.out
	}
	return s
}

// run relays until both directions have ended and both connections are
// closed. It relays upstream to client on the calling goroutine and client
// to upstream on one it starts and waits for.
//
// When one side ends after its close frame, the other side's connection
// gets CloseWrite (where supported). When one vanishes without one, the
// other gets a close frame at its next frame boundary: 1011 (see closeUpstreamGone)
// when the upstream went, 1001 (Going Away) when the client did; if the
// vanished side stopped mid-frame, both connections are closed at once.
// Once a close frame went each way between proxy and client, the proxy
// closes the client connection, as a server does; the upstream is left
// to close its own. CloseTimeout bounds all of this.
func (s *stream) run() streamResult {
	// Deadlines left from the upgrade would cut the stream short, and the
	// forwarders read any deadline as a wake-up call.
	s.client.SetDeadline(time.Time{})
	s.upstream.SetDeadline(time.Time{})

	s.mu.Lock()
	now := s.now()
	s.nextPing = now + s.opts.PingInterval
	s.scheduleLocked(now)
	s.mu.Unlock()

	s.wg.Add(1)
	go s.copyFromClient() // owned by run: s.wg
	s.copyFromUpstream()
	s.wg.Wait()

	s.mu.Lock()
	s.finished = true
	if s.timer != nil {
		s.timer.Stop()
	}
	res := s.result
	s.mu.Unlock()
	hardClose(s.client)
	hardClose(s.upstream)

	res.FromClient, res.MessagesFromClient = s.c2u.bytes, s.c2u.messages
	res.ToClient, res.MessagesToClient = s.u2c.bytes, s.u2c.messages
	return res
}

// copyFromClient relays client to upstream.
func (s *stream) copyFromClient() {
	defer s.wg.Done()
	s.c2u.run()
	s.dirEnded()
}

// copyFromUpstream relays upstream to client.
func (s *stream) copyFromUpstream() {
	s.u2c.run()
	s.dirEnded()
}

// now returns the time since newStream.
func (s *stream) now() time.Duration { return time.Since(s.start) }

// scheduleLocked sets the timer for the earliest of the idle, ping, ping
// timeout and closing deadlines.
func (s *stream) scheduleLocked(now time.Duration) {
	if s.finished {
		return
	}
	next := time.Duration(-1)
	earliest := func(t time.Duration) {
		if next < 0 || t < next {
			next = t
		}
	}
	if s.result.ClosedBy == "" {
		if s.opts.IdleTimeout > 0 {
			earliest(time.Duration(s.lastRead.Load()) + s.opts.IdleTimeout)
		}
		if s.opts.PingInterval > 0 {
			earliest(s.nextPing)
		}
		if s.opts.PingTimeout > 0 {
			earliest(time.Duration(s.lastClient.Load()) + s.opts.PingTimeout)
		}
	}
	if s.lingerAt > 0 {
		earliest(s.lingerAt)
	}
	if next < 0 || (s.timerAt > 0 && s.timerAt == next) {
		return
	}
	s.timerAt = next
	d := max(next-now, 0)
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.onTimer)
	} else {
		s.timer.Reset(d)
	}
}

// onTimer acts on whichever deadline passed and sets the timer again.
func (s *stream) onTimer() {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	s.timerAt = 0
	now := s.now()
	switch {
	case s.lingerAt > 0 && now >= s.lingerAt:
		s.mu.Unlock()
		s.abort()
		return
	case s.result.ClosedBy != "":
		// Closing: only lingerAt matters.
	case s.opts.IdleTimeout > 0 && now-time.Duration(s.lastRead.Load()) >= s.opts.IdleTimeout:
		s.mu.Unlock()
		s.goAway(wsframe.CloseGoingAway, "idle timeout")
		return
	case s.opts.PingTimeout > 0 && now-time.Duration(s.lastClient.Load()) >= s.opts.PingTimeout:
		s.proxyClosing = true
		s.recordLocked(wsframe.CloseGoingAway, "proxy")
		s.armLingerLocked()
		s.mu.Unlock()
		s.pingTimedOut()
		return
	case s.opts.PingInterval > 0 && now >= s.nextPing:
		s.nextPing = now + s.opts.PingInterval
		s.u2c.queuePing()
		s.u2c.kick()
	}
	s.scheduleLocked(now)
	s.mu.Unlock()
}

// pingTimedOut gives up on a client that stopped answering: the upstream
// gets 1001 and the client connection is closed.
func (s *stream) pingTimedOut() {
	s.c2u.queueClose(wsframe.CloseGoingAway, "ping timeout")
	s.u2c.dstGone.Store(true)
	// The client forwarder's read fails; it then writes the queued close
	// to the upstream if it is between frames.
	hardClose(s.client)
}
