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
			tooBig := !d.drop && d.tooBig()
			if tooBig {
				d.drop = true
				d.s.frameTooBig()
			}
			if d.drop {
				d.write(buf[run:start])
				run = i
			}
			if tooBig {
				d.flushPending() // the upstream's close, at the boundary the dropped frame left
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
		s.lastRead.Store(now)
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

// tooBig reports whether the frame whose header was just parsed is a
// client frame longer than MaxFrameBytes.
func (d *relayDir) tooBig() bool {
	limit := d.s.opts.MaxFrameBytes
	return d.from == sideClient && limit > 0 && d.p.Header().Length > uint64(limit)
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
