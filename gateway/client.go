package gateway

import (
	"bufio"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
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
	// consume parses b, bytes just read, and passes each complete
	// message to its client's deliver, in order; the data is valid until
	// deliver returns. b is reused once consume returns, so a message
	// still incomplete is copied. A clean end by the client (a close
	// frame) is io.EOF; a Disconnect means the hub ends the connection
	// (queued close frame first); errHandlerPanic that deliver failed.
	consume(b []byte) error
	// write encodes one queued item into w; a data item that was partly
	// written already (it.off > 0) goes on from there.
	write(w *bufio.Writer, it item) error
	// wire returns m as this transport puts it on the wire: the bytes
	// a data item writes.
	wire(m *message) []byte
	// closed is called after a close item was written, for what the
	// transport does then (the text protocol half-closes). The client
	// then waits for the other side's answer (see client.closed).
	closed()
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
	id    string
	hub   *Hub
	addr  netip.AddrPort
	local netip.AddrPort
	t     transport

	// Guarded by hub.mu.
	uid    string
	groups map[string]struct{}
	slot   int // index in hub.all

	// smu guards the session: session is its map form, unless raw is
	// not nil: then it was last written raw (see session.go). A stored
	// raw slice is never modified, only replaced.
	smu     sync.Mutex
	session Session
	raw     []byte

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
	// would otherwise wait for the writer, and reads for the poller's
	// bursts; not ok for a connection that cannot (TLS), whose sends all
	// go through the queue and which has a reader goroutine.
	sock rawSocket

	polled    bool         // read by the poller's bursts; set before the poller has c
	pollKey   int32        // c's key with the poller
	rstate    atomic.Int32 // readIdle, readBusy, readAgain or readDone, when polled
	hup       atomic.Bool  // the poller saw the socket end or fail
	readTimer *time.Timer  // ends the reading a while after our close frame; set by the writer
	done      func()       // called when the connection has ended, after OnClose; may be nil
}

// newClient makes a client of h for t, whose peer is addr and which
// connected to local, and counts it in h until h.serve(c, ...), which
// must follow, returns: call it before starting the goroutine that runs
// serve, so that [Hub.Wait] waits for that goroutine from its start.
func (h *Hub) newClient(t transport, addr, local netip.AddrPort) *client {
	h.started()
	c := &client{
		hub:   h,
		addr:  addr,
		local: local,
		t:     t,
		open:  true,
	}
	c.sock.init(t.conn())
	c.lastSeen.Store(h.clock())
	return c
}

func (c *client) info() ClientInfo {
	return ClientInfo{ID: c.id, Addr: c.addr, LocalAddr: c.local, Transport: c.t.kind()}
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
		c.abort()
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
		// Closing a TLS connection can block on its close_notify, and
		// the caller is a send: close it elsewhere. The reader owns that
		// goroutine: its endRead waits for it. A socket the hub reads
		// itself is shut down, which never blocks.
		closer := !c.sock.ok()
		if closer {
			c.writes.Add(1)
		}
		c.qmu.Unlock()
		c.hub.stats.sendFail.Add(1)
		c.hub.log.Info("client too slow, disconnected", "client_id", c.id, "queued", c.hub.sendQueue)
		if !closer {
			c.abort()
			return false
		}
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
	c.abort()
}

// abort breaks the connection off so that its reader finds out and
// ends it. A socket the hub reads itself is shut down, not closed: a
// closed descriptor would leave the poller nothing to report, and
// shutting down never blocks. Any other connection is closed.
func (c *client) abort() {
	if c.sock.ok() {
		c.sock.shutdown(syscall.SHUT_RDWR)
		return
	}
	c.t.conn().Close()
}

// closed runs once our close frame is out: the transport does its part,
// and the reading ends when the client answers, or after wait. A polled
// socket has no read to put a deadline on: a timer shuts its read side
// down, which the poller reports as its end.
func (c *client) closed(wait time.Duration) {
	c.t.closed()
	if !c.sock.ok() {
		c.t.conn().SetReadDeadline(time.Now().Add(wait))
		return
	}
	c.readTimer = time.AfterFunc(wait, func() { c.sock.shutdown(syscall.SHUT_RD) })
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
			c.closed(wait)
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
