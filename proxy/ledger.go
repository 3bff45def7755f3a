package proxy

import (
	"strings"
	"sync"
	"sync/atomic"
)

// ledger is a Proxy's connection accounting, kept apart from its tables so
// that it outlives a reload. Counters are keyed by a stable identity: a
// site by its first host (which validation keeps unique across sites), a
// route by its site and path, an upstream by its route and URL. A table
// built for a new configuration takes the counters of the identities it
// shares with the table it replaces, so a connection admitted under the
// old table gives back the very counter it took, and the new table's
// limits count it.
//
// A counter lives while a table that is still in use holds it or a
// connection is active on it; then prune drops it. Only connections that
// hold a table increment the active counts (see [Proxy.loadTable]), so a
// dropped counter is never taken again and an identity has one counter at
// a time.
type ledger struct {
	mu     sync.Mutex
	sites  map[string]*siteCounters
	routes map[routeKey]*routeCounters
	ups    map[upstreamKey]*upstreamCounters
}

// routeKey identifies a route across reloads.
type routeKey struct{ site, path string }

// upstreamKey identifies an upstream of a route across reloads.
type upstreamKey struct {
	route routeKey
	url   string
}

// siteCounters is the accounting of one site identity.
type siteCounters struct {
	active atomic.Int64 // requests and streams now; max_connections bounds it

	// Guarded by ledger.mu.
	refs     int      // tables holding these counters
	hosts    []string // of the newest table with the site
	maxConns int64
}

// routeCounters is the accounting of one route identity. See
// [RouteStats] for what each counter counts.
type routeCounters struct {
	relay            relayCounters // bytes, messages and send failures
	active           atomic.Int64
	total            atomic.Int64
	requests         atomic.Int64
	streams          atomic.Int64
	handshakesFailed atomic.Int64

	// Guarded by ledger.mu.
	refs int
	kind string // of the newest table with the route
}

// upstreamCounters is the accounting of one upstream identity. See
// [UpstreamStats] for what each counter counts.
type upstreamCounters struct {
	active atomic.Int64
	total  atomic.Int64
	failed atomic.Int64

	// Guarded by ledger.mu.
	refs int
	last *upstream // of the newest table with the upstream, for its health
}

// attempt counts an attempt to reach the upstream, active until done.
func (c *upstreamCounters) attempt() {
	c.total.Add(1)
	c.active.Add(1)
}

// done ends an attempt, or the request or stream it became; failed says
// whether the upstream failed it.
func (c *upstreamCounters) done(failed bool) {
	c.active.Add(-1)
	if failed {
		c.failed.Add(1)
	}
}

// opened counts a WebSocket stream opened on the route.
func (c *routeCounters) opened() {
	c.streams.Add(1)
	c.total.Add(1)
}

// requested counts a plain HTTP request admitted on the route.
func (c *routeCounters) requested() {
	c.requests.Add(1)
	c.total.Add(1)
}

// siteKey is the identity of a site: its first host, as hosts are
// matched (lower case, without a trailing dot).
func siteKey(hosts []string) string {
	if len(hosts) == 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(hosts[0], "."))
}

// attachLocked gives every site, route and upstream of t the counters of
// its identity, creating those that do not exist yet, and has t hold
// them. The caller holds l.mu.
func (l *ledger) attachLocked(t *table) {
	if l.sites == nil {
		l.sites = map[string]*siteCounters{}
		l.routes = map[routeKey]*routeCounters{}
		l.ups = map[upstreamKey]*upstreamCounters{}
	}
	for _, s := range t.sites {
		sc := l.sites[s.key]
		if sc == nil {
			sc = new(siteCounters)
			l.sites[s.key] = sc
		}
		sc.refs++
		sc.hosts, sc.maxConns = s.hosts, s.maxConns
		s.ctr = sc
		for _, rt := range s.routes {
			rk := routeKey{s.key, rt.path}
			rc := l.routes[rk]
			if rc == nil {
				rc = new(routeCounters)
				l.routes[rk] = rc
			}
			rc.refs++
			rc.kind = rt.kind
			rt.key, rt.ctr = rk, rc
			rt.stream.Counters = &rc.relay
			if rt.pool == nil {
				continue
			}
			for _, u := range rt.pool.ups {
				uk := upstreamKey{rk, u.url.String()}
				uc := l.ups[uk]
				if uc == nil {
					uc = new(upstreamCounters)
					l.ups[uk] = uc
				}
				uc.refs++
				uc.last = u
				u.ctr = uc
			}
		}
	}
}

// detach lets go of the counters t held, and drops those nothing uses.
func (l *ledger) detach(t *table) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range t.sites {
		s.ctr.refs--
		for _, rt := range s.routes {
			rt.ctr.refs--
			if rt.pool != nil {
				for _, u := range rt.pool.ups {
					u.ctr.refs--
				}
			}
		}
	}
	l.pruneLocked()
}

// pruneLocked drops the counters that no table holds and on which no
// connection is active.
func (l *ledger) pruneLocked() {
	for k, c := range l.sites {
		if c.refs == 0 && c.active.Load() == 0 {
			delete(l.sites, k)
		}
	}
	for k, c := range l.routes {
		if c.refs == 0 && c.active.Load() == 0 {
			delete(l.routes, k)
		}
	}
	for k, c := range l.ups {
		if c.refs == 0 && c.active.Load() == 0 {
			delete(l.ups, k)
		}
	}
}

// slot is one request's or stream's claim on the global, site and route
// connection counts, from [Proxy.acquire].
type slot struct {
	global *atomic.Int64
	site   *siteCounters
	route  *routeCounters
}

// release gives the slot back.
func (s slot) release() {
	s.route.active.Add(-1)
	s.site.active.Add(-1)
	s.global.Add(-1)
}
