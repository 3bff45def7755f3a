package gateway

import (
	"errors"
	"io"
	"time"
)

// A connection is read in one of two ways. One whose socket the hub can
// poll (plain TCP: websocket_listen, the text port) has no goroutine
// while it is idle: the hub's poller says when it has something to read,
// and a burst of reads runs on a goroutine of its own until the socket
// is drained (readable, burst). Any other (TLS from the edge) has a
// reader goroutine that blocks in Read (readLoop). Both hand what they
// read to the transport's consume, which calls deliver for each message,
// and both end the connection with finish.

// Read states of a polled client.
const (
	readIdle  int32 = iota // waiting for the poller
	readBusy               // a burst runs
	readAgain              // a burst runs, and the poller has said readable since it began
	readDone               // reading has ended: finish runs or has run
)

// Read buffer sizes: a burst borrows one from the hub's pool; a reader
// goroutine keeps a small one.
const (
	burstBuffer = 16 << 10
	loopBuffer  = 1 << 10
)

// readable is the poller's word that c's socket has something to read;
// hup means it has also ended, or failed. It starts a burst unless one
// runs, and tells a running burst to read again before it stops.
func (c *client) readable(hup bool) {
	if hup {
		c.hup.Store(true)
	}
	for {
		switch c.rstate.Load() {
		case readIdle:
			if c.rstate.CompareAndSwap(readIdle, readBusy) {
				// The burst is c's reader while it runs; the last one
				// ends c, and the hub waits for that (Hub.Wait).
				go c.burst()
				return
			}
		case readBusy:
			if c.rstate.CompareAndSwap(readBusy, readAgain) {
				return
			}
		default: // readAgain, readDone
			return
		}
	}
}

// burst reads what c's socket holds, passing each message on, until it
// is drained; if the poller said readable meanwhile, it reads again. A
// burst that finds the end of the connection finishes it.
func (c *client) burst() {
	growStack()
	for {
		if err := c.readReady(); err != nil {
			c.rstate.Store(readDone)
			c.hub.finish(c, err)
			return
		}
		if c.rstate.CompareAndSwap(readBusy, readIdle) {
			return
		}
		c.rstate.Store(readBusy) // it was readAgain
	}
}

// readReady reads until the socket is drained. A read shorter than the
// buffer drains it: what arrives later is a new edge for the poller.
// After a hang-up it reads on until the end shows (io.EOF or an error).
func (c *client) readReady() error {
	bp := c.hub.readBufs.Get().(*[]byte)
	defer c.hub.readBufs.Put(bp)
	b := *bp
	for {
		n, err := c.sock.tryRead(b)
		if n > 0 {
			if err := c.t.consume(b[:n]); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
		if n < len(b) && (n == 0 || !c.hup.Load()) {
			return nil
		}
	}
}

// readLoop is the reader goroutine of a connection the hub does not poll:
// it reads until the connection ends and returns why.
func (c *client) readLoop() error {
	b := make([]byte, loopBuffer)
	nc := c.t.conn()
	for {
		n, err := nc.Read(b)
		if n > 0 {
			if err := c.t.consume(b[:n]); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
	}
}

// deliver hands one message from c to the handler. It reports false when
// the handler panicked, which ends c.
func (c *client) deliver(data []byte) bool {
	h := c.hub
	c.lastSeen.Store(h.clock())
	h.stats.messagesIn.Add(1)
	info := c.info()
	return h.guard(c, "message", func() { h.handler.OnMessage(info, data) })
}

// finish ends a connection whose reading has ended with err: it stops
// the sends, lets the writer flush what is queued (a close echo) unless
// the connection is broken, closes it, removes c from the hub and runs
// OnClose. It runs on c's reader: the reader goroutine, or the burst
// that found the end.
func (h *Hub) finish(c *client, err error) {
	if c.polled {
		h.poll.remove(c)
	}
	var d Disconnect
	if !errors.Is(err, io.EOF) && !errors.As(err, &d) {
		c.t.conn().Close()
	} else {
		// Flushing the close frame must not wait on a client that
		// stopped reading, even without Run's watchdog.
		c.t.conn().SetWriteDeadline(time.Now().Add(closeWait))
	}
	c.endRead()
	if c.readTimer != nil {
		c.readTimer.Stop() // the writer, which set it, has ended
	}
	if errors.As(err, &d) {
		lingerClose(c.t.conn())
	} else {
		c.t.conn().Close()
	}

	info := c.info()
	info.UID = h.unregister(c)
	info.Session, info.SessionRaw = h.takeSession(c)
	h.log.Debug("client closed", "client_id", c.id, "err", err)
	h.guard(c, "close", func() { h.handler.OnClose(info) })
	h.ended()
	if c.done != nil {
		c.done()
	}
}

// growStack grows a new goroutine's stack, still nearly empty, to the
// size a burst needs, in one step: a goroutine starts with 2 KiB, and
// one that reaches a handler's depth would otherwise grow it twice or
// more, each time copying every frame it holds by then.
//
//go:noinline
func growStack() {
	var pad [6 << 10]byte
	touch(pad[:])
}

//go:noinline
func touch(b []byte) { b[0] = 0 }
