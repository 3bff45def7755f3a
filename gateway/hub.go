package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Hub. Every zero field means its default.
type Options struct {
	// Node is the address that client ids name (GatewayWorker puts the
	// gateway's inner address there): its IPv4 address and port become
	// the first 12 hex digits of every id. Zero means 127.0.0.1:0. Nodes
	// of one cluster need distinct Node values.
	Node netip.AddrPort
	// Handler receives business events. Nil means [NopHandler].
	Handler Handler
	// PingInterval is how often the hub sends PingData (and a WebSocket
	// ping) to every client. Zero turns heartbeats off.
	PingInterval time.Duration
	// PingNotResponseLimit closes a client from which nothing (no
	// message, no pong) arrived for PingInterval × PingNotResponseLimit.
	// Zero means the hub only sends and never closes for silence.
	PingNotResponseLimit int
	// PingData is the application message sent every PingInterval; ""
	// sends none (WebSocket clients still get ping frames).
	PingData string
	// SendQueue is how many messages may wait for one client; a client
	// with that many unsent is disconnected as too slow. Default 1024.
	SendQueue int
	// SendTimeout bounds the write of what is queued for one client: a
	// client whose socket has not taken it within SendTimeout is
	// disconnected as too slow ([Hub.Run] enforces it). Default 10s.
	SendTimeout time.Duration
	// MaxMessageBytes bounds one message from a client; a longer one
	// closes the connection (1009 for WebSocket). Default 1 MiB.
	MaxMessageBytes int64
	// Logger receives connection events at Debug and problems at Info and
	// above. Nil discards them.
	Logger *slog.Logger
	// Detach is called by the WebSocket handler once a request is upgraded,
	// before the connection is handed to goroutines of its own; the
	// function it returns, if not nil, is called when the connection has
	// ended. An edge that counts or logs connections passes its hook here
	// (cmd/wssgate passes proxy.Detach). Nil means nobody needs to know.
	Detach func(*http.Request) (done func())
	// SessionCodec converts sessions between the map form of the session
	// API ([Hub.GetSession], [Hub.SetSession], [Hub.UpdateSession], ...,
	// OnClose's ClientInfo.Session) and the bytes of another system's
	// sessions, which the raw methods ([Hub.GetSessionRaw],
	// [Hub.SetSessionRaw], [Hub.ModifySessionRaw]) store as they are:
	// gatewayworker.PHPSessionCodec keeps GatewayWorker's PHP-serialized
	// sessions byte for byte. Nil means sessions exist only as maps, and
	// the raw methods return [ErrNoSessionCodec].
	SessionCodec SessionCodec

	// firstCounter is where client id counters start (tests of the wrap);
	// 0 means 1.
	firstCounter uint32
}

// Stats are a hub's counters since it started.
type Stats struct {
	Clients          int   // connected now
	UIDs             int   // distinct uids bound now
	Groups           int   // groups with at least one member now
	ConnectionsTotal int64 // clients accepted since start
	MessagesIn       int64 // messages received from clients
	MessagesOut      int64 // messages written to clients
	SendFail         int64 // clients dropped as too slow (send queue full or send_timeout)
	HeartbeatClosed  int64 // clients closed for silence
}

type hubStats struct {
	connections     atomic.Int64
	messagesIn      atomic.Int64
	messagesOut     atomic.Int64
	sendFail        atomic.Int64
	heartbeatClosed atomic.Int64
}

