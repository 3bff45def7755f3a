package bearer

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Guard defaults.
const (
	// guardWindow is how long a source's failures are remembered, and
	// the least time between two log lines about one source.
	guardWindow = time.Minute
	// guardFree is how many failures a source may have within the
	// window before its answers are slowed down.
	guardFree = 5
	// guardMaxDelay bounds the slowdown of one answer.
	guardMaxDelay = 5 * time.Second
	// guardSources bounds the sources remembered; past it the oldest
	// are forgotten, so a flood of addresses costs bounded memory.
	guardSources = 4096
	// logPathMax cuts the path a log line repeats.
	logPathMax = 64
)

// Guard watches failed authentications by source address: it counts
// them, logs at most one line per source per minute, and slows down the
// answers to a source that keeps failing, so that guessing a token is
// slow and a scanner cannot fill the log. The zero value is not usable;
// use [NewGuard]. It is safe for concurrent use.
type Guard struct {
	log      *slog.Logger
	now      func() time.Time
	failures atomic.Int64

	mu      sync.Mutex
	sources map[string]*source
}

// source is what a Guard remembers of one address.
type source struct {
	since   time.Time // start of the current window
	fails   int       // failures in it
	logged  time.Time // last log line
	unlog   int       // failures since that line
	lastSee time.Time
}

// NewGuard returns a Guard logging to log (nil discards).
func NewGuard(log *slog.Logger) *Guard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Guard{log: log, now: time.Now, sources: map[string]*source{}}
}

// Failures is how many failed authentications the Guard has seen.
func (g *Guard) Failures() int64 { return g.failures.Load() }

// Refuse records a failed authentication of r, logs it if its source
// has had no line within the last minute, and waits before returning
// (until r's context ends at the latest) when the source has failed
// more than 5 times within the minute: 100 ms for the sixth, doubling up
// to 5 s.
func (g *Guard) Refuse(r *http.Request) {
	g.failures.Add(1)
	ip := r.RemoteAddr
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	now := g.now()
	g.mu.Lock()
	s := g.sources[ip]
	if s == nil {
		if len(g.sources) >= guardSources {
			g.forgetLocked(now)
		}
		s = &source{since: now}
		g.sources[ip] = s
	}
	if now.Sub(s.since) > guardWindow {
		s.since, s.fails = now, 0
	}
	s.fails++
	s.unlog++
	s.lastSee = now
	fails, logNow, unlogged := s.fails, now.Sub(s.logged) >= guardWindow, s.unlog
	if logNow {
		s.logged, s.unlog = now, 0
	}
	g.mu.Unlock()

	if logNow {
		g.log.Warn("authentication failed", "remote", ip, "path", Cut(r.URL.Path, logPathMax), "failures", unlogged)
	}
	if d := delay(fails); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
	}
}

// delay is how long the answer to a source's n-th failure in a window
// waits.
func delay(n int) time.Duration {
	if n <= guardFree {
		return 0
	}
	d := 100 * time.Millisecond
	for range n - guardFree - 1 {
		d *= 2
		if d >= guardMaxDelay {
			return guardMaxDelay
		}
	}
	return d
}

// forgetLocked makes room: it drops the sources not seen within the
// window and, if that is not enough, enough others (in map order, which
// is random) to leave a quarter of the room free, so that a flood of
// new addresses costs amortized constant time. The caller holds g.mu.
func (g *Guard) forgetLocked(now time.Time) {
	for ip, s := range g.sources {
		if now.Sub(s.lastSee) > guardWindow {
			delete(g.sources, ip)
		}
	}
	for ip := range g.sources {
		if len(g.sources) <= guardSources*3/4 {
			break
		}
		delete(g.sources, ip)
	}
}

// Cut returns s cut to at most n bytes, with "…" added when it was
// longer, for input echoed in errors and logs.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Do not split a UTF-8 sequence.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
