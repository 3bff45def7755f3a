package gatewayworker

// This file is one concern: the Worker's connections (to the Register
// and to each Gateway), their lifetimes and the events read from them.

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a [Worker].
const (
	// DefaultQueryTimeout bounds one query to a Gateway, from dialing to
	// the reply (GatewayClient waits 5 s for a reply).
	DefaultQueryTimeout = 5 * time.Second
	// DefaultWorkerSendBuffer is how many bytes of commands may wait for
	// one Gateway connection.
	DefaultWorkerSendBuffer = 10 << 20
	// workerDialTimeout bounds connecting to the Register or a Gateway
	// when WorkerConfig.DialTimeout is zero.
	workerDialTimeout = 5 * time.Second
	// quickClose: a Gateway connection that ends sooner than this
	// without a packet counts as refused (a wrong secret key, most
	// likely), which is logged once per outage rather than each time.
	quickClose = time.Second
)

// Errors of a Worker's commands.
var (
	// ErrNoGateway: the Worker has no connection to the Gateway a
	// command is for (the one named in the client id, or any at all).
	ErrNoGateway = errors.New("gatewayworker: no connection to the gateway")
	// ErrBufferFull: a Gateway connection has SendBuffer bytes of
	// commands waiting; the command was dropped.
	ErrBufferFull = errors.New("gatewayworker: gateway connection's send buffer is full")
)

// WorkerHandler receives the events a [Worker] gets from its Gateways,
// as the Events class of a PHP BusinessWorker does (onConnect,
// onWebSocketConnect, onMessage, onClose).
//
// Events from one Gateway connection are handled one at a time, in
// order, on the goroutine reading that connection, and a client's
// events all come from its Gateway: so one client's events never
// overlap. Events from different Gateways are handled concurrently. A
// handler that blocks holds up its Gateway's events, as a busy PHP
// process does; a handler that panics is logged, and its event's
// session changes are not sent.
type WorkerHandler interface {
	// OnConnect runs when a client has connected (CMD_ON_CONNECT).
	OnConnect(e *Event)
	// OnWebSocketConnect runs after OnConnect for WebSocket clients
	// (CMD_ON_WEBSOCKET_CONNECT), with e.Data set.
	OnWebSocketConnect(e *Event)
	// OnMessage runs for each message of a client (CMD_ON_MESSAGE), with
	// e.Message set.
	OnMessage(e *Event)
	// OnClose runs when a client has gone (CMD_ON_CLOSE), with its last
	// session. Changes to e.Session are not sent.
	OnClose(e *Event)
}

// NopWorkerHandler ignores every event. Embed it to implement only
// some of [WorkerHandler].
type NopWorkerHandler struct{}

func (NopWorkerHandler) OnConnect(*Event)          {}
func (NopWorkerHandler) OnWebSocketConnect(*Event) {}
func (NopWorkerHandler) OnMessage(*Event)          {}
func (NopWorkerHandler) OnClose(*Event)            {}

// Event is one event from a Gateway: what PHP's BusinessWorker puts in
// Context, $_SERVER and $_SESSION before it calls Events.
type Event struct {
	// Cmd is CmdOnConnect, CmdOnWebSocketConnect, CmdOnMessage or
	// CmdOnClose.
	Cmd Cmd
	// ClientID is the client's id, 20 hex digits
	// ($_SERVER['GATEWAY_CLIENT_ID']).
	ClientID string
	// Client is the client's address ($_SERVER['REMOTE_ADDR'] and
	// ['REMOTE_PORT']).
	Client netip.AddrPort
	// Gateway is the inner address of the client's Gateway
	// ($_SERVER['GATEWAY_ADDR'] and the inner port).
	Gateway netip.AddrPort
	// GatewayPort is the Gateway's public port ($_SERVER['GATEWAY_PORT']).
	GatewayPort uint16
	// Message is the client's message, for OnMessage; nil otherwise.
	Message []byte
	// Data is what onWebSocketConnect gets as $data: an array with
	// "get", "server" and "cookie". Nil for other events, and when the
	// Gateway's body is not a serialized array.
	Data *Array
	// Session is the client's session ($_SESSION); nil means none.
	// Change it in place or replace it: after the handler returns, a
	// session that differs from the one the event brought is sent to the
	// Gateway with CMD_SET_SESSION (except after OnClose). For the
	// event's own client use this rather than Worker.SetSession, whose
	// change this field would not see.
	Session *Array
	// Worker is the Worker that got the event: the Gateway API
	// (Worker.SendToAll, Worker.JoinGroup, ...).
	Worker *Worker

	ctx context.Context
}

