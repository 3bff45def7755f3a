package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wssgate/wssgate/config"
)

// httpHandler returns the reverse proxy for a route with http:// or
// https:// upstreams.
func (p *Proxy) httpHandler(t *table, rt *route) http.Handler {
	dialer := &net.Dialer{Timeout: t.limits.DialTimeout}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       rt.upTLS,
		TLSHandshakeTimeout:   t.limits.DialTimeout,
		ResponseHeaderTimeout: t.limits.ResponseTimeout,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       t.limits.KeepaliveTimeout,
		ForceAttemptHTTP2:     true,
	}
	rt.transport = tr
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.Host = pr.In.Host
			if rt.host != "" {
				pr.Out.Host = rt.host
			}
			ci := recordOf(pr.In).client // worked out once, in ServeHTTP
			if fwd := pr.In.Header.Values("Forwarded"); ci.trusted && len(fwd) > 0 {
				pr.Out.Header["Forwarded"] = fwd // Rewrite strips it; a trusted proxy's stays
			}
			setForwarded(pr.Out.Header, pr.In, ci)
			for k, v := range rt.headers {
				pr.Out.Header[k] = v
			}
		},
		Transport:    &poolTransport{route: rt, next: tr},
		BufferPool:   p.buffers,
		ErrorLog:     slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		ErrorHandler: p.proxyError,
	}
	return rp
}

// proxyError answers a request whose upstream round trip failed.
func (p *Proxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if rec := recordOf(r); rec != nil {
		rec.err = err
	}
	rw, ok := w.(*responseRecorder)
	if !ok {
		rw = &responseRecorder{ResponseWriter: w}
	}
	p.fail(rw, r, err)
}

// poolTransport sends each request to the route's upstreams in
// round-robin order, going on to the next one when connecting fails
// before anything was sent.
type poolTransport struct {
	route *route
	next  http.RoundTripper
}

func (pt *poolTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	cands := pt.route.pool.candidates()
	var body *onceBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &onceBody{ReadCloser: req.Body}
	}
	rec := recordOf(req)
	var lastErr error
	for _, u := range cands {
		out := *req
		target := *req.URL
		target.Scheme, target.Host = schemeHTTP(u.url.Scheme), u.url.Host
		target.Path = pt.route.targetPath(u.url, req.URL.Path)
		if req.URL.RawPath != "" {
			target.RawPath = pt.route.targetPath(&url.URL{Path: u.url.EscapedPath()}, req.URL.RawPath)
		}
		out.URL = &target
		if body != nil {
			out.Body = body
		}
		if rec != nil {
			rec.upstream = u.url.String()
		}
		u.ctr.attempt()
		resp, err := pt.next.RoundTrip(&out)
		if err == nil {
			u.succeed()
			resp.Body = &upstreamBody{ReadCloser: resp.Body, ctr: u.ctr}
			return resp, nil
		}
		u.ctr.done(req.Context().Err() == nil)
		lastErr = err
		if req.Context().Err() != nil || !connectFailed(err) || (body != nil && body.n.Load() > 0) {
			break
		}
		pt.route.pool.failed(u, err)
	}
	if body != nil {
		body.ReadCloser.Close()
	}
	return nil, fmt.Errorf("%w: %w", ErrNoUpstream, lastErr)
}

// upstreamBody is the body of an upstream's response; closing it ends
// the request's activity on the upstream.
type upstreamBody struct {
	io.ReadCloser
	ctr    *upstreamCounters
	closed atomic.Bool
}

func (b *upstreamBody) Close() error {
	if !b.closed.Swap(true) {
		b.ctr.done(false)
	}
	return b.ReadCloser.Close()
}

// connectFailed reports whether err means the upstream was never reached,
// so the request can safely go to another one.
func connectFailed(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var rh tls.RecordHeaderError
	var cv *tls.CertificateVerificationError
	return errors.As(err, &rh) || errors.As(err, &cv)
}

func schemeHTTP(s string) string {
	if s == "wss" || s == "https" {
		return "https"
	}
	return "http"
}

// onceBody passes a request body to successive attempts; only the last
// owner closes it, and it counts the bytes read.
type onceBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (b *onceBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// Close is a no-op: the transport closes bodies after a failed attempt,
// but the next attempt may still need this one (it was not read).
func (b *onceBody) Close() error { return nil }

// respondHandler answers with a fixed response.
func respondHandler(r config.Respond) http.Handler {
	body := []byte(r.Body)
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", r.ContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(r.Status)
		_, _ = w.Write(body)
	})
}

// staticHandler serves files under root. Without strip the whole request
// path is looked up under root (nginx root); with strip the route prefix
// is removed first (nginx alias). Paths resolve inside root, symbolic
// links included, unless follow is set.
func staticHandler(root, prefix string, strip, follow bool) http.Handler {
	var files http.FileSystem = rootFS(root)
	if follow {
		files = http.Dir(root)
	}
	h := http.FileServer(safeFS{files})
	if !strip {
		return h
	}
	base := strings.TrimSuffix(prefix, "/")
	stripped := http.StripPrefix(base, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == base {
			// The directory itself: redirect, so that relative links in
			// its index resolve inside it (as nginx does).
			target := base + "/"
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently)
			return
		}
		stripped.ServeHTTP(w, r)
	})
}

