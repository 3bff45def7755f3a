package gatewayworker

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
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

// header returns the event header of a client.
func (in *Inner) header(c gateway.ClientInfo) (EventHeader, bool) {
	id, err := ParseClientID(c.ID)
	if err != nil {
		in.log.Error("hub client id is not a GatewayWorker client id", "client_id", c.ID, "err", err)
		return EventHeader{}, false
	}
	if id.Addr != in.addr && !in.warnedAddr.Swap(true) {
		in.log.Warn("hub client ids name another address than the inner listener's; GatewayClient will route to it", "id_address", id.Addr, "inner_address", in.addr)
	}
	return EventHeader{ID: id, Client: c.Addr, GatewayPort: in.port(c)}, true
}

// port is the port a client connected to, as events tell it.
func (in *Inner) port(c gateway.ClientInfo) uint16 {
	if in.gatewayPort != 0 {
		return in.gatewayPort
	}
	return c.LocalAddr.Port()
}

// session returns a connected client's session from the hub; nil (no
// session) if it has gone or there is no hub yet.
func (in *Inner) session(id string) []byte {
	hub := in.hub.Load()
	if hub == nil {
		return nil
	}
	s, err := hub.GetSessionRaw(id)
	if err != nil && !errors.Is(err, gateway.ErrClientNotFound) {
		in.log.Info("session not sent", "client_id", id, "err", err)
	}
	return s
}

// closedSession returns the session OnClose tells of: the raw one, or
// the PHP form of the map the push API set last.
func (in *Inner) closedSession(c gateway.ClientInfo) []byte {
	if c.SessionRaw != nil || c.Session == nil {
		return c.SessionRaw
	}
	s, err := PHPSessionCodec{}.Marshal(c.Session)
	if err != nil {
		in.log.Info("session not sent", "client_id", c.ID, "err", err)
	}
	return s
}

// dispatch queues an event packet to the client's worker.
func (in *Inner) dispatch(id string, p Packet, last bool) {
	b, err := p.Encode()
	if err != nil {
		in.dropped.Add(1)
		in.log.Info("event not sent", "client_id", id, "cmd", p.Cmd, "err", err)
		return
	}
	in.mu.Lock()
	w := in.routeLocked(id)
	if last {
		if w != nil {
			delete(in.sticky, id)
			w.clients--
		}
	}
	in.mu.Unlock()
	if w == nil || !w.q.send(b) {
		in.dropped.Add(1)
		return
	}
	in.sent.Add(1)
}

// routeLocked returns the worker for a client's event: the one it has,
// or the one with the fewest clients (the first of them in arrival
// order), as GatewayWorker's routerBind with least connections.
func (in *Inner) routeLocked(id string) *worker {
	if w, ok := in.sticky[id]; ok {
		return w
	}
	if len(in.workers) == 0 {
		return nil
	}
	best := in.workers[0]
	for _, w := range in.workers[1:] {
		if w.clients < best.clients {
			best = w
		}
	}
	best.clients++
	in.sticky[id] = best
	return best
}

// OnConnect implements gateway.Handler: CMD_ON_CONNECT, with no session
// yet.
func (in *Inner) OnConnect(c gateway.ClientInfo) {
	h, ok := in.header(c)
	if !ok {
		return
	}
	in.dispatch(c.ID, h.Event(CmdOnConnect, nil, nil), false)
}

// OnWebSocketConnect implements gateway.Handler:
// CMD_ON_WEBSOCKET_CONNECT, with what the hub tells of the upgrade
// request (see [HandshakeFromWebSocketRequest]).
func (in *Inner) OnWebSocketConnect(c gateway.ClientInfo, r *gateway.WebSocketRequest) {
	h, ok := in.header(c)
	if !ok {
		return
	}
	hs := HandshakeFromWebSocketRequest(r, c.Addr, h.GatewayPort)
	p, err := h.WebSocketConnect(in.session(c.ID), &hs)
	if err != nil {
		in.dropped.Add(1)
		return
	}
	in.dispatch(c.ID, p, false)
}