// Context returns the context of the Worker's Run: it ends when the
// Worker stops. Queries made while handling an event should use it.
func (e *Event) Context() context.Context {
	if e.ctx == nil {
		return context.Background()
	}
	return e.ctx
}

// WorkerConfig configures a [Worker]. Every zero field means its
// default.
type WorkerConfig struct {
	// RegisterAddress is the Register's host:port ($worker->registerAddress).
	// Required.
	RegisterAddress string
	// SecretKey is sent to the Register (worker_connect), to every
	// Gateway (CMD_WORKER_CONNECT) and before every query
	// (CMD_GATEWAY_CLIENT_CONNECT), as $worker->secretKey. "" means none;
	// then a Register or Gateway that has a key refuses the Worker.
	SecretKey string
	// WorkerKey names the Worker to the Gateways (PHP sends
	// "<name>:<process id>"). A Gateway keeps one connection per remote
	// IP and WorkerKey, closing the older of two, so Workers on one host
	// need distinct keys. "" means "BusinessWorker:" and 8 random
	// characters, unique to this Worker.
	WorkerKey string
	// Handler receives the events. Nil means [NopWorkerHandler]: events
	// are read and dropped.
	Handler WorkerHandler
	// RetryDelay is how long to wait before reconnecting to the Register
	// or to a Gateway. Zero means DefaultRetryDelay (1 s, as PHP).
	RetryDelay time.Duration
	// PingInterval is how often {"event":"ping"} goes to the Register.
	// Zero means as PHP: DefaultPingInterval (25 s) unless
	// RegisterAddress starts with "127.0.0.1", then none. Negative means
	// never.
	PingInterval time.Duration
	// DialTimeout bounds each connection attempt to the Register or a
	// Gateway. Zero means 5 s.
	DialTimeout time.Duration
	// QueryTimeout bounds each query (IsOnline, GetSession, ...) to one
	// Gateway, from dialing to the reply. Zero means DefaultQueryTimeout
	// (5 s).
	QueryTimeout time.Duration
	// SendBuffer is how many bytes of commands may wait for one Gateway
	// connection; a command beyond it is dropped with ErrBufferFull.
	// Zero means DefaultWorkerSendBuffer (10 MiB).
	SendBuffer int
	// Logger receives Gateway connections and departures at Info, a
	// Register or Gateway that cannot be reached or refuses the Worker at
	// Warn (once per outage), and handler panics at Error. Nil discards.
	Logger *slog.Logger
}

// Validate returns every problem of c, joined.
func (c WorkerConfig) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.RegisterAddress); err != nil {
		errs = append(errs, fmt.Errorf("gatewayworker: worker: register address %q: %w", c.RegisterAddress, err))
	}
	if strings.ContainsAny(c.WorkerKey, "\r\n") {
		errs = append(errs, fmt.Errorf("gatewayworker: worker: worker key %q has a line break", c.WorkerKey))
	}
	return errors.Join(errs...)
}

// Worker is a BusinessWorker in Go: it asks a Register for the
// Gateways' inner addresses (worker_connect, following every
// broadcast_addresses), keeps one connection to each Gateway
// (CMD_WORKER_CONNECT with the secret key), passes the events it gets
// on them to its [WorkerHandler], and sends commands back as PHP's
// GatewayWorker\Lib\Gateway does inside a BusinessWorker: a command for
// a client goes over the connection to the Gateway named in its client
// id (the one its events come on), a command for everyone over every
// connection, and a query on a short connection of its own.
//
// It reconnects on its own: to the Register RetryDelay after the
// connection ends, keeping the addresses it has, and to a Gateway
// RetryDelay after its connection ends, as long as the Register still
// lists it. A connection to a Gateway that the Register stops listing is
// kept until it ends, as PHP keeps it.
//
// Create it with [NewWorker] and run it with [Worker.Run]. Its methods
// are safe for concurrent use.
type Worker struct {
	cfg     WorkerConfig
	handler WorkerHandler
	log     *slog.Logger
	running atomic.Bool

	mu    sync.Mutex
	addrs []string                // the Register's last list
	loops map[string]bool         // addresses with a connecting goroutine
	conns map[string]*gatewayConn // by address, once CMD_WORKER_CONNECT is queued

	smu      sync.Mutex
	sessions map[string]uint32 // client id → crc32 of the session last seen or sent
}

