package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wssgate/wssgate/config"
)

// Options are the parts of a Proxy that do not come from the
// configuration file.
type Options struct {
	// Logger receives operational events (upstreams going down, failed
	// handshakes). Nil discards them.
	Logger *slog.Logger
	// AccessLog receives one line per request and per WebSocket stream,
	// written when it ends. Nil turns access logging off.
	AccessLog *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Gateway serves the WebSocket upgrades of routes with gateway: true,
	// in process. Nil makes those upgrades fail with 502.
	Gateway http.Handler
	// ChatPage serves routes with chat_page: true. Nil makes them 404.
	ChatPage http.Handler
}

// Proxy is the edge's http.Handler: it picks a site by Host, a route by
// the longest matching path prefix, and proxies the request or WebSocket
// stream to the route's upstreams (or serves files or a fixed response).
//
// A WebSocket stream outlives the ServeHTTP call that opened it: once the
// upgrade is done, it runs on two goroutines of its own, so that the HTTP
// server's per-connection state is freed. A Proxy tracks every stream,
// because http.Server's Shutdown neither closes nor waits for hijacked
// connections: call [Proxy.Shutdown] alongside it, or [Proxy.Wait] to
// let the streams end on their own.
//
// [Proxy.Prepare] and [Prepared.Commit] replace the routing table while
// requests and streams run on, undisturbed, with the table they started
// with.
type Proxy struct {
	log      *slog.Logger
	access   *slog.Logger
	now      func() time.Time
	table    atomic.Pointer[table]
	reloadMu sync.Mutex   // serializes Commit
	active   atomic.Int64 // requests and streams being handled
	ledger   ledger       // per-site, route and upstream accounting
	streams  registry
	buffers  *bufferPool
	gateway  http.Handler
	chat     http.Handler
}

