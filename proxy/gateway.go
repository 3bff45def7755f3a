package proxy

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
)

// serveGateway hands a WebSocket upgrade to the in-process gateway
// handler, after the checks every upgrade gets at the edge (method,
// version, key, Origin, shutdown). The gateway may serve the connection
// on this goroutine until it ends, or take it over with [Detach] and serve
// it on goroutines of its own (which frees the HTTP server's state for
// the connection); either way the route's connection slot and the
// access line cover the connection's whole life. Unless it returns
// errDetached, the caller releases the slot.
//
// The route counts the connection as a stream when the gateway hijacks
// it, and as a failed handshake otherwise; its messages are the gateway's
// to count.
func (p *Proxy) serveGateway(w *responseRecorder, r *http.Request, rt *route, ci clientInfo, rec *accessRecord, sl slot) error {
	rec.websocket = true
	if p.gateway == nil {
		rt.ctr.handshakesFailed.Add(1)
		return fmt.Errorf("%w: no gateway is configured", ErrNoUpstream)
	}
	if err := p.admitUpgrade(r, rt); err != nil {
		rt.ctr.handshakesFailed.Add(1)
		return err
	}
	rec.upstream = "gateway"
	addr := ci.addrPort(r)
	h := &detachClaim{rec: rec}
	h.finish = func() {
		sl.release()
		p.logAccess(rec)
	}
	ctx := context.WithValue(r.Context(), clientAddrKey{}, addr)
	ctx = context.WithValue(ctx, detachKey{}, h)
	w.gateway = rt.ctr
	p.gateway.ServeHTTP(w, r.WithContext(ctx))
	if h.taken.Load() {
		return errDetached // h.finish releases and logs when the connection ends
	}
	if w.hijacked {
		rec.status = http.StatusSwitchingProtocols
	} else {
		rt.ctr.handshakesFailed.Add(1)
	}
	return nil
}

// detachClaim is a gateway connection's claim on its slot and access
// record, taken by [Detach].
type detachClaim struct {
	rec    *accessRecord
	taken  atomic.Bool
	once   sync.Once
	finish func()
}

type detachKey struct{}

// Detach lets the in-process gateway serve an upgraded connection after
// its handler has returned. Called by the handler once the connection is
// hijacked, it returns the function to call when the connection has
// ended: the edge then gives back the connection's slot and writes its
// access line. For a request that did not come through the edge's
// gateway route it returns nil, and the caller needs to do nothing.
func Detach(r *http.Request) (done func()) {
	h, ok := r.Context().Value(detachKey{}).(*detachClaim)
	if !ok || !h.taken.CompareAndSwap(false, true) {
		return nil
	}
	h.rec.status = http.StatusSwitchingProtocols
	return func() { h.once.Do(h.finish) }
}

type clientAddrKey struct{}

// ClientAddrFunc returns a function giving a request's client address:
// the one the edge worked out for a request it passed to the in-process
// gateway, or else the TCP peer, replaced by what X-Forwarded-For or
// X-Real-IP say when the peer is in trusted (as the edge itself does).
// The port is zero when the address came from a header.
func ClientAddrFunc(trusted []netip.Prefix) func(*http.Request) netip.AddrPort {
	t := trustList(trusted)
	return func(r *http.Request) netip.AddrPort {
		if a, ok := r.Context().Value(clientAddrKey{}).(netip.AddrPort); ok {
			return a
		}
		return t.identify(r).addrPort(r)
	}
}

// addrPort is the client's address with the peer's port when the
// address is the peer's, port 0 when it came from a header.
func (ci clientInfo) addrPort(r *http.Request) netip.AddrPort {
	if ci.ip == ci.peer {
		_, port, _ := net.SplitHostPort(r.RemoteAddr)
		n, _ := strconv.ParseUint(port, 10, 16)
		return netip.AddrPortFrom(ci.ip, uint16(n))
	}
	return netip.AddrPortFrom(ci.ip, 0)
}

// Hijack lets an in-process handler (the gateway's WebSocket upgrader)
// take the connection over. The access record then shows 101.
func (w *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
		if w.gateway != nil {
			w.gateway.opened()
		}
	}
	return c, brw, err
}
