package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// trustList is the set of peers whose forwarding headers are believed.
type trustList []netip.Prefix

func (t trustList) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr parses the address part of r.RemoteAddr.
func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// clientInfo is who sent a request, as far as the proxy can tell.
type clientInfo struct {
	peer    netip.Addr // the TCP peer
	ip      netip.Addr // the real client: peer, or from trusted headers
	trusted bool       // peer is a trusted proxy
}

// identify works out the client's address. Forwarding headers count only
// when the peer is trusted; then the client is the right-most address in
// X-Forwarded-For that is not itself trusted (nginx real_ip_recursive),
// or X-Real-IP when there is no X-Forwarded-For.
func (t trustList) identify(r *http.Request) clientInfo {
	ci := clientInfo{peer: peerAddr(r)}
	ci.ip = ci.peer
	if len(t) == 0 || !t.contains(ci.peer) {
		return ci
	}
	ci.trusted = true
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		chain := strings.Split(strings.Join(xff, ","), ",")
		for i := len(chain) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(chain[i]))
			if err != nil {
				break
			}
			ci.ip = a.Unmap()
			if !t.contains(ci.ip) {
				break
			}
		}
		return ci
	}
	if a, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP"))); err == nil {
		ci.ip = a.Unmap()
	}
	return ci
}

// setForwarded sets the forwarding headers on out, a request going to an
// upstream, from in, the request the client sent. Headers from an
// untrusted peer are replaced so that a client cannot spoof its address.
//
// Header names with an underscore are dropped, as nginx does by default
// (underscores_in_headers off): CGI-style servers, PHP's among them, read
// X_Real_IP and X-Real-IP as the same variable, so a client could
// otherwise smuggle in its own address after the proxy's.
func setForwarded(out http.Header, in *http.Request, ci clientInfo) {
	for k := range out {
		if strings.IndexByte(k, '_') >= 0 {
			delete(out, k)
		}
	}
	peer := ci.peer.String()
	prior := in.Header.Values("X-Forwarded-For")
	if ci.trusted && len(prior) > 0 {
		out.Set("X-Forwarded-For", strings.Join(prior, ", ")+", "+peer)
	} else {
		out.Set("X-Forwarded-For", peer)
	}
	out.Set("X-Real-IP", ci.ip.String())
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	if p := in.Header.Get("X-Forwarded-Proto"); ci.trusted && p != "" {
		proto = p
	}
	out.Set("X-Forwarded-Proto", proto)
	host := in.Host
	if h := in.Header.Get("X-Forwarded-Host"); ci.trusted && h != "" {
		host = h
	}
	out.Set("X-Forwarded-Host", host)
	if !ci.trusted {
		out.Del("Forwarded")
	}
}

// headerHasToken reports whether the comma-separated header h contains
// token, case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// hopHeaders are removed from requests and responses crossing the proxy
// (RFC 9110 §7.6.1), in addition to those named in Connection.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopHeaders deletes hop-by-hop headers from h.
func removeHopHeaders(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, sf := range strings.Split(f, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}
