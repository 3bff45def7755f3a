package gatewayworker

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wssgate/wssgate/gateway"
)

// Hub is what the inner listener needs of the connection hub: the
// GatewayWorker API that *gateway.Hub has. Client ids are the hub's, and
// sessions are kept in the hub in their raw form, the PHP-serialized
// strings of [PHPSessionCodec], which the hub must have as its
// gateway.Options.SessionCodec.
type Hub interface {
	SendToAll(data []byte, only, exclude []string) int
	SendToClient(clientID string, data []byte) error
	SendToUID(data []byte, uids ...string) int
	SendToGroup(data []byte, groups []string, exclude []string) int
	JoinGroup(clientID, group string) (bool, error)
	LeaveGroup(clientID, group string) (bool, error)
	Ungroup(group string) int
	BindUID(clientID, uid string) (bool, error)
	UnbindUID(clientID, uid string) (bool, error)
	IsOnline(clientID string) bool
	GetClientIDByUID(uid string) []string
	GetUIDByClientID(clientID string) (string, error)
	GetAllClientIDCount() int
	GetAllClientIDList() []string
	GetClientIDCountByGroup(group string) int
	GetClientIDListByGroup(group string) []string
	GetAllGroupIDList() []string
	GetGroupsByClientID(clientID string) ([]string, error)
	CloseClient(clientID string, last []byte) error
	DestroyClient(clientID string) error
	GetSessionRaw(clientID string) ([]byte, error)
	SetSessionRaw(clientID string, session []byte) error
	ModifySessionRaw(clientID string, f func(old []byte) ([]byte, error)) error
}

// InnerConfig configures an [Inner]. Every zero field means its default.
type InnerConfig struct {
	// Address is the inner address announced to the Register (lan_ip and
	// the inner port). Client ids carry it, and GatewayClient routes a
	// client's commands to it, so the hub must make its ids from the
	// same address (gateway.Options.Node). Required, IPv4.
	Address netip.AddrPort
	// SecretKey must match the secret_key of CMD_WORKER_CONNECT and
	// CMD_GATEWAY_CLIENT_CONNECT, byte for byte. "" means none: every
	// connection may send commands at once, and a BusinessWorker that
	// sends a non-empty key is refused, as PHP does.
	SecretKey string
	// GatewayPort, if not zero, is the port written into every event as
	// gateway_port, and into CMD_ON_WEBSOCKET_CONNECT as SERVER_PORT,
	// instead of the port the client connected to (its text or WebSocket
	// listener's, or the edge's): for clients that reach wssgate through
	// a port mapping it does not see. Zero means the real port, as PHP.
	GatewayPort uint16
	// PingInterval is how often CMD_PING goes to every BusinessWorker.
	// Zero means as PHP: DefaultPingInterval (25 s) unless Address is
	// 127.0.0.1, then none. Negative means never.
	PingInterval time.Duration
	// WorkerBuffer is how many bytes of events (or replies) may wait for
	// one inner connection; events beyond it are dropped and counted
	// (PHP's sendToWorkerBufferSize). Zero means 1,024,000 bytes, PHP's
	// default.
	WorkerBuffer int
	// Logger receives one line per refused or broken inner connection at
	// Info, and worker arrivals and departures at Info. Nil discards.
	Logger *slog.Logger
}

// InnerStats are an inner listener's counters.
type InnerStats struct {
	Workers       int   // BusinessWorker connections now
	EventsSent    int64 // events queued to a BusinessWorker
	EventsDropped int64 // events dropped: no BusinessWorker, or its buffer full
	Commands      int64 // commands executed, authentication not counted
	BadPackets    int64 // inner connections closed for a malformed packet
}

