package proxy

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wssgate/wssgate/internal/wsframe"
)

// Relay tuning.
const (
	// smallBufSize is the size of the read buffer every direction has,
	// used while its traffic is light: the first wsframe.MaxHeldLen bytes
	// are room for held bytes, the rest, 885 bytes, is read into. It is part of
	// every stream, so it is kept small.
	smallBufSize = 1024
	// largeBufSize is the size of the pooled buffers a direction reads
	// into while a read fills the small buffer (the same room included).
	largeBufSize = 32 << 10
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

// bufferPool is a pool of large relay buffers shared by the streams of a
// Proxy. A stream takes one only while its reads fill the small buffer it
// always has, and gives it back when they drain. The zero value is ready
// to use.
type bufferPool struct {
	pool sync.Pool // of *[]byte, each largeBufSize long
}

// newBufferPool returns an empty pool.
func newBufferPool() *bufferPool { return new(bufferPool) }

// get returns a buffer of largeBufSize bytes.
func (p *bufferPool) get() *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, largeBufSize)
	return &b
}

// put returns b to the pool.
func (p *bufferPool) put(b *[]byte) { p.pool.Put(b) }

// Get returns a buffer of largeBufSize bytes. With Put it makes the pool
// an httputil.BufferPool, so that plain HTTP proxying shares its buffers.
func (p *bufferPool) Get() []byte { return *p.get() }

// Put returns a buffer obtained from Get. Buffers shorter than
// largeBufSize are dropped.
func (p *bufferPool) Put(b []byte) {
	if cap(b) >= largeBufSize {
		b = b[:largeBufSize]
		p.put(&b)
	}
}