// Hub is the connection hub. Its methods are safe for concurrent use.
// Create it with [New], run its heartbeat with [Hub.Run], and end it with
// [Hub.Shutdown]; [Hub.Wait] tells when its last client has gone.
//
// The hub owns each connection's reader: the goroutine that ServeText
// and the WebSocket handler start to register it, which goes on reading
// a connection the poller cannot take (TLS), or else the bursts the
// poller starts when the idle connection has something to read. Wait and
// Shutdown wait for the reader that ends the connection, and for the
// poller's goroutine, which runs while any connection is polled. The
// reader in turn owns its client's writer goroutine, which runs only
// while something is queued, and the goroutine that closes a TLS client
// found too slow: it waits for them before it calls OnClose.
type Hub struct {
	handler     Handler
	log         *slog.Logger
	ids         *idGen
	sendQueue   int
	sendTimeout time.Duration
	maxMessage  int64
	pingEvery   time.Duration
	pingLimit   int
	pingData    *message
	detach      func(*http.Request) func()
	codec       SessionCodec
	epoch       time.Time
	writers     sync.Pool // *bufio.Writer
	lists       sync.Pool // *[]*client, for fan-outs
	readBufs    sync.Pool // *[]byte of burstBuffer bytes
	poll        poller
	stats       hubStats

	mu       sync.RWMutex
	clients  map[string]*client
	all      []*client // the clients again, densely, so that a fan-out copies them fast (client.slot is the index)
	groups   map[string]map[string]*client
	uids     map[string]map[string]*client
	shutdown bool
	done     chan struct{} // closed by Shutdown
	once     sync.Once

	// lmu guards live and idle. live counts the clients from newClient
	// until finish is done: by then OnClose has returned, and so have the
	// client's goroutines but the reader that runs finish. idle, made by
	// a Wait while live > 0, is closed when live drops to zero: a hub
	// that nobody waits on makes no channel.
	lmu  sync.Mutex
	live int
	idle chan struct{}
}

// New returns a hub with opts' zero fields set to their defaults.
func New(opts Options) *Hub {
	h := &Hub{
		handler:     opts.Handler,
		log:         opts.Logger,
		sendQueue:   opts.SendQueue,
		sendTimeout: opts.SendTimeout,
		maxMessage:  opts.MaxMessageBytes,
		pingEvery:   opts.PingInterval,
		pingLimit:   opts.PingNotResponseLimit,
		detach:      opts.Detach,
		codec:       opts.SessionCodec,
		epoch:       time.Now(),
		clients:     make(map[string]*client),
		groups:      make(map[string]map[string]*client),
		uids:        make(map[string]map[string]*client),
		done:        make(chan struct{}),
	}
	if h.handler == nil {
		h.handler = NopHandler{}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "gateway")
	if h.sendQueue <= 0 {
		h.sendQueue = 1024
	}
	if h.sendTimeout <= 0 {
		h.sendTimeout = 10 * time.Second
	}
	if h.maxMessage <= 0 {
		h.maxMessage = 1 << 20
	}
	if h.pingEvery > 0 {
		h.pingEvery = max(h.pingEvery, 2*time.Millisecond) // Run ticks at half of it
	}
	h.sendTimeout = max(h.sendTimeout, 4*time.Millisecond) // the watchdog ticks at a quarter
	if opts.PingData != "" {
		h.pingData = newMessage([]byte(opts.PingData))
	}
	node := opts.Node
	if !node.IsValid() {
		node = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0)
	}
	h.ids = newIDGen(node, opts.firstCounter)
	h.writers.New = func() any { return bufio.NewWriterSize(nil, 16<<10) }
	h.readBufs.New = func() any { b := make([]byte, burstBuffer); return &b }
	return h
}

// clock is the hub's monotonic time in nanoseconds.
func (h *Hub) clock() int64 { return int64(time.Since(h.epoch)) }

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.RLock()
	s := Stats{Clients: len(h.clients), UIDs: len(h.uids), Groups: len(h.groups)}
	h.mu.RUnlock()
	s.ConnectionsTotal = h.stats.connections.Load()
	s.MessagesIn = h.stats.messagesIn.Load()
	s.MessagesOut = h.stats.messagesOut.Load()
	s.SendFail = h.stats.sendFail.Load()
	s.HeartbeatClosed = h.stats.heartbeatClosed.Load()
	return s
}