// gatewayConn is the Worker's connection to one Gateway.
type gatewayConn struct {
	addr string
	q    *sendQueue
}

// NewWorker returns a Worker with cfg's zero fields set to their
// defaults, or the problems of cfg (see [WorkerConfig.Validate]).
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.WorkerKey == "" {
		cfg.WorkerKey = "BusinessWorker:" + strings.ToLower(rand.Text()[:8])
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	if cfg.PingInterval == 0 && !strings.HasPrefix(cfg.RegisterAddress, "127.0.0.1") {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = workerDialTimeout
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	if cfg.SendBuffer <= 0 {
		cfg.SendBuffer = DefaultWorkerSendBuffer
	}
	w := &Worker{
		cfg:      cfg,
		handler:  cfg.Handler,
		log:      cfg.Logger,
		loops:    make(map[string]bool),
		conns:    make(map[string]*gatewayConn),
		sessions: make(map[string]uint32),
	}
	if w.handler == nil {
		w.handler = NopWorkerHandler{}
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.log = w.log.With("component", "gatewayworker-worker", "worker_key", cfg.WorkerKey)
	return w, nil
}

// WorkerKey returns the name the Worker gives the Gateways.
func (w *Worker) WorkerKey() string { return w.cfg.WorkerKey }

// Addresses returns the Gateway inner addresses the Register last
// listed, in its order.
func (w *Worker) Addresses() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.addrs)
}

// Gateways returns the addresses of the Gateways the Worker is connected
// to now, sorted.
func (w *Worker) Gateways() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.conns))
	for a := range w.conns {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Run connects to the Register and the Gateways and handles their
// events until ctx is done. Then it closes every connection, waits for
// every goroutine it started (and so for the handler calls under way)
// and returns nil. It returns an error at once if the Worker is already
// running.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("gatewayworker: worker: already running")
	}
	defer w.running.Store(false)
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		w.mu.Lock()
		w.addrs = nil
		w.mu.Unlock()
		w.smu.Lock()
		clear(w.sessions)
		w.smu.Unlock()
	}()
	w.registerLoop(ctx, &wg)
	return nil
}

// sleep waits d, or less if ctx ends first; it reports whether ctx is
// still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// registerLoop keeps a Register connection until ctx is done.
func (w *Worker) registerLoop(ctx context.Context, wg *sync.WaitGroup) {
	failing := false // a Register that cannot be reached is logged once
	for {
		got, err := w.registerSession(ctx, wg)
		if ctx.Err() != nil {
			return
		}
		switch {
		case got:
			w.log.Info("register connection closed, reconnecting", "register", w.cfg.RegisterAddress, "err", err, "retry", w.cfg.RetryDelay)
			failing = false
		case !failing:
			w.log.Warn("cannot get the gateway addresses from the register, retrying", "register", w.cfg.RegisterAddress, "err", err, "retry", w.cfg.RetryDelay)
			failing = true
		}
		if !sleep(ctx, w.cfg.RetryDelay) {
			return
		}
	}
}

// registerSession runs one Register connection until it ends. got
// reports whether an address list arrived.
func (w *Worker) registerSession(ctx context.Context, wg *sync.WaitGroup) (got bool, err error) {
	d := net.Dialer{Timeout: w.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", w.cfg.RegisterAddress)
	if err != nil {
		return false, err
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()

	var wmu sync.Mutex // the first line and the pings
	write := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := nc.Write(b)
		return err
	}
	if err := write(AppendWorkerConnect(nil, w.cfg.SecretKey)); err != nil {
		return false, err
	}
	if w.cfg.PingInterval > 0 {
		done := make(chan struct{})
		var pinger sync.WaitGroup
		pinger.Go(func() {
			t := time.NewTicker(w.cfg.PingInterval)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					if write(AppendPing(nil)) != nil {
						nc.Close()
						return
					}
				}
			}
		})
		defer func() {
			close(done)
			pinger.Wait()
		}()
	}

	br := bufio.NewReaderSize(nc, 1024)
	var buf []byte
	for {
		line, err := readLine(br, MaxPacketSize, buf)
		if err != nil {
			if !got && errors.Is(err, io.EOF) && ctx.Err() == nil {
				err = fmt.Errorf("gatewayworker: the register closed the connection before sending addresses (wrong secret key?): %w", ErrSecretKey)
			}
			return got, err
		}
		buf = line[:0]
		m, err := ParseRegisterLine(line)
		if err != nil {
			// The PHP BusinessWorker ignores what it cannot decode.
			w.log.Info("ignoring a bad line from the register", "err", err)
			continue
		}
		if m.Event != EventBroadcastAddresses {
			continue
		}
		got = true
		w.setAddresses(ctx, wg, m.Addresses)
	}
}