// Inner is a Gateway's inner side: the listener BusinessWorkers and
// GatewayClient connect to (GatewayProtocol), and the [gateway.Handler]
// that turns the hub's client events into CMD_ON_CONNECT,
// CMD_ON_WEBSOCKET_CONNECT, CMD_ON_MESSAGE and CMD_ON_CLOSE for the
// BusinessWorkers. Pass it as the hub's Handler, then run [Inner.Serve]
// with the hub, which executes the commands.
//
// Each client's session is the PHP-serialized string the BusinessWorker
// sent, kept by the hub as its raw session (see [Hub]; the push API sees
// it as a map through [PHPSessionCodec]). Inner sends each client's
// events to one BusinessWorker connection, chosen at its first event
// (the one with the fewest clients) and changed only when that worker
// goes away. With no BusinessWorker connected, events are dropped and
// counted; clients are never blocked.
type Inner struct {
	addr        netip.AddrPort
	key         string
	gatewayPort uint16
	pingEvery   time.Duration
	workerBuf   int
	log         *slog.Logger

	// hub is the hub Serve runs commands on, which keeps the sessions;
	// nil before Serve (no BusinessWorker can be connected then, so
	// events are dropped anyway).
	hub atomic.Pointer[hubRef]

	mu      sync.Mutex
	workers []*worker          // in arrival order
	sticky  map[string]*worker // client id → its worker

	sent, dropped, commands, bad atomic.Int64
	warnedAddr                   atomic.Bool
}

type hubRef struct{ Hub }

type worker struct {
	key     string // remote IP + ":" + worker_key
	q       *sendQueue
	clients int // clients routed here, for the least-connections choice
}

// NewInner returns an inner listener for cfg, with its zero fields set
// to their defaults, or cfg's problems.
func NewInner(cfg InnerConfig) (*Inner, error) {
	var errs []error
	if !cfg.Address.IsValid() || !cfg.Address.Addr().Unmap().Is4() {
		errs = append(errs, fmt.Errorf("gatewayworker: inner: address %v is not an IPv4 address and port", cfg.Address))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	in := &Inner{
		addr:        netip.AddrPortFrom(cfg.Address.Addr().Unmap(), cfg.Address.Port()),
		key:         cfg.SecretKey,
		gatewayPort: cfg.GatewayPort,
		pingEvery:   cfg.PingInterval,
		workerBuf:   cfg.WorkerBuffer,
		log:         cfg.Logger,
		sticky:      make(map[string]*worker),
	}
	if in.pingEvery == 0 && in.addr.Addr() != netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
		in.pingEvery = DefaultPingInterval
	}
	if in.workerBuf <= 0 {
		in.workerBuf = 1024000
	}
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	in.log = in.log.With("component", "gatewayworker-inner")
	return in, nil
}

// Stats returns the counters.
func (in *Inner) Stats() InnerStats {
	in.mu.Lock()
	n := len(in.workers)
	in.mu.Unlock()
	return InnerStats{Workers: n, EventsSent: in.sent.Load(), EventsDropped: in.dropped.Load(), Commands: in.commands.Load(), BadPackets: in.bad.Load()}
}

// clientID returns the hub's client id for a connection id of ours.
func (in *Inner) clientID(conn uint32) string {
	return ClientID{Addr: in.addr, ConnectionID: conn}.String()
}

// Serve accepts inner connections on ln until ctx is done or ln fails,
// and sends CMD_PING to the BusinessWorkers every PingInterval. Then it
// closes ln and every connection it accepted, waits for their
// goroutines and returns (nil when ctx ended it or ln was closed).
func (in *Inner) Serve(ctx context.Context, ln net.Listener, hub Hub) error {
	if hub == nil {
		ln.Close()
		return errors.New("gatewayworker: inner: no hub")
	}
	if _, err := hub.GetSessionRaw(""); errors.Is(err, gateway.ErrNoSessionCodec) {
		ln.Close()
		return errors.New("gatewayworker: inner: the hub keeps no raw sessions (set gateway.Options.SessionCodec to gatewayworker.PHPSessionCodec{})")
	}
	in.hub.Store(&hubRef{hub})
	var ping func(context.Context)
	if in.pingEvery > 0 {
		ping = in.pingWorkers
	}
	return serveConns(ctx, ln, func(ctx context.Context, nc net.Conn) { in.serveConn(ctx, nc, hub) }, ping)
}