// OnMessage implements gateway.Handler: CMD_ON_MESSAGE.
func (in *Inner) OnMessage(c gateway.ClientInfo, data []byte) {
	h, ok := in.header(c)
	if !ok {
		return
	}
	// Encode copies data, which is valid only during the call.
	in.dispatch(c.ID, h.Event(CmdOnMessage, in.session(c.ID), data), false)
}

// OnClose implements gateway.Handler: CMD_ON_CLOSE with the last
// session; the client's worker choice is forgotten.
func (in *Inner) OnClose(c gateway.ClientInfo) {
	h, ok := in.header(c)
	if !ok {
		return
	}
	in.dispatch(c.ID, h.Event(CmdOnClose, in.closedSession(c), nil), true)
}

// HandshakeFromWebSocketRequest fills a Handshake from what the hub
// passes to OnWebSocketConnect: remote is the client's address and
// serverPort the port it connected to (gateway.ClientInfo's Addr and
// LocalAddr). A field the request lacks (one not read by a server) is
// as a client sends it: GET, the path and re-encoded query, HTTP/1.1.
// Go keeps no header order: Header holds Host first, then the other
// headers sorted by name.
func HandshakeFromWebSocketRequest(r *gateway.WebSocketRequest, remote netip.AddrPort, serverPort uint16) Handshake {
	hs := Handshake{Method: "GET", Proto: "HTTP/1.1", RequestURI: "/", RemoteAddr: remote, ServerPort: serverPort}
	if r == nil {
		return hs
	}
	if r.Method != "" {
		hs.Method = r.Method
	}
	if r.Proto != "" {
		hs.Proto = r.Proto
	}
	switch {
	case r.RequestURI != "":
		hs.RequestURI = r.RequestURI
	case r.Path != "":
		hs.RequestURI = r.Path
		if q := r.Query.Encode(); q != "" {
			hs.RequestURI += "?" + q
		}
	}
	hs.Host = r.Host
	if hs.Host == "" {
		hs.Host = r.Header.Get("Host")
	}
	if hs.Host != "" {
		hs.Header = append(hs.Header, HeaderField{"Host", hs.Host})
	}
	for _, name := range slices.Sorted(maps.Keys(r.Header)) {
		if strings.EqualFold(name, "Host") {
			continue
		}
		for _, v := range r.Header[name] {
			hs.Header = append(hs.Header, HeaderField{name, v})
		}
	}
	return hs
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

// handle executes one packet. An error closes the connection.
func (c *innerConn) handle(p *Packet) error {
	in, hub := c.in, c.hub
	if !c.authorized && p.Cmd != CmdWorkerConnect && p.Cmd != CmdGatewayClientConnect {
		return fmt.Errorf("%w: %v before authenticating", ErrUnauthorized, p.Cmd)
	}
	if p.Cmd != CmdWorkerConnect && p.Cmd != CmdGatewayClientConnect {
		in.commands.Add(1) // authentication is not a command run
	}
	id := in.clientID(p.ConnectionID)
	switch p.Cmd {
	case CmdWorkerConnect, CmdGatewayClientConnect:
		var a authBody
		if err := json.Unmarshal(p.Body, &a); err != nil {
			return fmt.Errorf("%w: auth body: %v", ErrSecretKey, err)
		}
		if !in.keyMatches(a.SecretKey) {
			return ErrSecretKey
		}
		c.authorized = true
		if p.Cmd == CmdWorkerConnect && c.worker == nil {
			c.addWorker(a.WorkerKey)
		}
	case CmdSendToOne:
		return c.send(p, func(msg []byte) { hub.SendToClient(id, msg) })
	case CmdSendToAll:
		var ext struct {
			Connections json.RawMessage `json:"connections"`
			Exclude     json.RawMessage `json:"exclude"`
		}
		if len(p.ExtData) > 0 {
			if err := json.Unmarshal(p.ExtData, &ext); err != nil {
				return fmt.Errorf("sendToAll ext_data: %v", err)
			}
		}
		only, err := in.connectionIDs(ext.Connections)
		if err != nil {
			return err
		}
		exclude, err := in.connectionIDs(ext.Exclude)
		if err != nil {
			return err
		}
		if ext.Connections != nil && only == nil {
			only = []string{} // listed, but nobody
		}
		return c.send(p, func(msg []byte) {
			if only != nil {
				hub.SendToAll(msg, only, nil)
			} else {
				hub.SendToAll(msg, nil, exclude)
			}
		})
	case CmdKick:
		msg, ok, err := p.BodyMessage()
		if err != nil {
			return err
		}
		if !ok {
			msg = nil
		} else if msg == nil {
			msg = []byte{}
		}
		hub.CloseClient(id, msg)
	case CmdDestroy:
		hub.DestroyClient(id)
	case CmdUpdateSession:
		// A command for a client that left stores nothing.
		err := hub.ModifySessionRaw(id, func(old []byte) ([]byte, error) { return UpdateSession(old, p.ExtData) })
		if err != nil && !errors.Is(err, gateway.ErrClientNotFound) {
			c.log.Info("session update not applied", "client_id", id, "err", err)
		}
	case CmdGetAllClientSessions:
		return c.reply(sessionsOf(hub, hub.GetAllClientIDList()))
	case CmdIsOnline:
		return c.reply(boolInt(hub.IsOnline(id)))
	case CmdBindUID:
		if phpEmpty(p.ExtData) {
			return nil
		}
		hub.BindUID(id, string(p.ExtData))
	case CmdUnbindUID:
		// The Gateway unbinds whatever uid the client has.
		if uid, err := hub.GetUIDByClientID(id); err == nil && uid != "" {
			hub.UnbindUID(id, uid)
		}
	case CmdSendToUID:
		uids, err := jsonStrings(p.ExtData)
		if err != nil {
			return fmt.Errorf("sendToUid ext_data: %w", err)
		}
		return c.send(p, func(msg []byte) { hub.SendToUID(msg, uids...) })
	case CmdGetClientIDByUID:
		return c.reply(in.connList(hub.GetClientIDByUID(string(p.ExtData))))
	case CmdBatchGetClientIDByUID:
		uids, err := jsonStrings(p.ExtData)
		if err != nil {
			return fmt.Errorf("batchGetClientIdByUid ext_data: %w", err)
		}
		out := &Array{}
		for _, uid := range uids {
			out.Set(StringKey(uid), in.connList(hub.GetClientIDByUID(uid)))
		}
		return c.reply(out)
	case CmdJoinGroup:
		if phpEmpty(p.ExtData) {
			return nil
		}
		hub.JoinGroup(id, string(p.ExtData))
	case CmdLeaveGroup:
		if phpEmpty(p.ExtData) {
			return nil
		}
		hub.LeaveGroup(id, string(p.ExtData))
	case CmdUngroup:
		if phpEmpty(p.ExtData) {
			return nil
		}
		hub.Ungroup(string(p.ExtData))
	case CmdSendToGroup:
		var ext struct {
			Group   json.RawMessage `json:"group"`
			Exclude json.RawMessage `json:"exclude"`
		}
		if err := json.Unmarshal(p.ExtData, &ext); err != nil {
			return fmt.Errorf("sendToGroup ext_data: %v", err)
		}
		groups, err := jsonStrings(ext.Group)
		if err != nil {
			return fmt.Errorf("sendToGroup groups: %w", err)
		}
		exclude, err := in.connectionIDs(ext.Exclude)
		if err != nil {
			return err
		}
		// Once per group, as PHP: a client in two of the groups gets
		// the message twice.
		return c.send(p, func(msg []byte) {
			for _, g := range groups {
				hub.SendToGroup(msg, []string{g}, exclude)
			}
		})
	case CmdGetClientSessionsByGroup:
		return c.reply(sessionsOf(hub, hub.GetClientIDListByGroup(string(p.ExtData))))
	case CmdGetClientCountByGroup:
		if len(p.ExtData) == 0 {
			return c.reply(int64(hub.GetAllClientIDCount()))
		}
		return c.reply(int64(hub.GetClientIDCountByGroup(string(p.ExtData))))
	case CmdSelect:
		return c.reply(in.selectClients(hub, p.ExtData))
	case CmdGetGroupIDList:
		return c.reply(hub.GetAllGroupIDList())
	case CmdBatchGetClientCountByGroup:
		groups, err := jsonStrings(p.ExtData)
		if err != nil {
			return fmt.Errorf("batchGetClientIdCountByGroup ext_data: %w", err)
		}
		out := &Array{}
		for _, g := range groups {
			out.Set(StringKey(g), int64(hub.GetClientIDCountByGroup(g)))
		}
		return c.reply(out)
	case CmdGetSessionByClientID:
		s, err := hub.GetSessionRaw(id)
		switch {
		case errors.Is(err, gateway.ErrClientNotFound):
			s = []byte("N;")
		case err != nil:
			c.log.Info("session not read", "client_id", id, "err", err)
			s = []byte("N;")
		case phpEmpty(s):
			s = []byte("a:0:{}")
		}
		c.q.send(AppendReply(nil, s))
	case CmdSetSession:
		// A command for a client that left stores nothing.
		hub.SetSessionRaw(id, p.ExtData)
	default:
		// Events and pings sent to a Gateway: PHP logs and goes on.
		c.log.Debug("ignoring a command a gateway does not take", "cmd", p.Cmd)
	}
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

// send runs f with the message of a send command: its body, or for a
// raw (FLAG_NOT_CALL_ENCODE) body the payloads of the WebSocket frames
// it holds.
func (c *innerConn) send(p *Packet, f func(msg []byte)) error {
	msg, ok, err := p.BodyMessage()
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	if p.Raw() {
		if payloads, ok := framePayloads(msg); ok {
			for _, m := range payloads {
				f(m)
			}
			return nil
		}
	}
	f(msg) // the packet's own bytes: the hub may keep them
	return nil
}

// sessionsOf returns [connection id => session string] for the ids of
// clients still connected.
func sessionsOf(hub Hub, ids []string) *Array {
	out := NewArray(len(ids))
	for _, id := range ids {
		cid, err := ParseClientID(id)
		if err != nil {
			continue
		}
		if s, err := hub.GetSessionRaw(id); err == nil {
			out.Set(IntKey(int64(cid.ConnectionID)), string(s))
		}
	}
	return out
}

// connList returns the connection ids of client ids as a PHP list.
func (in *Inner) connList(ids []string) *Array {
	out := NewArray(len(ids))
	for _, id := range ids {
		if cid, err := ParseClientID(id); err == nil {
			out.Append(int64(cid.ConnectionID))
		}
	}
	return out
}

// connectionIDs turns a JSON set of connection ids ({"1":1} or [1]) into
// client ids; null or absent is nil.
func (in *Inner) connectionIDs(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	v, err := FromJSON(raw)
	if err != nil {
		return nil, err
	}
	a, ok := v.(*Array)
	if !ok {
		return nil, errorf("connection ids are %s, not an array", kindName(v))
	}
	var out []string
	for _, e := range a.All() {
		n, ok := phpInt(e)
		if ok && n >= 0 && n <= 1<<32-1 {
			out = append(out, in.clientID(uint32(n)))
		}
	}
	return out, nil
}

// selectClients is CMD_SELECT: ext_data {"fields":[...],"where":...}.
func (in *Inner) selectClients(hub Hub, ext []byte) *Array {
	out := &Array{}
	v, err := FromJSON(ext)
	q, _ := v.(*Array)
	if err != nil || q == nil || q.Len() == 0 {
		return out
	}
	fieldsV, _ := q.Get(StringKey("fields"))
	var fields []string
	if fa, ok := fieldsV.(*Array); ok {
		for _, f := range fa.All() {
			fields = append(fields, scalarString(f))
		}
	}
	row := func(id string) {
		cid, err := ParseClientID(id)
		if err != nil || !hub.IsOnline(id) {
			return
		}
		k := IntKey(int64(cid.ConnectionID))
		if _, ok := out.Get(k); ok {
			return
		}
		r := &Array{}
		for _, f := range fields {
			r.Set(StringKey(f), in.field(hub, id, f))
		}
		out.Set(k, r)
	}
	whereV, _ := q.Get(StringKey("where"))
	where, _ := whereV.(*Array)
	if where.Len() == 0 {
		for _, id := range hub.GetAllClientIDList() {
			row(id)
		}
		return out
	}
	for key, items := range where.All() {
		list, _ := items.(*Array)
		for _, item := range list.All() {
			switch key.String() {
			case "groups":
				for _, id := range hub.GetClientIDListByGroup(scalarString(item)) {
					row(id)
				}
			case "uid":
				for _, id := range hub.GetClientIDByUID(scalarString(item)) {
					row(id)
				}
			case "connection_id":
				if n, ok := phpInt(item); ok && n >= 0 && n <= 1<<32-1 {
					row(in.clientID(uint32(n)))
				}
			}
		}
	}
	return out
}

// field is one CMD_SELECT field of a client: uid, groups or session.
func (in *Inner) field(hub Hub, id, name string) any {
	switch name {
	case "uid":
		if uid, err := hub.GetUIDByClientID(id); err == nil && uid != "" {
			return uid
		}
	case "groups":
		// [group => group], null for none, as PHP's $connection->groups.
		if groups, _ := hub.GetGroupsByClientID(id); len(groups) > 0 {
			gs := NewArray(len(groups))
			for _, g := range groups {
				gs.Set(StringKey(g), g)
			}
			return gs
		}
	case "session":
		s, _ := hub.GetSessionRaw(id)
		return string(s)
	}
	return nil
}

// jsonStrings decodes a JSON list (or object) of strings or numbers into
// their PHP string forms, in order.
func jsonStrings(raw []byte) ([]string, error) {
	v, err := FromJSON(raw)
	if err != nil {
		return nil, err
	}
	a, ok := v.(*Array)
	if !ok {
		return nil, errorf("%s, not an array", kindName(v))
	}
	out := make([]string, 0, a.Len())
	for _, e := range a.All() {
		out = append(out, scalarString(e))
	}
	return out, nil
}

// phpInt returns an integer or numeric string's value.
func phpInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case string:
		k := StringKey(v)
		return k.Int(), !k.IsString()
	case float64:
		return int64(v), v == float64(int64(v))
	}
	return 0, false
}

