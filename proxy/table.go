package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/hostmatch"
)

// table is an immutable routing table built from one configuration.
// Its counters live in the Proxy's ledger, so that they outlive it.
type table struct {
	sites  []*site // in configuration order
	hosts  hostmatch.Table[*site]
	trust  trustList
	limits config.Limits

	// refs is 1 while the table is the Proxy's current one, plus one for
	// each ServeHTTP call using it. When it drops to 0 the table is
	// retired: no request can use it any more.
	refs atomic.Int64
}

// site is one virtual host of a table.
type site struct {
	key      string // identity across reloads: see siteKey
	hosts    []string
	routes   []*route // in configuration order
	byLen    []*route // longest path first, for match
	maxConns int64    // 0 = only the global limit
	ctr      *siteCounters
}

// route is one path prefix of a site and what serves it.
type route struct {
	path    string
	strip   bool
	origins []string    // lower-case; empty = any
	headers http.Header // set on upstream requests, Host excepted
	host    string      // Host for upstream requests; "" = the client's

	pool    *pool       // upstreams; nil for root and respond routes
	wsOnly  bool        // ws:// or wss:// upstreams
	gateway bool        // upgrades go to the in-process gateway
	upTLS   *tls.Config // for https:// upstreams of plain HTTP requests
	stream  streamOptions
	handler http.Handler // plain HTTP: reverse proxy, files or fixed response
	// transport carries the plain HTTP requests to http:// and https://
	// upstreams; nil for other routes. Each table has its own, closed
	// when the table is retired.
	transport *http.Transport

	kind string   // RouteStats.Kind
	key  routeKey // identity across reloads
	ctr  *routeCounters
}

