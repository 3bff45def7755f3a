package proxy

import (
	"crypto/tls"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// upstream is one backend of a route, with passive health state in the
// manner of nginx's max_fails and fail_timeout.
type upstream struct {
	url   *url.URL    // scheme ws, wss, http or https
	wsTLS *tls.Config // for WebSocket upgrades to a wss:// or https:// url; else nil
	ctr   *upstreamCounters

	maxFails    int
	failTimeout time.Duration

	mu        sync.Mutex
	fails     int       // failures in the current window
	firstFail time.Time // start of the current window
	downUntil time.Time // skipped until then
}

// available reports whether u may be tried at now, and if not, until
// when it is cooling off.
func (u *upstream) available(now time.Time) (bool, time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return !now.Before(u.downUntil), u.downUntil
}

// fail records a failed attempt and reports whether it marked u down.
func (u *upstream) fail(now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.fails == 0 || now.Sub(u.firstFail) > u.failTimeout {
		u.fails, u.firstFail = 0, now
	}
	u.fails++
	if u.fails < u.maxFails {
		return false
	}
	u.fails = 0
	u.downUntil = now.Add(u.failTimeout)
	return true
}

// health reports u's passive health at now: whether it may be tried,
// the failures counted in the current window, and until when it is down
// (zero when it is not).
func (u *upstream) health(now time.Time) (healthy bool, fails int, downUntil time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.fails > 0 && now.Sub(u.firstFail) <= u.failTimeout {
		fails = u.fails
	}
	if now.Before(u.downUntil) {
		return false, fails, u.downUntil
	}
	return true, fails, time.Time{}
}

// succeed records a successful attempt.
func (u *upstream) succeed() {
	u.mu.Lock()
	u.fails = 0
	u.downUntil = time.Time{}
	u.mu.Unlock()
}

// pool is a route's upstreams, picked round-robin.
type pool struct {
	ups  []*upstream
	next atomic.Uint64
	now  func() time.Time
	log  *slog.Logger
}

func newPool(urls []*url.URL, maxFails int, failTimeout time.Duration, now func() time.Time, log *slog.Logger) *pool {
	p := &pool{now: now, log: log}
	for _, u := range urls {
		p.ups = append(p.ups, &upstream{url: u, maxFails: max(maxFails, 1), failTimeout: failTimeout})
	}
	return p
}

// candidates returns the upstreams to try for one request, in order: the
// available ones, starting at the next round-robin position. When every
// upstream is cooling off it returns the one whose cool-off ends first,
// as a probe: a gateway that came back is used at once instead of after
// fail_timeout, and one still down costs a failed connect, then 502.
func (p *pool) candidates() []*upstream {
	n := len(p.ups)
	start := int(p.next.Add(1)-1) % n
	now := p.now()
	out := make([]*upstream, 0, n)
	var probe *upstream
	var probeAt time.Time
	for i := range n {
		u := p.ups[(start+i)%n]
		ok, until := u.available(now)
		if ok {
			out = append(out, u)
		} else if probe == nil || until.Before(probeAt) {
			probe, probeAt = u, until
		}
	}
	if len(out) == 0 {
		out = append(out, probe)
	}
	return out
}

// failed records a connection failure on u and logs when u goes down.
func (p *pool) failed(u *upstream, err error) {
	if u.fail(p.now()) {
		p.log.Warn("upstream marked down", "upstream", u.url.String(), "for", u.failTimeout, "err", err)
	} else {
		p.log.Info("upstream attempt failed", "upstream", u.url.String(), "err", err)
	}
}
