package gateway

import (
	"bufio"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// transport is how the hub meets a connection, whatever its protocol.
// The hub calls readMessage from the reader goroutine only, and the write
// methods from the writer goroutine only.
type transport interface {
	// kind is "websocket" or "text".
	kind() string
	// conn is the underlying connection, for deadlines and Close.
	conn() net.Conn
	// readMessage returns the next message. The data is valid until the
	// next call. A clean end by the client (close frame, EOF) is io.EOF.
	readMessage() ([]byte, error)
	// write encodes one queued item into w; a data item that was partly
	// written already (it.off > 0) goes on from there.
	write(w *bufio.Writer, it item) error
	// wire returns m as this transport puts it on the wire: the bytes
	// a data item writes.
	wire(m *message) []byte
	// closed is called after a close item was written: it ends the
	// connection gracefully (half-close or wait for the client's close
	// frame), bounded by the given deadline.
	closed(deadline time.Time)
}

// item is one entry of a client's send queue.
type item struct {
	kind itemKind
	off  int           // itemData: bytes of its wire form already written
	msg  *message      // itemData
	ctl  []byte        // itemPong payload
	disc Disconnect    // itemClose
	wait time.Duration // itemClose: how long to wait for the client's answer
}

type itemKind uint8

const (
	itemData  itemKind = iota // an application message
	itemPing                  // a WebSocket ping (ignored by text)
	itemPong                  // a WebSocket pong answering the client's ping
	itemClose                 // the last item: a close frame, then the end
)

// closeWait bounds the wait for the client's answer to a close frame.
const closeWait = 5 * time.Second

// client is one connection in the hub.
type client struct {
	id   string
	hub  *Hub
	addr netip.AddrPort
	t    transport

	// Guarded by hub.mu.
	uid    string
	groups map[string]struct{}
	slot   int // index in hub.all

	smu     sync.Mutex
	session Session

	qmu    sync.Mutex
	queue  []item
	open   bool // sends are taken: no close queued, not cut, the reader runs
	writer bool // a writer goroutine runs; it ends when the queue is empty
	// writes counts the client's goroutines besides its reader: the
	// writer, and the closer of a client found too slow. The reader owns
	// them (endRead waits for them). A sender adds one under qmu, having
	// found open true, so none is added once endRead, which clears open
	// first, waits.
	writes sync.WaitGroup

	lastSeen atomic.Int64 // hub clock, nanoseconds
	writing  atomic.Int64 // hub clock of the write's last progress; 0 = not writing

	// sock writes without blocking, from the sending goroutine, what
	// would otherwise wait for the writer; not ok for a connection that
	// cannot (TLS), whose sends all go through the queue.
	sock rawSocket
}

// newClient makes a client of h for t and counts it in h until
// h.serve(c, ...), which must follow, returns: call it before starting
// the goroutine that runs serve, so that [Hub.Wait] waits for that
// goroutine from its start.
func (h *Hub) newClient(t transport, addr netip.AddrPort) *client {
	h.started()
	c := &client{
		hub:  h,
		addr: addr,
		t:    t,
		open: true,
	}
	c.sock.init(t.conn())
	c.lastSeen.Store(h.clock())
	return c
}

func (c *client) info() ClientInfo {
	return ClientInfo{ID: c.id, Addr: c.addr, Transport: c.t.kind()}
}

// send sends m to the client as workerman's TcpConnection::send does:
// when nothing is queued it writes m at once, from the calling
// goroutine, as far as the socket takes it without blocking, and queues
// only the rest for the writer. It reports false when the client is
// closing or was cut (a full queue, a broken socket).
//
// The write happens under qmu, so that sends to one client keep their
// order, but never under the hub's lock: callers fan out over a copy of
// the client list. It allocates nothing.
func (c *client) send(m *message) bool {
	c.qmu.Lock()
	if !c.open {
		c.qmu.Unlock()
		return false
	}
	if !c.sock.ok() || c.writer || len(c.queue) > 0 {
		return c.enqueueLocked(item{kind: itemData, msg: m})
	}
	wire := c.t.wire(m)
	n, err := c.sock.tryWrite(wire)
	switch {
	case n == len(wire):
		c.qmu.Unlock()
		c.hub.stats.messagesOut.Add(1)
		return true
	case err != nil:
		// A broken socket: the reader finds out too. Stop the sends
		// and end the connection, as the writer does on an error.
		c.open = false
		c.qmu.Unlock()
		c.hub.log.Debug("write failed", "client_id", c.id, "err", err)
		c.t.conn().Close()
		return false
	}
	return c.enqueueLocked(item{kind: itemData, msg: m, off: n})
}

// enqueue appends it to the send queue and wakes the writer. It reports
// false when the client is closing, or when the queue was full: then
// the client is cut and counted as a send failure.
func (c *client) enqueue(it item) bool {
	c.qmu.Lock()
	if !c.open {
		c.qmu.Unlock()
		return false
	}
	return c.enqueueLocked(it)
}

// enqueueLocked is enqueue with qmu held, which it unlocks.
func (c *client) enqueueLocked(it item) bool {
	switch {
	case it.kind == itemClose:
		c.open = false
	case len(c.queue) >= c.hub.sendQueue:
		c.open = false
		c.writes.Add(1)
		c.qmu.Unlock()
		c.hub.stats.sendFail.Add(1)
		c.hub.log.Info("client too slow, disconnected", "client_id", c.id, "queued", c.hub.sendQueue)
		// The caller may hold the hub lock, and closing a TLS connection
		// can block on its close_notify: close it elsewhere. The reader
		// owns this goroutine: its endRead waits for it.
		go func() {
			defer c.writes.Done()
			c.t.conn().Close()
		}()
		return false
	}
	c.queue = append(c.queue, it)
	c.startWriterLocked()
	return true
}

// endRead stops the sends to c and waits until its writer has written
// what was queued (a close echo, say) and ended, and until a closer
// started by enqueue has returned.
func (c *client) endRead() {
	c.stopSends()
	c.writes.Wait()
}

// close queues a close item: what is queued before it is still sent, and
// the client's reader ends within closeWait after it was written.
func (c *client) close(d Disconnect) bool {
	return c.enqueue(item{kind: itemClose, disc: d, wait: closeWait})
}

// closeAfter queues last, then a close item, with nothing between them
// (a send from another goroutine cannot slip in). last is sent even if
// the queue is full: it is the client's final message.
func (c *client) closeAfter(last *message, d Disconnect) bool {
	c.qmu.Lock()
	if !c.open {
		c.qmu.Unlock()
		return false
	}
	c.queue = append(c.queue, item{kind: itemData, msg: last}, item{kind: itemClose, disc: d, wait: closeWait})
	c.open = false
	c.startWriterLocked()
	return true
}

// startWriterLocked makes sure a writer runs for what is queued, and
// unlocks qmu, which the caller holds. The writer is counted in writes,
// so that its owner, the reader, waits for it in endRead.
func (c *client) startWriterLocked() {
	start := !c.writer
	if start {
		c.writer = true
		c.writes.Add(1)
	}
	c.qmu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// stopSends makes the client take no more sends, and reports whether it
// still took them (so that a client found too slow is counted in
// send_fail once).
func (c *client) stopSends() bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	was := c.open
	c.open = false
	return was
}

// cut ends the connection at once, without a close frame.
func (c *client) cut() {
	c.stopSends()
	c.t.conn().Close()
}

// writeLoop is the connection's writer: there is at most one at a time.
// It runs while there is something to send, so that an idle connection
// has no writer goroutine (its stack is the largest part of an idle
// connection's memory), and sends what is queued in batches, one flush
// per batch; the hub's watchdog enforces send_timeout.
func (c *client) writeLoop() {
	defer c.writes.Done()
	var batch []item
	for {
		c.qmu.Lock()
		if len(c.queue) == 0 {
			c.writer = false
			c.qmu.Unlock()
			return
		}
		batch, c.queue = c.queue, batch[:0]
		c.qmu.Unlock()
		closing, wait, err := c.writeBatch(batch)
		clear(batch) // drop references to sent messages
		if cap(batch) > 256 {
			batch = nil
		}
		if err != nil {
			c.hub.log.Debug("write failed", "client_id", c.id, "err", err)
			c.cut() // sends stop
			return
		}
		if closing {
			// Nothing is queued after a close item: its enqueue
			// stopped the sends.
			c.t.closed(time.Now().Add(wait))
			return
		}
	}
}

// writeBatch writes batch with one flush (a large batch goes out in
// writeChunk pieces). closing reports that the batch ended with a close
// item, and wait is how long to wait then for the client's answer.
//
// No write deadline is set: that costs a runtime timer update per write.
// Instead each piece that the socket takes is recorded, and the hub's
// watchdog cuts a connection whose socket has taken nothing for
// send_timeout. A slow client that keeps reading is never cut.
func (c *client) writeBatch(batch []item) (closing bool, wait time.Duration, err error) {
	c.progress()
	defer c.writing.Store(0)
	w := c.hub.writers.Get().(*bufio.Writer)
	w.Reset(progressWriter{c})
	defer func() {
		w.Reset(nil)
		c.hub.writers.Put(w)
	}()
	sent := 0
	for i := range batch {
		if err := c.t.write(w, batch[i]); err != nil {
			return false, 0, err
		}
		if batch[i].kind == itemData {
			sent++
		}
		if batch[i].kind == itemClose {
			closing, wait = true, batch[i].wait
			break
		}
	}
	if err := w.Flush(); err != nil {
		return false, 0, err
	}
	c.hub.stats.messagesOut.Add(int64(sent))
	return closing, wait, nil
}

// progress records that the socket took data (or a write begins).
func (c *client) progress() { c.writing.Store(max(1, c.hub.clock())) }

// writeChunk bounds one write call, so that progress is recorded while a
// large message goes out to a slow reader: a client is cut only if it
// takes less than this in send_timeout.
const writeChunk = 16 << 10

// progressWriter writes to the connection in writeChunk pieces and
// records each piece the socket takes.
type progressWriter struct{ c *client }

func (pw progressWriter) Write(p []byte) (n int, err error) {
	nc := pw.c.t.conn()
	for len(p) > 0 {
		k := min(len(p), writeChunk)
		m, err := nc.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		pw.c.progress()
		p = p[k:]
	}
	return n, nil
}