// build turns cfg into a table.
func (p *Proxy) build(cfg *config.Config) (*table, error) {
	t := &table{limits: cfg.Limits}
	for _, s := range cfg.TrustedProxies {
		pfx, err := config.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("proxy: trusted_proxies: %w", err)
		}
		t.trust = append(t.trust, pfx)
	}
	var errs []error
	for i, sc := range cfg.Sites {
		s := &site{key: siteKey(sc.Hosts), hosts: sc.Hosts, maxConns: int64(sc.MaxConnections)}
		for _, h := range sc.Hosts {
			t.hosts.Add(h, s)
		}
		for j, rc := range sc.Routes {
			rt, err := p.buildRoute(t, rc)
			if err != nil {
				re := &RouteError{Site: i, Route: j, Err: err}
				var ke keyError
				if errors.As(err, &ke) {
					re.Key, re.Err = ke.key, ke.err
				}
				errs = append(errs, re)
				continue
			}
			s.routes = append(s.routes, rt)
		}
		s.byLen = slices.Clone(s.routes)
		sort.SliceStable(s.byLen, func(a, b int) bool { return len(s.byLen[a].path) > len(s.byLen[b].path) })
		t.sites = append(t.sites, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

func (p *Proxy) buildRoute(t *table, rc config.Route) (*route, error) {
	rt := &route{
		path:   rc.Path,
		strip:  rc.StripPrefix,
		wsOnly: rc.IsWebSocketOnly(),
		stream: streamOptions{
			IdleTimeout:   rc.Idle(),
			MaxFrameBytes: rc.FrameLimit(),
			PingInterval:  rc.PingInterval,
			PingTimeout:   rc.PingTimeout,
			WriteTimeout:  t.limits.SendTimeout,
			Buffers:       p.buffers,
		},
	}
	for _, o := range rc.AllowedOrigins {
		rt.origins = append(rt.origins, strings.ToLower(strings.TrimSuffix(o, "/")))
	}
	for k, v := range rc.Headers {
		if http.CanonicalHeaderKey(k) == "Host" {
			rt.host = v // Go sends Request.Host, not a Host header
			continue
		}
		if rt.headers == nil {
			rt.headers = http.Header{}
		}
		rt.headers.Set(k, v)
	}
	switch {
	case rc.Gateway:
		rt.kind = RouteGateway
		rt.gateway = true
	case rc.ChatPage:
		rt.kind = RouteChatPage
		rt.handler = p.chat
		if rt.handler == nil {
			rt.handler = http.NotFoundHandler()
		}
	case rc.Respond != nil:
		rt.kind = RouteRespond
		rt.handler = respondHandler(*rc.Respond)
	case rc.Root != "":
		rt.kind = RouteFiles
		rt.handler = staticHandler(rc.Root, rc.Path, rc.StripPrefix, rc.FollowSymlinks)
	default:
		rt.kind = RouteUpstream
		urls := make([]*url.URL, 0, len(rc.Upstreams))
		for _, s := range rc.Upstreams {
			u, err := config.ParseUpstream(s)
			if err != nil {
				return nil, err
			}
			urls = append(urls, u)
		}
		upTLS, err := upstreamTLS(rc.UpstreamTLS)
		if err != nil {
			return nil, err
		}
		rt.upTLS = upTLS
		rt.pool = newPool(urls, rc.MaxFails, rc.FailTimeout, p.now, p.log)
		for _, u := range rt.pool.ups {
			if u.url.Scheme == "wss" || u.url.Scheme == "https" {
				u.wsTLS = upTLS.Clone()
				if u.wsTLS.ServerName == "" {
					u.wsTLS.ServerName = u.url.Hostname()
				}
				u.wsTLS.NextProtos = []string{"http/1.1"} // the upgrade needs HTTP/1.1
			}
		}
		if !rt.wsOnly {
			rt.handler = p.httpHandler(t, rt)
		}
	}
	return rt, nil
}

// keyError is an error about one key of a route.
type keyError struct {
	key string
	err error
}

func (e keyError) Error() string { return e.key + ": " + e.err.Error() }
func (e keyError) Unwrap() error { return e.err }

// upstreamTLS builds the client TLS configuration toward upstreams.
func upstreamTLS(c config.UpstreamTLS) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // opt-in, documented as testing only
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, keyError{"upstream_tls.ca_file", err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, keyError{"upstream_tls.ca_file", fmt.Errorf("no PEM certificate in %s", c.CAFile)}
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// ref takes a reference on t for one request, and reports false if t
// was retired (the caller then loads the current table again).
func (t *table) ref() bool {
	for {
		n := t.refs.Load()
		if n == 0 {
			return false
		}
		if t.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// closeIdle closes the idle connections of t's plain HTTP transports.
// Requests in flight on them finish undisturbed; their connections are
// closed when they become idle, unless the transport is used again.
func (t *table) closeIdle() {
	for _, s := range t.sites {
		for _, rt := range s.routes {
			if rt.transport != nil {
				rt.transport.CloseIdleConnections()
			}
		}
	}
}

// site returns the site serving hostport (a Host header).
func (t *table) site(hostport string) (*site, error) {
	if s, ok := t.hosts.Lookup(hostOnly(hostport)); ok {
		return s, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownHost, hostport)
}

// hostOnly drops the port, and the brackets of an IPv6 literal.
func hostOnly(hostport string) string {
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// match returns the route with the longest prefix of p on a segment
// boundary, or nil.
func (s *site) match(p string) *route {
	for _, rt := range s.byLen {
		if prefixMatch(rt.path, p) {
			return rt
		}
	}
	return nil
}

// prefixMatch reports whether prefix matches p on a segment boundary:
// "/wss" matches "/wss" and "/wss/x" but not "/wssx".
func prefixMatch(prefix, p string) bool {
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return len(p) == len(prefix) || strings.HasSuffix(prefix, "/") || p[len(prefix)] == '/'
}

// originAllowed reports whether a WebSocket upgrade with this Origin may
// pass. Requests without Origin come from non-browser clients, which can
// send any Origin they like, so they pass.
func (rt *route) originAllowed(origin string) bool {
	if len(rt.origins) == 0 || origin == "" {
		return true
	}
	o := strings.ToLower(origin)
	for _, a := range rt.origins {
		if a == o {
			return true
		}
		if scheme, rest, ok := strings.Cut(a, "://*."); ok {
			if s, host, ok := strings.Cut(o, "://"); ok && s == scheme {
				if _, parent, ok := strings.Cut(host, "."); ok && parent == rest {
					return true
				}
			}
		}
	}
	return false
}

// targetPath is the path sent to upstream u for request path p.
func (rt *route) targetPath(u *url.URL, p string) string {
	if rt.strip {
		p = strings.TrimPrefix(p, strings.TrimSuffix(rt.path, "/"))
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
	}
	if base := strings.TrimSuffix(u.Path, "/"); base != "" {
		p = base + p
	}
	return p
}