// rootFS opens files with os.OpenInRoot, which resolves every path
// inside the directory, symbolic links included: a name that leads out
// of it is not found. Each open opens the directory too, so that a
// table holds no descriptor and a directory replaced on disk is seen.
type rootFS string

func (dir rootFS) Open(name string) (http.File, error) {
	rel := strings.TrimPrefix(path.Clean("/"+name), "/")
	if rel == "" {
		rel = "."
	}
	f, err := os.OpenInRoot(string(dir), rel)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, err
		}
		return nil, fs.ErrNotExist // missing, or out of the root
	}
	return f, nil
}

// safeFS hides dot-files and directories without an index.html, so that
// neither secrets such as .git nor directory listings are served.
type safeFS struct{ fs http.FileSystem }

func (s safeFS) Open(name string) (http.File, error) {
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") && part != ".well-known" {
			return nil, fs.ErrNotExist
		}
	}
	f, err := s.fs.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		idx, err := s.fs.Open(path.Join(name, "index.html"))
		if err != nil {
			f.Close()
			return nil, fs.ErrNotExist
		}
		idx.Close()
	}
	return f, nil
}

// accessRecord collects what the access log says about one request.
type accessRecord struct {
	start     time.Time
	method    string
	host      string
	path      string
	route     string
	upstream  string
	client    clientInfo
	status    int
	bytesIn   int64
	bodyIn    atomic.Int64 // plain HTTP request body bytes
	bytesOut  int64
	websocket bool
	closeCode int
	closedBy  string
	err       error
}

// countingBody counts the request body bytes a handler reads, for the
// access line and for the route. The transport may still be reading it
// after the handler returned, so the counts are atomic.
type countingBody struct {
	io.ReadCloser
	n     *atomic.Int64
	route *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.n.Add(int64(n))
		b.route.Add(int64(n))
	}
	return n, err
}

type recordKey struct{}

func withRecord(r *http.Request, rec *accessRecord) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), recordKey{}, rec))
}

func recordOf(r *http.Request) *accessRecord {
	rec, _ := r.Context().Value(recordKey{}).(*accessRecord)
	return rec
}

// logAccess writes rec as one access line.
func (p *Proxy) logAccess(rec *accessRecord) {
	if p.access == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("client", rec.client.ip.String()),
		slog.String("method", rec.method),
		slog.String("host", rec.host),
		slog.String("path", rec.path),
		slog.Int("status", rec.status),
		slog.Duration("duration", p.now().Sub(rec.start)),
		slog.Int64("bytes_in", rec.bytesIn),
		slog.Int64("bytes_out", rec.bytesOut),
	}
	if rec.route != "" {
		attrs = append(attrs, slog.String("route", rec.route))
	}
	if rec.upstream != "" {
		attrs = append(attrs, slog.String("upstream", rec.upstream))
	}
	if rec.websocket {
		attrs = append(attrs, slog.Bool("websocket", true), slog.Int("close_code", rec.closeCode), slog.String("closed_by", rec.closedBy))
	}
	if rec.err != nil {
		attrs = append(attrs, slog.String("err", rec.err.Error()))
	}
	p.access.LogAttrs(context.Background(), slog.LevelInfo, "access", attrs...)
}

// responseRecorder notes the status and body size a handler writes, and
// gives every write send_timeout to make progress, so that a client that
// stops reading a response does not hold its connection slot forever.
type responseRecorder struct {
	http.ResponseWriter
	deadline    sendDeadline
	rc          *http.ResponseController // made on first use
	status      int
	bytes       int64
	wroteHeader bool
	hijacked    bool
	// ctr, once the route is known, counts the body bytes written and
	// a failed write.
	ctr        *routeCounters
	sendFailed bool
	// gateway, set for upgrades handed to the in-process gateway, counts
	// the stream it opens by hijacking.
	gateway *routeCounters
}

// controller returns the ResponseController of the wrapped writer.
func (w *responseRecorder) controller() *http.ResponseController {
	if w.rc == nil {
		w.rc = http.NewResponseController(w.ResponseWriter)
	}
	return w.rc
}

// writeDeadline arms send_timeout for the write about to happen.
func (w *responseRecorder) writeDeadline() {
	if at, ok := w.deadline.next(time.Now()); ok {
		_ = w.controller().SetWriteDeadline(at)
	}
}

func (w *responseRecorder) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseRecorder) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	w.writeDeadline()
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	if w.ctr != nil {
		w.ctr.relay.out.bytes.Add(int64(n))
		if err != nil && !w.sendFailed {
			w.sendFailed = true
			w.ctr.relay.sendFail.Add(1)
		}
	}
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *responseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes flushes on (ReverseProxy streams server-sent events).
func (w *responseRecorder) Flush() {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	w.writeDeadline()
	_ = w.controller().Flush()
}