// New builds a Proxy for cfg, which must have passed validation (as
// [config.Load] does). It fails when a route's files cannot be read, such
// as an upstream_tls.ca_file.
func New(cfg *config.Config, opts Options) (*Proxy, error) {
	p := &Proxy{
		log:     opts.Logger,
		access:  opts.AccessLog,
		now:     opts.Now,
		buffers: newBufferPool(),
		gateway: opts.Gateway,
		chat:    opts.ChatPage,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("component", "proxy")
	if p.now == nil {
		p.now = time.Now
	}
	t, err := p.build(cfg)
	if err != nil {
		return nil, err
	}
	t.refs.Store(1)
	p.ledger.mu.Lock()
	p.ledger.attachLocked(t)
	p.table.Store(t)
	p.ledger.mu.Unlock()
	return p, nil
}

// Prepared is a configuration [Proxy.Prepare] has built and checked,
// not serving yet.
type Prepared struct {
	p *Proxy
	t *table
}

// Prepare builds the routing table for cfg, which must have passed
// validation, as for [New], and returns it unapplied. On error (the same
// errors New returns: [*RouteError] values joined) nothing changes. A
// caller that applies several parts together (routes and certificates)
// prepares them all before it commits any: a Prepared that is never
// committed changes nothing.
func (p *Proxy) Prepare(cfg *config.Config) (*Prepared, error) {
	t, err := p.build(cfg)
	if err != nil {
		return nil, err
	}
	return &Prepared{p: p, t: t}, nil
}

// Commit makes the prepared table the one new requests and upgrades are
// routed by. Commit it once.
//
// What already runs keeps the routes and upstreams it started with, and
// is not disturbed: a WebSocket stream relays on, however long it lasts,
// even if the new table removed its route. Connection counts carry over
// for every site, route and upstream that keeps its identity (a site's
// first host, a route's path within it, an upstream's URL within the
// route), so max_connections, global and per site, counts the
// connections admitted before the reload; so do the counters of
// [Proxy.Stats].
//
// Passive upstream health starts afresh: an upstream that max_fails had
// marked down is tried again at once, as nginx does on reload. The
// retired table's upstream HTTP connections are closed as they become
// idle, after the requests in flight on them have finished.
//
// Options are not reloadable: the gateway, chat page, loggers and clock
// stay those given to New.
func (pr *Prepared) Commit() {
	p, t := pr.p, pr.t
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	t.refs.Store(1)
	// Under the ledger's lock, so that Stats sees the table and its
	// counters together.
	p.ledger.mu.Lock()
	p.ledger.attachLocked(t)
	old := p.table.Swap(t)
	p.ledger.mu.Unlock()
	old.closeIdle()
	p.unref(old)
}

// loadTable returns the current table with a reference taken for one
// request; the caller gives it back with unref. A table whose last
// reference is gone is retired and never returned.
func (p *Proxy) loadTable() *table {
	for {
		if t := p.table.Load(); t.ref() {
			return t
		}
	}
}

// unref gives back a reference to t, and retires t when it was the last:
// the idle connections of its transports are closed (again: those in
// use when it was replaced are idle now), and the ledger lets go of
// counters that only t held.
func (p *Proxy) unref(t *table) {
	if t.refs.Add(-1) != 0 {
		return
	}
	t.closeIdle()
	p.ledger.detach(t)
}

// ServeHTTP routes and serves one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := p.loadTable()
	defer p.unref(t)
	rec := &accessRecord{start: p.now(), method: r.Method, host: r.Host, path: r.URL.Path}
	ci := t.trust.identify(r)
	rec.client = ci
	rw := &responseRecorder{ResponseWriter: w, deadline: sendDeadline{timeout: t.limits.SendTimeout}}
	detached := false
	defer func() {
		if detached {
			return // the stream's goroutine logs it when it ends
		}
		// Deferred, so that a request that ReverseProxy aborts with
		// http.ErrAbortHandler (the upstream failed mid-body) is logged.
		if v := recover(); v != nil {
			rec.err = fmt.Errorf("proxy: aborted: %v", v)
			defer panic(v)
		}
		if rec.status == 0 {
			rec.status = rw.status
		}
		if !rec.websocket {
			rec.bytesIn = rec.bodyIn.Load()
		}
		if rec.bytesOut == 0 {
			rec.bytesOut = rw.bytes
		}
		p.logAccess(rec)
	}()
	err := p.serve(rw, r, t, ci, rec)
	if errors.Is(err, errDetached) {
		detached = true
		return
	}
	if err != nil {
		rec.err = err
		p.fail(rw, r, err)
	}
}

// errDetached reports that a WebSocket stream now runs on goroutines of
// its own, which release its connection slot and log it when it ends.
var errDetached = errors.New("proxy: stream detached from its handler")

func (p *Proxy) serve(w *responseRecorder, r *http.Request, t *table, ci clientInfo, rec *accessRecord) error {
	s, err := t.site(r.Host)
	if err != nil {
		return err
	}
	reqPath := cleanPath(r.URL.Path)
	rt := s.match(reqPath)
	if rt == nil {
		return fmt.Errorf("%w for %q", ErrNoRoute, reqPath)
	}
	rec.route = rt.path
	if reqPath != r.URL.Path {
		u := *r.URL
		u.Path, u.RawPath = reqPath, ""
		r2 := *r
		r2.URL = &u
		r = &r2
	}
	w.ctr = rt.ctr
	upgrade := isUpgrade(r)
	sl, ok := p.acquire(t, s, rt)
	if !ok {
		if upgrade && (rt.pool != nil || rt.gateway) {
			rt.ctr.handshakesFailed.Add(1)
		}
		return ErrTooManyConnections
	}

	switch {
	case upgrade && rt.pool != nil:
		err := p.serveWebSocket(w, r, t, rt, ci, rec, sl)
		if !errors.Is(err, errDetached) {
			sl.release()
			rt.ctr.handshakesFailed.Add(1)
		}
		return err
	case upgrade && rt.gateway:
		err := p.serveGateway(w, r, rt, ci, rec, sl)
		if !errors.Is(err, errDetached) {
			sl.release()
		}
		return err
	case rt.wsOnly || rt.gateway:
		sl.release()
		rt.ctr.requested()
		return ErrNotWebSocket
	default:
		defer sl.release()
		rt.ctr.requested()
		if upgrade || r.Header.Get("Upgrade") != "" {
			// Only WebSocket is relayed, and only by the stream code that
			// tracks, limits and closes it: ReverseProxy would tunnel any
			// other protocol (h2c, raw TCP) past all of that.
			r.Header.Del("Upgrade")
		}
		r = withRecord(r, rec)
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = countingBody{ReadCloser: r.Body, n: &rec.bodyIn, route: &rt.ctr.relay.in.bytes}
		}
		rt.handler.ServeHTTP(w, r)
		return nil
	}
}