// streamOptions configures a stream. The zero value relays without
// timeouts or pings.
type streamOptions struct {
	// IdleTimeout closes the stream with 1001 "idle timeout" to both sides
	// when no frame passed either way for this long. Zero means no limit.
	IdleTimeout time.Duration
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

// relayCounters are the live traffic counters of a route's streams and
// responses, added to as bytes pass: one atomic add per read chunk and
// direction for bytes, one for the messages it completed.
type relayCounters struct {
	in  dirCounters // client to upstream
	out dirCounters // upstream to client
	// sendFail counts streams and responses cut by a write toward a peer
	// that failed or made no progress within send_timeout.
	sendFail atomic.Int64
}

// dirCounters count the traffic of one direction. Each direction has a
// cache line of its own, so that the two forwarders of a stream, on two
// goroutines, do not contend for one.
type dirCounters struct {
	bytes    atomic.Int64 // relayed as on the wire: frame headers included
	messages atomic.Int64 // complete data messages
	_        [cacheLineSize - 16]byte
}

// cacheLineSize is the cache line size of common CPUs (amd64, arm64).
const cacheLineSize = 64

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
	lastFwd    atomic.Int64 // when a frame last passed either way
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
	go s.copyFromClient()
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

// now returns the time since newStream.
func (s *stream) now() time.Duration { return time.Since(s.start) }

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
			earliest(time.Duration(s.lastFwd.Load()) + s.opts.IdleTimeout)
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
	case s.opts.IdleTimeout > 0 && now-time.Duration(s.lastFwd.Load()) >= s.opts.IdleTimeout:
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

// relayDir is one direction of a stream: a forwarder that reads from src
// and writes to dst, and the control frames queued for dst.
type relayDir struct {
	s        *stream
	from     side // the side src belongs to
	src, dst net.Conn
	initial  []byte // read ahead before the relay started
	p        wsframe.Parser
	large    *[]byte // pooled read buffer in use, or nil

	// Forwarder-only state.
	drop      bool         // the current frame is not passed on
	dstClosed bool         // a close frame went to dst; nothing more may follow
	dstDead   bool         // a write to dst failed
	srcClosed bool         // a close frame came from src
	deadline  sendDeadline // dst's write deadline, for WriteTimeout
	bytes     int64
	messages  int64
	ctr       *dirCounters // bytes and messages go here too; nil = nowhere

	dstGone atomic.Bool // dst's side is gone: pass nothing on
	pending atomic.Bool // pingDue or closeDue is set

	mu          sync.Mutex // guards the queued frames below
	pingDue     bool
	closeDue    bool
	closeCode   uint16
	closeReason string

	out   [wsframe.MaxControlFrameLen]byte // frame being injected
	small [smallBufSize]byte               // read buffer; held bytes go in front
}

func (d *relayDir) init(s *stream, from side, src, dst net.Conn, initial []byte) {
	d.s, d.from, d.src, d.dst, d.initial = s, from, src, dst, initial
	d.deadline.timeout = s.opts.WriteTimeout
}

// run forwards until src ends, then tells dst as described at stream.run.
func (d *relayDir) run() {
	defer d.releaseLarge()
	for b := d.initial; len(b) > 0; {
		if len(b) > smallBufSize-wsframe.MaxHeldLen && d.large == nil {
			d.large = d.s.opts.Buffers.get()
		}
		buf := d.buffer()
		n := copy(buf[wsframe.MaxHeldLen:], b)
		b = b[n:]
		d.relay(buf[:wsframe.MaxHeldLen+n])
	}
	d.initial = nil
	// goAway may have queued a close before run cleared the deadline that
	// was to wake the forwarder.
	if !d.midFrame() {
		d.flushPending()
	}
	for {
		buf := d.buffer()
		n, err := d.src.Read(buf[wsframe.MaxHeldLen:])
		if n > 0 {
			d.relay(buf[:wsframe.MaxHeldLen+n])
			d.adaptBuffer(n, len(buf)-wsframe.MaxHeldLen)
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && !d.s.aborted.Load() {
				// Woken by kick: write what was queued, if between frames.
				d.src.SetReadDeadline(time.Time{})
				if !d.midFrame() {
					d.flushPending()
				}
				continue
			}
			d.srcEnded()
			return
		}
	}
}

// buffer returns the read buffer to use; reads go after
// wsframe.MaxHeldLen bytes of room for held bytes.
func (d *relayDir) buffer() []byte {
	if d.large != nil {
		return *d.large
	}
	return d.small[:]
}

// adaptBuffer switches to a pooled large buffer after a read of n bytes
// filled the small one (size bytes), and back once a read no longer fills
// the large one: the connection has been drained, and a quiet stream
// should not hold 32 KiB while it waits.
func (d *relayDir) adaptBuffer(n, size int) {
	switch {
	case d.large == nil && n == size:
		d.large = d.s.opts.Buffers.get()
	case d.large != nil && n < size:
		d.releaseLarge()
	}
}

func (d *relayDir) releaseLarge() {
	if d.large != nil {
		d.s.opts.Buffers.put(d.large)
		d.large = nil
	}
}

// relay passes on the frames in buf[wsframe.MaxHeldLen:], the bytes just
// read, writing what is forwarded with as few writes as possible.
func (d *relayDir) relay(buf []byte) {
	before, messages := d.bytes, d.messages
	// Put the bytes of a frame that began in an earlier read in front of
	// the new ones, so a split frame is written in one piece.
	held := d.p.Held()
	run := wsframe.MaxHeldLen - len(held) // start of bytes to write, not yet written
	copy(buf[run:], held)
	for i := wsframe.MaxHeldLen; i < len(buf); {
		start := i - len(d.p.Held()) // where the current frame's bytes begin in buf
		n, ev := d.p.Parse(buf[i:])
		i += n
		switch ev {
		case wsframe.EventMore:
			// The frame so far is held by the parser.
			d.write(buf[run:start])
			run = len(buf)
		case wsframe.EventHeader:
			run = d.frameStart(buf, run, start)
			d.drop = d.dropAll()
			if d.drop {
				d.write(buf[run:start])
				run = i
			}
			if d.p.AtBoundary() {
				run = d.frameEnd(buf, run, i)
			}
		case wsframe.EventPayload:
			if d.drop {
				d.write(buf[run : i-n])
				run = i
			}
			if d.p.AtBoundary() {
				run = d.frameEnd(buf, run, i)
			}
		case wsframe.EventControl:
			run = d.frameStart(buf, run, start)
			d.drop = !d.control()
			if d.drop {
				d.write(buf[run:start])
				run = i
			} else if d.p.Header().Opcode == wsframe.OpClose {
				// This frame may complete dst's closing handshake: write
				// it before telling the stream.
				d.write(buf[run:i])
				run = i
				if !d.dstDead {
					d.s.closeWritten(1-d.from, -1)
				}
			}
			run = d.frameEnd(buf, run, i)
		}
	}
	d.write(buf[run:])

	if c := d.ctr; c != nil {
		if n := d.bytes - before; n != 0 {
			c.bytes.Add(n)
		}
		if n := d.messages - messages; n != 0 {
			c.messages.Add(n)
		}
	}
	if s := d.s; s.timed {
		now := int64(s.now())
		if d.from == sideClient {
			s.lastClient.Store(now)
		}
		if d.bytes != before {
			s.lastFwd.Store(now)
		}
	}
}

// frameStart writes queued control frames, if any, before the frame
// starting at buf[start], and returns the new start of the unwritten run.
func (d *relayDir) frameStart(buf []byte, run, start int) int {
	if !d.pending.Load() {
		return run
	}
	d.write(buf[run:start])
	d.flushPending()
	return start
}

// frameEnd accounts for the frame ending at buf[end] and writes queued
// control frames after it. It returns the new start of the unwritten run.
func (d *relayDir) frameEnd(buf []byte, run, end int) int {
	if h := d.p.Header(); h.Fin && h.IsData() && !d.drop {
		d.messages++
	}
	d.drop = false
	if !d.pending.Load() {
		return run
	}
	d.write(buf[run:end])
	d.flushPending()
	return end
}

// control decides whether the control frame just parsed is passed on.
func (d *relayDir) control() bool {
	h := d.p.Header()
	switch h.Opcode {
	case wsframe.OpClose:
		d.srcClosed = true
		fwd := !d.dropAll()
		if fwd {
			d.dstClosed = true
		}
		d.s.closeReceived(d.from, wsframe.CloseCode(d.p.ControlPayload()))
		return fwd
	case wsframe.OpPong:
		if d.from == sideClient && string(d.p.ControlPayload()) == pingPayload {
			return false // the client answering the proxy's ping
		}
	}
	return !d.dropAll()
}

// dropAll reports whether nothing more may be written to dst.
func (d *relayDir) dropAll() bool { return d.dstClosed || d.dstDead || d.dstGone.Load() }

// midFrame reports whether dst has been sent part of a frame, so that
// nothing can be injected now.
func (d *relayDir) midFrame() bool { return !d.p.AtBoundary() && !d.drop }

// write writes relayed bytes to dst. After a failed write, dst is dead
// and the forwarder keeps reading src only to see how it ends.
func (d *relayDir) write(b []byte) {
	if len(b) == 0 || d.dstDead {
		return
	}
	n, _ := d.writeDst(b)
	d.bytes += int64(n)
}

// writeDst writes b to dst within WriteTimeout. A failed write, a peer
// that stopped reading included, closes dst: its own forwarder's read
// then fails, and the other side is told that this one went away.
// A write that makes no progress fails after WriteTimeout/2 to
// WriteTimeout (see sendDeadline).
func (d *relayDir) writeDst(b []byte) (int, error) {
	if at, ok := d.deadline.next(time.Now()); ok {
		d.dst.SetWriteDeadline(at)
	}
	n, err := d.dst.Write(b)
	if err != nil {
		d.dstDead = true
		d.s.writeFailed(d)
		hardClose(d.dst)
	}
	return n, err
}

// writeFailed counts the stream in sendFail once, when a write of d
// failed on its own: not because the proxy closed the connection (abort)
// or had given up on the peer already.
func (s *stream) writeFailed(d *relayDir) {
	if c := s.opts.Counters; c != nil && !s.aborted.Load() && !d.dstGone.Load() && !s.sendFailed.Swap(true) {
		c.sendFail.Add(1)
	}
}

// srcEnded handles the end of src: a read error or EOF.
func (d *relayDir) srcEnded() {
	if d.s.aborted.Load() {
		return
	}
	if d.srcClosed {
		// A clean end after the closing handshake: pass it on.
		if !d.dstDead {
			closeWrite(d.dst)
		}
		return
	}
	if d.midFrame() {
		// Nothing can be injected into a half-sent frame.
		d.s.sideGone(d.from, 0)
		d.s.abort()
		return
	}
	code, reason := uint16(wsframe.CloseGoingAway), "client went away"
	if d.from == sideUpstream {
		code, reason = closeUpstreamGone, "upstream closed"
	}
	d.s.sideGone(d.from, int(code))
	d.queueClose(code, reason)
	d.flushPending()
}

// queueClose queues the proxy's close frame for dst. The first queued
// close wins.
func (d *relayDir) queueClose(code uint16, reason string) {
	d.mu.Lock()
	if !d.closeDue {
		d.closeDue, d.closeCode, d.closeReason = true, code, reason
		d.pending.Store(true)
	}
	d.mu.Unlock()
}

// queuePing queues the proxy's ping for dst.
func (d *relayDir) queuePing() {
	d.mu.Lock()
	d.pingDue = true
	d.pending.Store(true)
	d.mu.Unlock()
}

// kick wakes the forwarder if it is blocked reading src, so that it
// writes what was queued for dst: a read deadline in the past fails the
// read, and tls.Conn, like net.TCPConn, recovers from such a timeout.
func (d *relayDir) kick() { d.src.SetReadDeadline(time.Unix(1, 0)) }

// flushPending writes the queued control frames. The forwarder calls it
// only at a frame boundary of dst.
func (d *relayDir) flushPending() {
	if !d.pending.Load() {
		return
	}
	var key [4]byte
	masked := d.from == sideClient // frames to an upstream are masked
	if masked {
		binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	}
	var frame []byte
	code := -1
	d.mu.Lock()
	switch {
	case d.closeDue && !d.dstClosed && !d.dstDead && !d.dstGone.Load():
		code = int(d.closeCode)
		frame = wsframe.AppendCloseFrame(d.out[:0], int(d.closeCode), d.closeReason, masked, key)
	case d.pingDue && !d.dropAll():
		frame = wsframe.AppendControlFrame(d.out[:0], wsframe.OpPing, pingPayload, masked, key)
	}
	d.pingDue, d.closeDue = false, false
	d.pending.Store(false)
	d.mu.Unlock()

	if frame == nil || d.dstDead {
		return
	}
	_, _ = d.writeDst(frame)
	if code >= 0 {
		d.dstClosed = true
		if !d.dstDead {
			d.s.closeWritten(1-d.from, code)
		}
	}
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
