package proxy

import (
	"cmp"
	"slices"
	"time"
)

// Route kinds, as [RouteStats.Kind] reports them.
const (
	// RouteUpstream proxies to upstreams (ws, wss, http or https).
	RouteUpstream = "upstream"
	// RouteGateway hands WebSocket upgrades to the in-process gateway.
	RouteGateway = "gateway"
	// RouteFiles serves files from a root directory.
	RouteFiles = "files"
	// RouteRespond answers with a fixed response.
	RouteRespond = "respond"
	// RouteChatPage serves the bundled chat page.
	RouteChatPage = "chat_page"
)

// Stats is a snapshot of a Proxy's connections and traffic, from
// [Proxy.Stats]. Counters count from the Proxy's start and carry over a
// reload ([Prepared.Commit]) for every site, route and upstream that
// keeps its identity: a site its first host, a route its path within the
// site, an upstream its URL within the route.
type Stats struct {
	// Active is the number of requests and WebSocket connections handled
	// now, across sites: what limits.max_connections bounds.
	Active int64
	// Streams is the number of WebSocket streams relayed to upstreams now,
	// those that [Proxy.Shutdown] closes. Connections served by the
	// in-process gateway are in Active and in their route's counts.
	Streams int
	// Sites are the configured sites in configuration order, followed by
	// sites a reload removed on which connections are still active.
	Sites []SiteStats
}

// SiteStats is the state of one site.
type SiteStats struct {
	// Hosts are the site's hosts; the first is its identity.
	Hosts []string
	// MaxConnections is the site's max_connections; 0 means only the
	// global limit applies.
	MaxConnections int64
	// Active is the number of requests and WebSocket connections handled
	// now, what MaxConnections bounds. It counts those admitted before a
	// reload.
	Active int64
	// Routes are the site's routes in configuration order, followed by
	// routes a reload removed on which connections are still active.
	Routes []RouteStats
}

// RouteStats is the state and traffic of one route.
//
// Every WebSocket upgrade request that reaches a WebSocket route (one
// with upstreams or gateway: true) is counted once: in Streams when it
// became a stream, in HandshakesFailed when it did not. Other requests
// admitted under max_connections are counted in Requests.
type RouteStats struct {
	// Path is the route's path prefix.
	Path string
	// Kind is what serves the route: RouteUpstream, RouteGateway,
	// RouteFiles, RouteRespond or RouteChatPage.
	Kind string
	// Active is the number of requests and WebSocket connections on the
	// route now, upgrades in progress included.
	Active int64
	// Total is Requests plus Streams.
	Total int64
	// Requests counts plain HTTP requests admitted, whatever their answer
	// (a plain request to a WebSocket-only route gets 426).
	Requests int64
	// Streams counts WebSocket streams opened: upgrades the upstream
	// accepted (101) or the gateway took over.
	Streams int64
	// HandshakesFailed counts WebSocket upgrades that did not become a
	// stream: refused at the edge (malformed, Origin, over
	// max_connections, shutting down), refused by the upstream, or failed
	// toward it (no upstream reachable, bad handshake), or abandoned by
	// the client during the upstream handshake.
	HandshakesFailed int64
	// BytesIn counts bytes from clients: the WebSocket frames relayed to
	// upstreams, control frames included, as they are on the wire (frame
	// headers and masking keys included; the upgrade request, TLS records
	// and frames the proxy sends or swallows itself not), and the plain
	// HTTP request body bytes read. It grows while a stream is open.
	BytesIn int64
	// BytesOut counts bytes to clients: the WebSocket frames relayed from
	// upstreams, counted as BytesIn is, and the plain HTTP response body
	// bytes written, error pages included. It grows while a stream is
	// open.
	BytesOut int64
	// MessagesIn and MessagesOut count the complete WebSocket data
	// messages relayed from clients to upstreams and back (a fragmented
	// message once). The proxy's own pings and closes are not counted,
	// nor the gateway's messages, which the gateway counts.
	MessagesIn, MessagesOut int64
	// SendFail counts streams and plain responses cut because a write
	// toward a peer failed or made no progress within send_timeout.
	SendFail int64
	// Upstreams are the route's upstreams in configuration order,
	// followed by upstreams a reload removed on which connections are
	// still active. Empty for routes of other kinds.
	Upstreams []UpstreamStats
}

// UpstreamStats is the state and traffic of one upstream of a route.
//
// Healthy, Fails and DownUntil are the passive health of max_fails and
// fail_timeout, which starts afresh when a reload rebuilds the route.
type UpstreamStats struct {
	// URL is the upstream's URL.
	URL string
	// Healthy is false while the upstream is marked down.
	Healthy bool
	// Fails is the number of recent failures counted toward max_fails;
	// it starts again from 0 when they mark the upstream down.
	Fails int
	// DownUntil is when a down upstream is tried again; zero while
	// Healthy.
	DownUntil time.Time
	// Active is the number of attempts in progress, plain responses
	// being relayed and WebSocket streams open on the upstream now.
	Active int64
	// Total counts attempts to reach the upstream: a plain request sent
	// or a WebSocket upgrade, the failed ones included. A request that
	// fails over to the next upstream counts on each.
	Total int64
	// Failed counts attempts that failed: connecting, the TLS handshake,
	// the upgrade handshake, or a plain request without a response.
	// Attempts the client abandoned are not counted.
	Failed int64
}