// phpEmpty is PHP's empty() for a string: "" and "0".
func phpEmpty(s []byte) bool { return len(s) == 0 || string(s) == "0" }

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func bytesClone(b []byte) []byte { return append([]byte{}, b...) }

// framePayloads returns the payloads of the unmasked, final WebSocket
// data frames b consists of, as a raw send carries them; ok is false if
// b is not exactly such frames.
func framePayloads(b []byte) (payloads [][]byte, ok bool) {
	for len(b) > 0 {
		if len(b) < 2 || b[0]&0x80 == 0 || b[0]&0x70 != 0 || b[1]&0x80 != 0 {
			return nil, false
		}
		op := b[0] & 0x0f
		if op != 1 && op != 2 {
			return nil, false
		}
		n, h := uint64(b[1]&0x7f), 2
		switch n {
		case 126:
			if len(b) < 4 {
				return nil, false
			}
			n, h = uint64(b[2])<<8|uint64(b[3]), 4
		case 127:
			if len(b) < 10 {
				return nil, false
			}
			n = 0
			for _, x := range b[2:10] {
				n = n<<8 | uint64(x)
			}
			h = 10
		}
		if uint64(len(b)-h) < n {
			return nil, false
		}
		payloads = append(payloads, bytesClone(b[h:h+int(n)]))
		b = b[h+int(n):]
	}
	return payloads, len(payloads) > 0
}