// Run sends heartbeats, closes silent clients and drops clients whose
// socket stopped accepting data, until ctx is done or the hub is shut
// down. A hub serves clients without Run, but then nothing enforces
// PingInterval or SendTimeout.
func (h *Hub) Run(ctx context.Context) error {
	// Ticking at half the interval closes a silent client no later than
	// interval × limit + interval/2; pings go out every other tick.
	var beat <-chan time.Time
	if h.pingEvery > 0 {
		t := time.NewTicker(h.pingEvery / 2)
		defer t.Stop()
		beat = t.C
	}
	watch := time.NewTicker(min(time.Second, h.sendTimeout/4))
	defer watch.Stop()
	var snapshot []*client
	for n := 0; ; {
		select {
		case <-ctx.Done():
			return nil
		case <-h.done:
			return nil
		case <-beat:
			snapshot = h.snapshot(snapshot[:0])
			h.heartbeat(snapshot, n%2 == 1)
			n++
		case <-watch.C:
			snapshot = h.snapshot(snapshot[:0])
			h.watchWrites(snapshot)
		}
		clear(snapshot)
	}
}

// watchWrites cuts every client whose socket has taken nothing of a
// pending write for send_timeout: it is too slow.
func (h *Hub) watchWrites(clients []*client) {
	now := h.clock()
	for _, c := range clients {
		if since := c.writing.Load(); since != 0 && now-since >= int64(h.sendTimeout) {
			c.writing.Store(0)
			if c.stopSends() { // not counted twice (a full queue counts too)
				h.stats.sendFail.Add(1)
				h.log.Info("client accepted nothing for send_timeout, disconnected", "client_id", c.id, "send_timeout", h.sendTimeout)
			}
			c.cut()
		}
	}
}

func (h *Hub) heartbeat(clients []*client, ping bool) {
	now := h.clock()
	deadline := int64(h.pingEvery) * int64(h.pingLimit)
	for _, c := range clients {
		if h.pingLimit > 0 && now-c.lastSeen.Load() >= deadline {
			// A silent peer is likely dead and will not answer the close
			// frame: wait for it no longer than half an interval.
			if c.enqueue(item{kind: itemClose, disc: disconnectHeartbeat(), wait: min(closeWait, h.pingEvery/2)}) {
				h.stats.heartbeatClosed.Add(1)
				h.log.Debug("client silent, closing", "client_id", c.id)
			}
			continue
		}
		if !ping {
			continue
		}
		if h.pingData != nil {
			c.send(h.pingData)
		}
		if c.t.kind() == "websocket" {
			c.enqueue(item{kind: itemPing})
		}
	}
}

// snapshot appends every connected client to buf.
func (h *Hub) snapshot(buf []*client) []*client {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return append(buf, h.all...)
}

// list returns a pooled client list for a fan-out; putList gives it
// back. A fan-out copies its receivers under the hub's read lock and
// sends to them after unlocking, so that no socket is written under the
// lock.
func (h *Hub) list() *[]*client {
	if l, ok := h.lists.Get().(*[]*client); ok {
		return l
	}
	return new([]*client)
}

func (h *Hub) putList(l *[]*client) {
	clear(*l) // drop the references
	*l = (*l)[:0]
	h.lists.Put(l)
}

// Wait returns nil once the hub has no clients: every connection has
// ended, its OnClose has returned and its goroutines have returned (the
// reader is returning; for a WebSocket client it still calls the
// function [Options.Detach] returned). It returns at once when the hub has
// no clients, and ctx.Err() if ctx is done first. Wait does not stop new
// clients, which it then waits for too: stop the listeners first, or
// call [Hub.Shutdown]. Don't call it from a Handler method: it waits for
// that handler's own client.
func (h *Hub) Wait(ctx context.Context) error {
	h.lmu.Lock()
	if h.live == 0 {
		h.lmu.Unlock()
		return nil
	}
	if h.idle == nil {
		h.idle = make(chan struct{})
	}
	idle := h.idle
	h.lmu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// started counts a client that newClient made; serve calls ended when
// it is done with it.
func (h *Hub) started() {
	h.lmu.Lock()
	h.live++
	h.lmu.Unlock()
}

// ended uncounts a client and wakes the Waits if it was the last.
func (h *Hub) ended() {
	h.lmu.Lock()
	defer h.lmu.Unlock()
	h.live--
	if h.live == 0 && h.idle != nil {
		close(h.idle)
		h.idle = nil
	}
}

// Shutdown stops taking clients, sends every client close 1001 after
// what is already queued for it, and waits until every connection has
// ended and its OnClose has returned, or ctx is done: then it cuts the
// rest and returns ctx.Err() once their OnClose calls have returned (an
// OnClose that blocks holds Shutdown up). It is idempotent. Don't call it
// from a Handler method: it waits for that handler's own client.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.shutdown = true
	h.mu.Unlock()
	h.once.Do(func() { close(h.done) })
	// Run's watchdog has stopped: a write deadline bounds what each
	// client still gets, so that a stuck client cannot hold Shutdown.
	deadline := time.Now().Add(h.sendTimeout)
	for _, c := range h.snapshot(nil) {
		c.t.conn().SetWriteDeadline(deadline)
		c.close(disconnectShutdown())
	}
	err := h.Wait(ctx)
	if err == nil {
		return nil
	}
	for _, c := range h.snapshot(nil) {
		c.cut()
	}
	h.Wait(context.Background()) // for the OnClose calls
	return err
}