// Stats returns a snapshot of the connections and traffic, for status
// pages and metrics. The counters are read one by one, while traffic
// goes on, so they may be a moment apart from each other.
func (p *Proxy) Stats() Stats {
	now := p.now()
	st := Stats{Active: p.active.Load(), Streams: p.streams.len()}

	l := &p.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	t := p.table.Load() // under l.mu: Commit swaps tables under it too
	l.pruneLocked()

	// What the current table has, and what only older ones had.
	curSites := map[string]bool{}
	curRoutes := map[routeKey]bool{}
	curUps := map[upstreamKey]bool{}
	for _, s := range t.sites {
		curSites[s.key] = true
		for _, rt := range s.routes {
			curRoutes[rt.key] = true
			if rt.pool != nil {
				for _, u := range rt.pool.ups {
					curUps[upstreamKey{rt.key, u.url.String()}] = true
				}
			}
		}
	}
	oldUps := map[routeKey][]upstreamKey{}
	for k := range l.ups {
		if !curUps[k] {
			oldUps[k.route] = append(oldUps[k.route], k)
		}
	}
	oldRoutes := map[string][]routeKey{}
	addOldRoute := func(k routeKey) {
		if !curRoutes[k] && !slices.Contains(oldRoutes[k.site], k) {
			oldRoutes[k.site] = append(oldRoutes[k.site], k)
		}
	}
	for k := range l.routes {
		addOldRoute(k)
	}
	for k := range oldUps {
		addOldRoute(k)
	}
	var oldSites []string
	for k := range l.sites {
		if !curSites[k] {
			oldSites = append(oldSites, k)
		}
	}
	for k := range oldRoutes {
		if !curSites[k] && !slices.Contains(oldSites, k) {
			oldSites = append(oldSites, k)
		}
	}
	slices.Sort(oldSites)

	oldUpstreams := func(rk routeKey) []UpstreamStats {
		keys := oldUps[rk]
		slices.SortFunc(keys, func(a, b upstreamKey) int { return cmp.Compare(a.url, b.url) })
		var out []UpstreamStats
		for _, k := range keys {
			c := l.ups[k]
			out = append(out, upstreamStats(k.url, c.last, c, now))
		}
		return out
	}
	oldRouteStats := func(site string) []RouteStats {
		keys := oldRoutes[site]
		slices.SortFunc(keys, func(a, b routeKey) int { return cmp.Compare(a.path, b.path) })
		var out []RouteStats
		for _, k := range keys {
			c := l.routes[k]
			if c == nil { // dropped while an upstream of it is still active
				c = new(routeCounters)
			}
			rs := routeStats(k.path, c.kind, c)
			rs.Upstreams = oldUpstreams(k)
			out = append(out, rs)
		}
		return out
	}

	for _, s := range t.sites {
		ss := siteStats(s.hosts, s.maxConns, s.ctr)
		for _, rt := range s.routes {
			rs := routeStats(rt.path, rt.kind, rt.ctr)
			if rt.pool != nil {
				for _, u := range rt.pool.ups {
					rs.Upstreams = append(rs.Upstreams, upstreamStats(u.url.String(), u, u.ctr, now))
				}
			}
			rs.Upstreams = append(rs.Upstreams, oldUpstreams(rt.key)...)
			ss.Routes = append(ss.Routes, rs)
		}
		ss.Routes = append(ss.Routes, oldRouteStats(s.key)...)
		st.Sites = append(st.Sites, ss)
	}
	for _, k := range oldSites {
		c := l.sites[k]
		if c == nil { // dropped while a route of it is still active
			c = &siteCounters{hosts: []string{k}}
		}
		ss := siteStats(c.hosts, c.maxConns, c)
		ss.Routes = oldRouteStats(k)
		st.Sites = append(st.Sites, ss)
	}
	return st
}

func siteStats(hosts []string, maxConns int64, c *siteCounters) SiteStats {
	return SiteStats{
		Hosts:          slices.Clone(hosts),
		MaxConnections: maxConns,
		Active:         c.active.Load(),
	}
}

func routeStats(path, kind string, c *routeCounters) RouteStats {
	return RouteStats{
		Path:             path,
		Kind:             kind,
		Active:           c.active.Load(),
		Total:            c.total.Load(),
		Requests:         c.requests.Load(),
		Streams:          c.streams.Load(),
		HandshakesFailed: c.handshakesFailed.Load(),
		BytesIn:          c.relay.in.bytes.Load(),
		BytesOut:         c.relay.out.bytes.Load(),
		MessagesIn:       c.relay.in.messages.Load(),
		MessagesOut:      c.relay.out.messages.Load(),
		SendFail:         c.relay.sendFail.Load(),
	}
}

func upstreamStats(url string, u *upstream, c *upstreamCounters, now time.Time) UpstreamStats {
	us := UpstreamStats{
		URL:    url,
		Active: c.active.Load(),
		Total:  c.total.Load(),
		Failed: c.failed.Load(),
	}
	us.Healthy, us.Fails, us.DownUntil = u.health(now)
	return us
}
