package gatewayworker

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Timings of the Register protocol, as GatewayWorker has them.
const (
	// DefaultAuthTimeout is how long the Register waits for a
	// connection's first line ("Register auth timeout").
	DefaultAuthTimeout = 10 * time.Second
	// DefaultRetryDelay is how long a Gateway or BusinessWorker waits
	// before reconnecting to the Register.
	DefaultRetryDelay = time.Second
	// DefaultPingInterval is how often a Gateway or BusinessWorker pings
	// a Register that is not on 127.0.0.1, and a Gateway pings its
	// BusinessWorkers when its lan_ip is not 127.0.0.1
	// (PERSISTENCE_CONNECTION_PING_INTERVAL).
	DefaultPingInterval = 25 * time.Second
	// registerQueue is how many bytes may wait for one Register peer; a
	// peer with more unsent is dropped.
	registerQueue = 1 << 20
)

// RegisterConfig configures a [Register]. Every zero field means its
// default.
type RegisterConfig struct {
	// SecretKey must equal the secret_key of every gateway_connect and
	// worker_connect, byte for byte. "" means no key: then a peer that
	// sends a non-empty key is refused, as the PHP Register does.
	SecretKey string
	// AuthTimeout closes a connection that sends no line within it.
	// Zero means DefaultAuthTimeout (10 s).
	AuthTimeout time.Duration
	// Logger receives refused connections at Info and registrations at
	// Debug. Nil discards them.
	Logger *slog.Logger
}

// Register is GatewayWorker's Register service: Gateways announce their
// inner addresses (gateway_connect), BusinessWorkers and GatewayClient
// ask for them (worker_connect) and get the list (broadcast_addresses),
// again whenever a Gateway comes or goes. It is safe for concurrent
// use. Create it with [NewRegister] and run it with [Register.Serve].
type Register struct {
	key         string
	authTimeout time.Duration
	log         *slog.Logger

	mu       sync.Mutex
	nextID   uint64
	gateways []gatewayEntry        // in registration order, as PHP's array
	workers  map[uint64]*sendQueue // by connection id
}

type gatewayEntry struct {
	id   uint64
	addr string
}

// NewRegister returns a Register with cfg's zero fields set to their
// defaults.
func NewRegister(cfg RegisterConfig) *Register {
	r := &Register{
		key:         cfg.SecretKey,
		authTimeout: cfg.AuthTimeout,
		log:         cfg.Logger,
		workers:     make(map[uint64]*sendQueue),
	}
	if r.authTimeout <= 0 {
		r.authTimeout = DefaultAuthTimeout
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "gatewayworker-register")
	return r
}

// Addresses returns the gateway addresses the Register hands out, in
// registration order without repeats.
func (r *Register) Addresses() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addressesLocked()
}

func (r *Register) addressesLocked() []string {
	out := make([]string, 0, len(r.gateways))
	for _, g := range r.gateways {
		if !slices.Contains(out, g.addr) {
			out = append(out, g.addr)
		}
	}
	return out
}

// AddGateway registers a gateway address from inside the process (the
// gateway wssgate itself runs), as a gateway_connect would, and tells
// every worker. The function it returns removes it again (once; later
// calls do nothing).
func (r *Register) AddGateway(addr string) (remove func()) {
	r.mu.Lock()
	id := r.newIDLocked()
	r.gateways = append(r.gateways, gatewayEntry{id, addr})
	r.broadcastLocked()
	r.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { r.dropGateway(id) }) }
}

func (r *Register) newIDLocked() uint64 {
	r.nextID++
	return r.nextID
}

// dropGateway forgets a gateway registration and, if there was one,
// tells every worker.
func (r *Register) dropGateway(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.gateways, func(g gatewayEntry) bool { return g.id == id })
	if i < 0 {
		return
	}
	r.gateways = slices.Delete(r.gateways, i, i+1)
	r.broadcastLocked()
}

// broadcastLocked queues the address list to every worker.
func (r *Register) broadcastLocked() {
	line := AppendBroadcastAddresses(nil, r.addressesLocked())
	for _, w := range r.workers {
		w.send(line)
	}
}

// Serve accepts Register connections on ln until ctx is done or ln
// fails, then closes ln and every connection it accepted, waits for
// their goroutines and returns (nil when ctx ended it or ln was closed).
func (r *Register) Serve(ctx context.Context, ln net.Listener) error {
	return serveConns(ctx, ln, r.serveConn, nil)
}

// serveConn runs one Register connection until it ends or ctx is done.
func (r *Register) serveConn(ctx context.Context, nc net.Conn) {
	p := newSendQueue(nc, registerQueue, false)
	stop := context.AfterFunc(ctx, p.close)
	defer func() {
		stop()
		p.close()
		p.wait()
	}()
	r.mu.Lock()
	id := r.newIDLocked()
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.workers, id)
		r.mu.Unlock()
		r.dropGateway(id)
	}()
	log := r.log.With("remote", nc.RemoteAddr().String())

	br := bufio.NewReaderSize(nc, 1024)
	var buf []byte
	nc.SetReadDeadline(time.Now().Add(r.authTimeout))
	first := true
	for {
		line, err := readLine(br, MaxPacketSize, buf)
		if err != nil {
			var ne net.Error
			switch {
			case first && errors.As(err, &ne) && ne.Timeout():
				log.Info("register auth timeout: no line", "timeout", r.authTimeout)
			case errors.Is(err, ErrPacketTooLarge):
				log.Info("register line too long, closing")
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			default:
				log.Debug("register connection ended", "err", err)
			}
			return
		}
		buf = line[:0]
		if first {
			// As PHP, the timer goes with the first line, whatever it is.
			nc.SetReadDeadline(time.Time{})
			first = false
		}
		m, err := ParseRegisterLine(line)
		if err != nil {
			log.Info("bad request for register service, closing", "err", err)
			p.send([]byte("Bad request for Register service.\n"))
			p.closeAfterSends()
			p.wait()
			return
		}
		switch m.Event {
		case EventGatewayConnect:
			if m.Address == "" {
				log.Info("gateway_connect without an address, closing")
				return
			}
			if !r.keyMatches(m.SecretKey) {
				log.Info("register: key does not match", "event", m.Event)
				return
			}
			log.Debug("gateway registered", "address", m.Address)
			r.mu.Lock()
			r.gateways = append(r.gateways, gatewayEntry{id, m.Address})
			r.broadcastLocked()
			r.mu.Unlock()
		case EventWorkerConnect:
			if !r.keyMatches(m.SecretKey) {
				log.Info("register: key does not match", "event", m.Event)
				return
			}
			r.mu.Lock()
			r.workers[id] = p
			p.send(AppendBroadcastAddresses(nil, r.addressesLocked()))
			r.mu.Unlock()
		case EventPing:
		default:
			log.Info("register unknown event, closing", "event", strconv.Quote(m.Event))
			return
		}
	}
}

func (r *Register) keyMatches(k string) bool {
	return subtle.ConstantTimeCompare([]byte(k), []byte(r.key)) == 1
}