// acquire takes a slot for route rt of site s under t's global and site
// max_connections. The counts are the ledger's, so they include
// connections admitted under an earlier table.
func (p *Proxy) acquire(t *table, s *site, rt *route) (slot, bool) {
	if n := p.active.Add(1); t.limits.MaxConnections > 0 && n > int64(t.limits.MaxConnections) {
		p.active.Add(-1)
		return slot{}, false
	}
	if n := s.ctr.active.Add(1); s.maxConns > 0 && n > s.maxConns {
		s.ctr.active.Add(-1)
		p.active.Add(-1)
		return slot{}, false
	}
	rt.ctr.active.Add(1)
	return slot{global: &p.active, site: s.ctr, route: rt.ctr}, true
}

// fail answers the client with the status StatusFor gives err.
func (p *Proxy) fail(w *responseRecorder, r *http.Request, err error) {
	status := StatusFor(err)
	if status == statusClientClosed || w.wroteHeader || w.hijacked {
		w.status = max(w.status, status)
		return
	}
	h := w.Header()
	switch {
	case errors.Is(err, ErrNotWebSocket):
		if r.ProtoMajor == 1 { // connection-specific headers are an error in HTTP/2
			h.Set("Upgrade", "websocket")
			h.Set("Connection", "Upgrade")
		}
	case errors.Is(err, ErrBadVersion):
		h.Set("Sec-WebSocket-Version", "13")
	case status == http.StatusServiceUnavailable:
		h.Set("Retry-After", "1")
	case status == http.StatusMethodNotAllowed:
		h.Set("Allow", "GET")
	}
	if status >= 500 {
		p.log.Warn("request failed", "host", r.Host, "path", r.URL.Path, "status", status, "err", err)
	} else {
		p.log.Debug("request refused", "host", r.Host, "path", r.URL.Path, "status", status, "err", err)
	}
	http.Error(w, fmt.Sprintf("%d %s", status, http.StatusText(status)), status)
}

// Shutdown sends close 1001 (Going Away) to every open WebSocket stream
// and its upstream, waits until they have all ended or ctx is done, then
// closes what is left. New upgrades are refused with 503 from the moment
// it is called. It does not stop listeners; call http.Server.Shutdown for
// that. Shutdown is idempotent and returns ctx.Err() if streams had to be
// cut.
func (p *Proxy) Shutdown(ctx context.Context) error {
	return p.streams.shutdown(ctx, 1001, "server shutting down")
}

// Streams reports how many WebSocket streams are open.
func (p *Proxy) Streams() int { return p.streams.len() }

// Wait blocks until no WebSocket stream is open, and returns nil then (at
// once if none is), or ctx.Err() if ctx ends first. A stream counts as
// open until its goroutine has closed both connections and written its
// access line. Wait neither refuses new streams nor closes any: a drain
// calls it while the streams end on their own, and [Proxy.Shutdown] ends
// them.
func (p *Proxy) Wait(ctx context.Context) error { return p.streams.wait(ctx) }

// isUpgrade reports whether r asks to switch to WebSocket.
func isUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

// cleanPath normalizes a request path as nginx does before matching
// locations: dot segments and repeated slashes are resolved, a trailing
// slash is kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
}
