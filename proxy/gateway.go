package proxy

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
)

// serveGateway hands a WebSocket upgrade to the in-process gateway
// handler, after the checks every upgrade gets at the edge (method,
// version, key, Origin, shutdown). The handler serves the connection on
// this goroutine until it ends, so the route's connection slot and the
// access line cover the connection's whole life.
func (p *Proxy) serveGateway(w *responseRecorder, r *http.Request, rt *route, ci clientInfo, rec *accessRecord) error {
	rec.websocket = true
	if p.gateway == nil {
		return fmt.Errorf("%w: no gateway is configured", ErrNoUpstream)
	}
	if err := checkUpgrade(r); err != nil {
		return err
	}
	if !rt.originAllowed(r.Header.Get("Origin")) {
		return fmt.Errorf("%w: %q", ErrOriginNotAllowed, r.Header.Get("Origin"))
	}
	if p.streams.closing() {
		return ErrShuttingDown
	}
	rec.upstream = "gateway"
	addr := netip.AddrPortFrom(ci.ip, 0)
	if ci.ip == ci.peer {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), clientAddrKey{}, addr))
	p.gateway.ServeHTTP(w, r)
	if w.hijacked {
		rec.status = http.StatusSwitchingProtocols
	}
	return nil
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
		ci := t.identify(r)
		if ci.ip == ci.peer {
			_, port, _ := net.SplitHostPort(r.RemoteAddr)
			n, _ := strconv.ParseUint(port, 10, 16)
			return netip.AddrPortFrom(ci.ip, uint16(n))
		}
		return netip.AddrPortFrom(ci.ip, 0)
	}
}

// Hijack lets an in-process handler (the gateway's WebSocket upgrader)
// take the connection over. The access record then shows 101.
func (w *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, brw, err
}
