package status

import (
	"slices"
	"sync"
	"time"
)

// Sampler derives rates from successive snapshots. Its zero value is
// ready to use; its methods are safe for concurrent use.
//
// Each row's QPS is the growth of some of its counters between the two
// most recent snapshots given to [Sampler.Observe], divided by the time
// between their Time fields:
//
//   - Listener: Total, connections accepted per second;
//   - Route: Requests + MessagesIn + MessagesOut, plain HTTP requests
//     and WebSocket messages either way per second;
//   - Upstream: Total, requests and streams sent to it per second;
//   - Gateway: MessagesIn + MessagesOut + PushCalls per second.
//
// Rows are matched by identity: a listener by Name and Addr, a route by
// Site and Path, an upstream by Site, Route and URL. A row that was not
// in the previous snapshot gets QPS 0 until the next one. A counter
// that went down (its component restarted, as a route table does on a
// reload) is taken to have started from zero.
type Sampler struct {
	mu       sync.Mutex
	prev     *counters       // the last observed snapshot's counters
	rates    map[key]float64 // QPS by row, from the last two observations
	interval time.Duration   // between the last two observations; 0 if fewer than two
}

// key names one row of a Snapshot.
type key struct {
	kind    byte // 'l'istener, 'r'oute, 'u'pstream, 'g'ateway
	a, b, c string
}

// counters are the rate-bearing counters of one snapshot, by row.
type counters struct {
	time time.Time
	n    map[key]int64
}

// Observe records s as the newest snapshot and returns it with the QPS
// fields and QPSInterval filled from the growth since the previously
// observed one. s's slices are not modified: the result has copies.
// A snapshot whose Time is zero or not after the previous one's is not
// recorded, and is returned filled with the rates already known, as
// [Sampler.Fill] would.
func (sm *Sampler) Observe(s Snapshot) Snapshot {
	cur := countersOf(s)
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if s.Time.IsZero() || (sm.prev != nil && !s.Time.After(sm.prev.time)) {
		return sm.fillLocked(s)
	}
	if sm.prev != nil {
		sm.interval = s.Time.Sub(sm.prev.time)
		secs := sm.interval.Seconds()
		sm.rates = make(map[key]float64, len(cur.n))
		for k, v := range cur.n {
			was, ok := sm.prev.n[k]
			if !ok {
				continue
			}
			d := v - was
			if d < 0 {
				d = v // restarted from zero
			}
			sm.rates[k] = float64(d) / secs
		}
	}
	sm.prev = &cur
	return sm.fillLocked(s)
}

// Fill returns s with the QPS fields and QPSInterval set from the rates
// of the last two observed snapshots, without recording s: the
// counters of s are current, its rates those of the last interval. A
// row that was not in both of those snapshots gets QPS 0. s's slices
// are not modified: the result has copies.
func (sm *Sampler) Fill(s Snapshot) Snapshot {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return sm.fillLocked(s)
}

// fillLocked is Fill with sm.mu held.
func (sm *Sampler) fillLocked(s Snapshot) Snapshot {
	s.QPSInterval = Duration(sm.interval)
	s.Listeners = slices.Clone(s.Listeners)
	for i := range s.Listeners {
		s.Listeners[i].QPS = sm.rates[listenerKey(&s.Listeners[i])]
	}
	s.Routes = slices.Clone(s.Routes)
	for i := range s.Routes {
		s.Routes[i].QPS = sm.rates[routeKey(&s.Routes[i])]
	}
	s.Upstreams = slices.Clone(s.Upstreams)
	for i := range s.Upstreams {
		s.Upstreams[i].QPS = sm.rates[upstreamKey(&s.Upstreams[i])]
	}
	if s.Gateway != nil {
		g := *s.Gateway
		g.QPS = sm.rates[gatewayKey()]
		s.Gateway = &g
	}
	return s
}

// countersOf returns the rate-bearing counter of each row of s.
func countersOf(s Snapshot) counters {
	c := counters{time: s.Time, n: make(map[key]int64, len(s.Listeners)+len(s.Routes)+len(s.Upstreams)+1)}
	for i := range s.Listeners {
		l := &s.Listeners[i]
		c.n[listenerKey(l)] = l.Total
	}
	for i := range s.Routes {
		r := &s.Routes[i]
		c.n[routeKey(r)] = r.Requests + r.MessagesIn + r.MessagesOut
	}
	for i := range s.Upstreams {
		u := &s.Upstreams[i]
		c.n[upstreamKey(u)] = u.Total
	}
	if g := s.Gateway; g != nil {
		c.n[gatewayKey()] = g.MessagesIn + g.MessagesOut + g.PushCalls
	}
	return c
}

func listenerKey(l *Listener) key { return key{kind: 'l', a: l.Name, b: l.Addr} }
func routeKey(r *Route) key       { return key{kind: 'r', a: r.Site, b: r.Path} }
func upstreamKey(u *Upstream) key { return key{kind: 'u', a: u.Site, b: u.Route, c: u.URL} }
func gatewayKey() key             { return key{kind: 'g'} }