// serve runs a connection from its registration on, on the calling
// goroutine, which the hub started with newClient: it registers c and
// runs OnConnect (then onConnect, if not nil, for OnWebSocketConnect).
// A connection the poller takes is then read by bursts (see readable)
// and serve returns; any other is read here, and serve returns once it
// has ended. The reader that finds the end runs finish, which calls
// done, if not nil, last. The writer runs on a goroutine of its own,
// which finish waits for.
func (h *Hub) serve(c *client, onConnect func(ClientInfo), done func()) {
	c.done = done
	if err := h.register(c); err != nil {
		c.close(disconnectShutdown())
		c.endRead()
		c.t.conn().Close()
		h.ended()
		if done != nil {
			done()
		}
		return
	}
	info := c.info()
	h.log.Debug("client connected", "client_id", c.id, "addr", c.addr, "transport", info.Transport)
	ok := h.guard(c, "connect", func() { h.handler.OnConnect(info) })
	if ok && onConnect != nil {
		h.guard(c, "websocket_connect", func() { onConnect(info) })
	}
	if c.sock.ok() {
		c.polled = true // before add: a burst may start at once
		if h.poll.add(c) == nil {
			return
		}
		c.polled = false
	}
	h.finish(c, c.readLoop())
}

// lingerClose closes a connection whose client may still be sending
// (it sent a message over the limit): closing with unread data would
// make the kernel send a reset, which can destroy the close frame or
// error line just written. So the write side is shut first, and what
// the client sends is read and dropped, for a bounded time and amount.
func lingerClose(nc net.Conn) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.Copy(io.Discard, io.LimitReader(nc, 256<<10))
	nc.Close()
}

// errHandlerPanic ends a connection whose handler panicked.
var errHandlerPanic = errors.New("gateway: handler panicked")

// guard runs one of the Handler's methods for c. A panic is logged with
// its stack and ends c's connection, as net/http does with a handler's
// panic, rather than the whole process.
func (h *Hub) guard(c *client, event string, f func()) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			h.log.Error("event handler panicked; closing its client", "event", event, "client_id", c.id, "panic", v, "stack", string(debug.Stack()))
			c.cut()
			ok = false
		}
	}()
	f()
	return true
}

// register gives c an id and adds it to the hub.
func (h *Hub) register(c *client) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shutdown {
		return ErrShutdown
	}
	c.id = h.ids.newID(func(id string) bool { _, ok := h.clients[id]; return ok })
	h.clients[c.id] = c
	c.slot = len(h.all)
	h.all = append(h.all, c)
	h.stats.connections.Add(1)
	return nil
}

// unregister removes c from the hub, its groups and its uid, and returns
// its last uid.
func (h *Hub) unregister(c *client) (uid string) {
	h.mu.Lock()
	delete(h.clients, c.id)
	last := h.all[len(h.all)-1]
	h.all[c.slot], last.slot = last, c.slot
	h.all[len(h.all)-1] = nil
	h.all = h.all[:len(h.all)-1]
	for g := range c.groups {
		h.removeFromGroup(g, c)
	}
	c.groups = nil
	uid = c.uid
	if uid != "" {
		h.removeFromUID(uid, c)
		c.uid = ""
	}
	h.mu.Unlock()
	return uid
}