func (in *Inner) pingWorkers(ctx context.Context) {
	ping, _ := (&Packet{Cmd: CmdPing, Flag: FlagBodyIsScalar}).Encode()
	t := time.NewTicker(in.pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			in.mu.Lock()
			for _, w := range in.workers {
				w.q.send(ping)
			}
			in.mu.Unlock()
		}
	}
}

// innerConn is one inner connection: a BusinessWorker's or a
// GatewayClient's.
type innerConn struct {
	in         *Inner
	hub        Hub
	nc         net.Conn
	q          *sendQueue
	log        *slog.Logger
	authorized bool
	worker     *worker // set by CMD_WORKER_CONNECT
}

func (in *Inner) serveConn(ctx context.Context, nc net.Conn, hub Hub) {
	c := &innerConn{
		in:         in,
		hub:        hub,
		nc:         nc,
		q:          newSendQueue(nc, in.workerBuf, true),
		log:        in.log.With("remote", nc.RemoteAddr().String()),
		authorized: in.key == "",
	}
	stop := context.AfterFunc(ctx, c.q.close)
	defer func() {
		stop()
		c.q.closeAfterSends() // a reply still queued goes out
		c.q.wait()
		in.removeWorker(c.worker)
	}()
	r := NewReader(nc)
	for {
		p, err := r.ReadPacket()
		if err != nil {
			var pe *PacketError
			switch {
			case errors.As(err, &pe):
				in.bad.Add(1)
				c.log.Info("bad inner packet, closing the connection", "err", err)
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), ctx.Err() != nil:
			default:
				c.log.Debug("inner connection ended", "err", err)
			}
			return
		}
		if err := c.handle(p); err != nil {
			c.log.Info("closing the inner connection", "cmd", p.Cmd, "err", err)
			return
		}
	}
}

func (in *Inner) removeWorker(w *worker) {
	if w == nil {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	i := slices.Index(in.workers, w)
	if i < 0 {
		return
	}
	in.workers = slices.Delete(in.workers, i, i+1)
	// Its clients choose again at their next event.
	for id, x := range in.sticky {
		if x == w {
			delete(in.sticky, id)
		}
	}
	in.log.Info("business worker left", "worker", w.key, "workers", len(in.workers))
}

// authBody is the JSON body of CMD_WORKER_CONNECT and
// CMD_GATEWAY_CLIENT_CONNECT.
type authBody struct {
	WorkerKey string          `json:"worker_key"`
	SecretKey json.RawMessage `json:"secret_key"`
}

func (in *Inner) keyMatches(raw json.RawMessage) bool {
	var k string
	if len(raw) > 0 && json.Unmarshal(raw, &k) != nil {
		return false // not a string: PHP's !== never matches it
	}
	return subtle.ConstantTimeCompare([]byte(k), []byte(in.key)) == 1
}

// reply queues a query's reply.
func (c *innerConn) reply(v any) error {
	b, err := AppendReplyValue(nil, v)
	if err != nil {
		return err
	}
	c.q.send(b)
	return nil
}

func (c *innerConn) addWorker(workerKey string) {
	in := c.in
	host, _, _ := net.SplitHostPort(c.nc.RemoteAddr().String())
	key := host + ":" + workerKey
	w := &worker{key: key, q: c.q}
	in.mu.Lock()
	var old *worker
	for _, x := range in.workers {
		if x.key == key {
			old = x
		}
	}
	in.workers = append(in.workers, w)
	n := len(in.workers)
	in.mu.Unlock()
	c.worker = w
	if old != nil {
		// Two workers under one name: the old one goes, as PHP does.
		in.log.Info("business worker name conflict; closing the old connection", "worker", key)
		in.removeWorker(old)
		old.q.close()
	}
	in.log.Info("business worker connected", "worker", key, "workers", n)
}