// setAddresses takes the Register's list and starts connecting to every
// address that has no connecting goroutine yet.
func (w *Worker) setAddresses(ctx context.Context, wg *sync.WaitGroup, addrs []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.addrs = slices.Clone(addrs)
	w.log.Debug("gateway addresses", "addresses", addrs)
	for _, a := range addrs {
		if w.loops[a] {
			continue
		}
		w.loops[a] = true
		wg.Go(func() { w.gatewayLoop(ctx, a) })
	}
}

// gatewayLoop keeps a connection to the Gateway at addr until ctx is
// done, or until the connection is down and the Register no longer
// lists addr.
func (w *Worker) gatewayLoop(ctx context.Context, addr string) {
	log := w.log.With("gateway", addr)
	failing := false
	for {
		up, err := w.gatewaySession(ctx, addr, log, failing)
		if ctx.Err() == nil {
			switch {
			case up:
				log.Info("gateway connection closed, reconnecting", "err", err, "retry", w.cfg.RetryDelay)
				failing = false
			case !failing:
				log.Warn("gateway unreachable or refused the worker (wrong secret key?), retrying", "err", err, "retry", w.cfg.RetryDelay)
				failing = true
			}
		}
		// The entry in loops is this goroutine's until it deletes it:
		// only then may setAddresses start another for addr.
		if ctx.Err() != nil || !sleep(ctx, w.cfg.RetryDelay) {
			w.mu.Lock()
			delete(w.loops, addr)
			w.mu.Unlock()
			return
		}
		w.mu.Lock()
		listed := slices.Contains(w.addrs, addr)
		if !listed {
			delete(w.loops, addr)
		}
		w.mu.Unlock()
		if !listed {
			log.Info("gateway no longer listed by the register")
			return
		}
	}
}

// gatewaySession runs one Gateway connection until it ends. up reports
// whether it worked for a while: a packet arrived, or it lasted
// quickClose. While failing, the connect is logged at Debug only.
func (w *Worker) gatewaySession(ctx context.Context, addr string, log *slog.Logger, failing bool) (up bool, err error) {
	d := net.Dialer{Timeout: w.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, err
	}
	start := time.Now()
	gc := &gatewayConn{addr: addr, q: newSendQueue(nc, w.cfg.SendBuffer, true)}
	stop := context.AfterFunc(ctx, gc.q.close)
	defer func() {
		stop()
		w.mu.Lock()
		if w.conns[addr] == gc {
			delete(w.conns, addr)
		}
		w.mu.Unlock()
		gc.q.close()
		gc.q.wait()
	}()
	auth, err := (&Packet{Cmd: CmdWorkerConnect, Flag: FlagBodyIsScalar, Body: w.workerConnectBody()}).Encode()
	if err != nil {
		return false, err
	}
	gc.q.send(auth)
	w.mu.Lock()
	old := w.conns[addr]
	w.conns[addr] = gc
	w.mu.Unlock()
	if old != nil {
		old.q.close() // cannot happen: one loop per address
	}
	level := slog.LevelInfo
	if failing {
		level = slog.LevelDebug
	}
	log.Log(ctx, level, "connected to the gateway")

	r := NewReader(nc)
	got := false
	for {
		p, err := r.ReadPacket()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				err = nil
			}
			return got || time.Since(start) >= quickClose, err
		}
		got = true
		w.handle(ctx, gc, p, log)
	}
}

// workerConnectBody is CMD_WORKER_CONNECT's body, json_encode'd as PHP
// does.
func (w *Worker) workerConnectBody() []byte {
	b := []byte(`{"worker_key":`)
	b = appendPHPJSONString(b, w.cfg.WorkerKey)
	b = append(b, `,"secret_key":`...)
	b = appendPHPJSONString(b, w.cfg.SecretKey)
	return append(b, '}')
}

