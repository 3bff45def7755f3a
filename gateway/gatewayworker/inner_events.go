package gatewayworker

// This file holds the Inner's side as the hub's gateway.Handler: the
// events it sends the BusinessWorkers, and the worker each client sticks to.

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/wssgate/wssgate/gateway"
)

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