// handle runs one packet from a Gateway, as BusinessWorker::onGatewayMessage.
func (w *Worker) handle(ctx context.Context, gc *gatewayConn, p *Packet, log *slog.Logger) {
	switch p.Cmd {
	case CmdPing:
		return
	case CmdOnConnect, CmdOnWebSocketConnect, CmdOnMessage, CmdOnClose:
	default:
		log.Debug("ignoring a packet a worker does not take", "cmd", p.Cmd)
		return
	}
	id := p.ClientID().String()
	e := &Event{
		Cmd:         p.Cmd,
		ClientID:    id,
		Client:      p.ClientAddr(),
		Gateway:     p.LocalAddr(),
		GatewayPort: p.GatewayPort,
		Worker:      w,
		ctx:         ctx,
	}

	// The session: ext_data, unless it is not the version this Worker
	// last saw or sent (a SET_SESSION of ours the Gateway had not yet run
	// when it sent the event): then, as PHP, the Gateway is asked.
	session := p.ExtData
	crc := crc32.ChecksumIEEE(session)
	w.smu.Lock()
	ver, known := w.sessions[id]
	switch {
	case p.Cmd == CmdOnClose:
		delete(w.sessions, id)
	case !known:
		w.sessions[id] = crc
	}
	w.smu.Unlock()
	if known && ver != crc && p.Cmd != CmdOnClose {
		fresh, err := w.query(ctx, gc.addr, Packet{Cmd: CmdGetSessionByClientID, ConnectionID: p.ConnectionID, Flag: FlagBodyIsScalar})
		if err != nil {
			log.Info("cannot fetch the session; using the event's", "client_id", id, "err", err)
		} else {
			session = fresh
		}
		w.smu.Lock()
		w.sessions[id] = crc
		w.smu.Unlock()
	}
	var before []byte
	if s, err := decodeSession(session); err != nil {
		log.Info("client's session is not a serialized array; taking none", "client_id", id, "err", err)
	} else if s != nil {
		e.Session = s
		before, _ = Serialize(s)
	}

	switch p.Cmd {
	case CmdOnMessage:
		msg, ok, err := p.BodyMessage()
		if err != nil || !ok {
			log.Info("dropping a message that is not a string", "client_id", id, "err", err)
			return
		}
		e.Message = msg
	case CmdOnWebSocketConnect:
		if v, err := Unserialize(p.Body); err == nil {
			e.Data, _ = v.(*Array)
		} else {
			log.Info("websocket connect data is not a serialized array", "client_id", id, "err", err)
		}
	}

	if !w.call(e, log) || p.Cmd == CmdOnClose {
		return
	}
	var now []byte
	if e.Session != nil {
		var err error
		if now, err = Serialize(e.Session); err != nil {
			log.Error("session not saved: it has no PHP serialize form", "client_id", id, "err", err)
			return
		}
	}
	if string(now) == string(before) {
		return
	}
	if err := w.sendOn(gc, Packet{Cmd: CmdSetSession, ConnectionID: p.ConnectionID, Flag: FlagBodyIsScalar, ExtData: now}); err != nil {
		log.Info("session not saved", "client_id", id, "err", err)
		return
	}
	w.smu.Lock()
	if _, ok := w.sessions[id]; ok {
		w.sessions[id] = crc32.ChecksumIEEE(now)
	}
	w.smu.Unlock()
}

// call runs the handler's method for e. A panic is logged with its
// stack; call then reports false.
func (w *Worker) call(e *Event, log *slog.Logger) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			log.Error("worker handler panicked", "cmd", e.Cmd, "client_id", e.ClientID, "panic", v, "stack", string(debug.Stack()))
			ok = false
		}
	}()
	switch e.Cmd {
	case CmdOnConnect:
		w.handler.OnConnect(e)
	case CmdOnWebSocketConnect:
		w.handler.OnWebSocketConnect(e)
	case CmdOnMessage:
		w.handler.OnMessage(e)
	case CmdOnClose:
		w.handler.OnClose(e)
	}
	return true
}

// decodeSession returns a stored session as an array: nil for none (""
// or a serialized null).
func decodeSession(s []byte) (*Array, error) {
	if len(s) == 0 {
		return nil, nil
	}
	v, err := Unserialize(s)
	if err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case nil:
		return nil, nil
	case *Array:
		return v, nil
	}
	return nil, errorf("session is %s, not an array", kindName(v))
}
