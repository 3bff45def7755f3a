package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/testutil"
)

// backend is a real WebSocket and HTTP upstream on loopback that echoes
// messages and remembers the last upgrade request it saw.
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	last *http.Request
	// conns receives every upgraded server-side connection.
	conns chan *websocket.Conn
	// ends receives the error that ended each connection's read loop.
	ends chan error
}

func newBackend(t *testing.T, subprotocols ...string) *backend {
	t.Helper()
	b := &backend{conns: make(chan *websocket.Conn, 64), ends: make(chan error, 64)}
	up := websocket.Upgrader{Subprotocols: subprotocols, CheckOrigin: func(*http.Request) bool { return true }}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.last = r.Clone(context.Background())
		b.mu.Unlock()
		if !websocket.IsWebSocketUpgrade(r) {
			w.Header().Set("X-Backend-Path", r.URL.RequestURI())
			_, _ = io.WriteString(w, "plain "+r.URL.RequestURI())
			return
		}
		if r.URL.Query().Get("refuse") != "" {
			http.Error(w, "no entry", http.StatusForbidden)
			return
		}
		c, err := up.Upgrade(w, r, http.Header{"Set-Cookie": {"sid=1"}})
		if err != nil {
			return
		}
		c.SetReadLimit(8 << 20)
		select {
		case b.conns <- c:
		default:
		}
		for {
			mt, msg, err := c.ReadMessage()
			if err == nil {
				err = c.WriteMessage(mt, msg)
			}
			if err != nil {
				c.Close()
				select {
				case b.ends <- err:
				default:
				}
				return
			}
		}
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) lastRequest() *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

func (b *backend) wsURL() string { return "ws://" + b.Listener.Addr().String() }

// edge is a Proxy behind a real TLS listener.
type edge struct {
	*Proxy
	srv *httptest.Server
}

func newEdge(t *testing.T, cfg *config.Config) *edge {
	t.Helper()
	return newEdgeWith(t, cfg, Options{})
}

// newEdgeWith is newEdge with Options (loggers are the test's).
func newEdgeWith(t *testing.T, cfg *config.Config, opts Options) *edge {
	t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config invalid: %v", err)
	}
	opts.Logger, opts.AccessLog = testutil.Logger(t), testutil.Logger(t)
	p, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewUnstartedServer(p)
	srv.EnableHTTP2 = true // as in production: h2 for plain requests, WebSocket over HTTP/1.1
	srv.StartTLS()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
		srv.Close()
	})
	return &edge{Proxy: p, srv: srv}
}

// siteConfig returns a configuration with one site, chat.example.com,
// serving routes.
func siteConfig(routes ...config.Route) *config.Config {
	cfg := config.Default()
	cfg.Sites = []config.Site{{Hosts: []string{"chat.example.com"}, TLS: config.SiteTLS{Internal: true}, Routes: routes}}
	return &cfg
}

// tlsConfig trusts the edge's certificate and offers only HTTP/1.1.
func (e *edge) tlsConfig() *tls.Config {
	tc := e.srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tc.NextProtos = nil
	return tc
}

// dial opens a WebSocket through the edge with Host chat.example.com.
func (e *edge) dial(t *testing.T, path string, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	if h == nil {
		h = http.Header{}
	}
	if h.Get("Host") == "" {
		h.Set("Host", "chat.example.com")
	}
	d := websocket.Dialer{TLSClientConfig: e.tlsConfig(), HandshakeTimeout: 5 * time.Second, Subprotocols: h.Values("Sec-WebSocket-Protocol"), NetDialContext: clientDialer.DialContext}
	h.Del("Sec-WebSocket-Protocol")
	c, resp, err := d.Dial("wss://"+e.srv.Listener.Addr().String()+path, h)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

// clientDialer connects from 127.0.0.2, so that the client address the
// upstream is told about differs from the edge's own 127.0.0.1.
var clientDialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}

// get sends a plain HTTPS request through the edge.
func (e *edge) get(t *testing.T, host, path string, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Host = host
	tr := &http.Transport{TLSClientConfig: e.tlsConfig(), DialContext: clientDialer.DialContext, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// openStream starts a backend and an edge routing /wss to it, and opens
// one stream through them that has passed a message each way.
func openStream(t *testing.T) (*backend, *edge, *websocket.Conn) {
	t.Helper()
	b := newBackend(t)
	e := newEdge(t, siteConfig(config.Route{Path: "/wss", Upstreams: []string{b.wsURL()}}))
	c, _, err := e.dial(t, "/wss", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	testutil.EchoRoundTrip(t, c, websocket.BinaryMessage, []byte("hi"))
	return b, e, c
}

func TestWebSocketEcho(t *testing.T) {
	b := newBackend(t, "chat.v2", "chat.v1")
	e := newEdge(t, siteConfig(config.Route{Path: "/wss", Upstreams: []string{b.wsURL()}}))

	h := http.Header{"Sec-WebSocket-Protocol": {"chat.v1"}, "Cookie": {"session=abc"}}
	c, resp, err := e.dial(t, "/wss/room?token=xyz", h)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if got, want := c.Subprotocol(), "chat.v1"; got != want {
		t.Errorf("negotiated subprotocol = %q, want %q", got, want)
	}
	if got := resp.Header.Get("Set-Cookie"); got != "sid=1" {
		t.Errorf("Set-Cookie from upstream = %q, want sid=1", got)
	}
	testutil.EchoRoundTrip(t, c, websocket.BinaryMessage, []byte("hello"))
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	testutil.EchoRoundTrip(t, c, websocket.BinaryMessage, big)

	r := b.lastRequest()
	if got, want := r.URL.RequestURI(), "/wss/room?token=xyz"; got != want {
		t.Errorf("upstream saw %q, want %q", got, want)
	}
	if got := r.Header.Get("Cookie"); got != "session=abc" {
		t.Errorf("upstream Cookie = %q, want session=abc", got)
	}
	if got := r.Host; got != "chat.example.com" {
		t.Errorf("upstream Host = %q, want chat.example.com", got)
	}
}

func TestForwardingHeaders(t *testing.T) {
	b := newBackend(t)
	spoof := http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Real-Ip": {"203.0.113.9"}, "X-Forwarded-Proto": {"http"}, "Forwarded": {"for=203.0.113.9"}}
	tests := []struct {
		name        string
		trusted     []string
		wantRealIP  string
		wantXFF     string
		wantProto   string
		wantForward string
	}{
		{"untrusted peer cannot spoof", nil, "127.0.0.2", "127.0.0.2", "https", ""},
		{"other peers are not trusted", []string{"127.0.0.1/32"}, "127.0.0.2", "127.0.0.2", "https", ""},
		{"trusted peer's chain is kept", []string{"127.0.0.0/8"}, "203.0.113.9", "203.0.113.9, 127.0.0.2", "http", "for=203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, ws := range []bool{true, false} {
				cfg := siteConfig(config.Route{Path: "/", Upstreams: []string{b.URL}})
				cfg.TrustedProxies = tt.trusted
				e := newEdge(t, cfg)
				if ws {
					if _, _, err := e.dial(t, "/ws", spoof.Clone()); err != nil {
						t.Fatalf("dial: %v", err)
					}
				} else {
					e.get(t, "chat.example.com", "/page", spoof)
				}
				r := b.lastRequest()
				for _, c := range []struct{ name, got, want string }{
					{"X-Real-IP", r.Header.Get("X-Real-IP"), tt.wantRealIP},
					{"X-Forwarded-For", r.Header.Get("X-Forwarded-For"), tt.wantXFF},
					{"X-Forwarded-Proto", r.Header.Get("X-Forwarded-Proto"), tt.wantProto},
					{"X-Forwarded-Host", r.Header.Get("X-Forwarded-Host"), "chat.example.com"},
					{"Forwarded", r.Header.Get("Forwarded"), tt.wantForward},
				} {
					if c.got != c.want {
						t.Errorf("websocket=%v: upstream %s = %q, want %q", ws, c.name, c.got, c.want)
					}
				}
			}
		})
	}
}

func TestRouting(t *testing.T) {
	b := newBackend(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"static/app.js": "app", "app.js": "alias", ".env": "secret", "static/.git": "secret"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := newEdge(t, siteConfig(
		config.Route{Path: "/wss", Upstreams: []string{b.URL}},
		config.Route{Path: "/api", Upstreams: []string{b.URL + "/v1"}, StripPrefix: true},
		config.Route{Path: "/static/", Root: dir},
		config.Route{Path: "/assets/", Root: dir, StripPrefix: true},
		config.Route{Path: "/files", Root: dir, StripPrefix: true},
		config.Route{Path: "/health", Respond: &config.Respond{Body: "ok"}},
	))
	tests := []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{"/wss", 200, "plain /wss"},
		{"/wss/x?y=1", 200, "plain /wss/x?y=1"},
		{"/wssx", 404, ""},
		{"/api", 200, "plain /v1/"},
		{"/api/users?id=2", 200, "plain /v1/users?id=2"},
		{"/apix", 404, ""},
		{"/static/app.js", 200, "app"},
		{"/static/.git", 404, ""},
		{"/static/", 404, ""}, // no listing
		{"/assets/app.js", 200, "alias"},
		{"/assets/.env", 404, ""},
		{"/files/app.js", 200, "alias"},
		{"/health", 200, "ok"},
		{"/wss/../health", 200, "ok"},
		{"/", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp := e.get(t, "chat.example.com", tt.path, nil)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("GET %s: got status %d, want %d (body %q)", tt.path, resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantBody != "" && string(body) != tt.wantBody {
				t.Errorf("GET %s: got body %q, want %q", tt.path, body, tt.wantBody)
			}
		})
	}
}

func TestPrefixMatch(t *testing.T) {
	tests := []struct {
		prefix, path string
		want         bool
	}{
		{"/wss", "/wss", true},
		{"/wss", "/wss/", true},
		{"/wss", "/wss/a/b", true},
		{"/wss", "/wssx", false},
		{"/wss", "/ws", false},
		{"/static/", "/static/a", true},
		{"/static/", "/static", false},
		{"/", "/anything", true},
	}
	for _, tt := range tests {
		if got := prefixMatch(tt.prefix, tt.path); got != tt.want {
			t.Errorf("prefixMatch(%q, %q) = %v, want %v", tt.prefix, tt.path, got, tt.want)
		}
	}
}

func TestRefusals(t *testing.T) {
	b := newBackend(t)
	cfg := siteConfig(
		config.Route{Path: "/wss", Upstreams: []string{b.wsURL()}, AllowedOrigins: []string{"https://chat.example.com", "https://*.example.org"}},
		config.Route{Path: "/down", Upstreams: []string{"ws://127.0.0.1:1"}},
	)
	e := newEdge(t, cfg)
	tests := []struct {
		name       string
		path       string
		header     http.Header
		wantStatus int
		wantHeader [2]string
	}{
		{"allowed origin", "/wss", http.Header{"Origin": {"https://chat.example.com"}}, 101, [2]string{}},
		{"allowed wildcard origin", "/wss", http.Header{"Origin": {"https://m.example.org"}}, 101, [2]string{}},
		{"bad origin", "/wss", http.Header{"Origin": {"https://evil.example"}}, 403, [2]string{}},
		{"unknown host", "/wss", http.Header{"Host": {"other.example.com"}}, 421, [2]string{}},
		{"no route", "/nowhere", nil, 404, [2]string{}},
		{"upstream refuses", "/wss?refuse=1", nil, 403, [2]string{}},
		{"all upstreams down", "/down", nil, 502, [2]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := e.dial(t, tt.path, tt.header)
			if tt.wantStatus == 101 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				c.Close()
				return
			}
			if err == nil {
				t.Fatalf("dial succeeded, want status %d", tt.wantStatus)
			}
			if resp == nil {
				t.Fatalf("dial: %v, want an HTTP answer %d", err, tt.wantStatus)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("got status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
		})
	}

	// A plain request to a ws-only route over HTTP/2 gets 426 too.
	if resp := e.get(t, "chat.example.com", "/wss", nil); resp.StatusCode != 426 || resp.ProtoMajor != 2 {
		t.Errorf("plain HTTP/2 GET to a ws route: got %d over %s, want 426 over HTTP/2", resp.StatusCode, resp.Proto)
	}

	// A plain request to a ws-only route, and malformed upgrades.
	plain := []struct {
		name       string
		method     string
		header     http.Header
		wantStatus int
		wantHeader string
	}{
		{"plain GET to ws route", "GET", nil, 426, "Upgrade"},
		{"POST upgrade", "POST", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}, 405, "Allow"},
		{"old version", "GET", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"8"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}, 426, "Sec-Websocket-Version"},
		{"bad key", "GET", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"short"}}, 400, ""},
	}
	for _, tt := range plain {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, e.srv.URL+"/wss", nil)
			req.Host = "chat.example.com"
			for k, v := range tt.header {
				req.Header[k] = v
			}
			// A fresh HTTP/1.1 transport: upgrades cannot ride HTTP/2.
			tr := &http.Transport{TLSClientConfig: e.tlsConfig()}
			defer tr.CloseIdleConnections()
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatalf("round trip: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("got status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantHeader != "" && resp.Header.Get(tt.wantHeader) == "" {
				t.Errorf("response lacks %s header", tt.wantHeader)
			}
		})
	}
}

func TestFailover(t *testing.T) {
	b := newBackend(t)
	dead := testutil.FreeAddr(t)
	e := newEdge(t, siteConfig(
		config.Route{Path: "/wss", Upstreams: []string{"ws://" + dead, b.wsURL()}},
		config.Route{Path: "/", Upstreams: []string{"http://" + dead, b.URL}},
	))
	// Each request starts round-robin at the next upstream; whichever it
	// starts at, the dead one is skipped before the client sees anything.
	for i := range 4 {
		c, _, err := e.dial(t, "/wss", nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		testutil.EchoRoundTrip(t, c, websocket.BinaryMessage, []byte("after failover"))
		c.Close()
		resp := e.get(t, "chat.example.com", "/x", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %d: got status %d, want 200", i, resp.StatusCode)
		}
	}
	// The dead upstream is now marked down and skipped outright.
	rt := e.table.Load().sites[0].match("/wss")
	if got := len(rt.pool.candidates()); got != 1 {
		t.Errorf("candidates after failures = %d, want 1 (dead upstream cooling off)", got)
	}
}

func TestAllDownHTTP(t *testing.T) {
	e := newEdge(t, siteConfig(config.Route{Path: "/", Upstreams: []string{"http://" + testutil.FreeAddr(t)}}))
	for i, want := range []int{502, 502} { // first a failed dial, then skipped while down
		if got := e.get(t, "chat.example.com", "/", nil).StatusCode; got != want {
			t.Errorf("request %d: got status %d, want %d", i, got, want)
		}
	}
}

func TestMaxConnections(t *testing.T) {
	b := newBackend(t)
	cfg := siteConfig(config.Route{Path: "/wss", Upstreams: []string{b.wsURL()}})
	cfg.Sites[0].MaxConnections = 2
	e := newEdge(t, cfg)
	for i := range 2 {
		if _, _, err := e.dial(t, "/wss", nil); err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
	}
	_, resp, err := e.dial(t, "/wss", nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("third stream: err %v, resp %v; want 503", err, resp)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
}

// TestUpstreamDies: when the upstream vanishes without a close frame, the
// client gets a close frame 1011 instead of a bare TCP reset.
func TestUpstreamDies(t *testing.T) {
	b, e, c := openStream(t)
	server := <-b.conns
	server.UnderlyingConn().Close() // no close frame
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseInternalServerErr) {
		t.Fatalf("client read after upstream died: %v, want close 1011", err)
	}
	waitNoStreams(t, e)
}

// TestClientGone: when the client vanishes, the upstream connection is
// closed too (with close 1001).
func TestClientGone(t *testing.T) {
	b, e, c := openStream(t)
	var err error
	c.UnderlyingConn().Close()
	select {
	case err = <-b.ends:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream connection still open 5 s after the client left")
	}
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("upstream read after client left: %v, want close 1001", err)
	}
	waitNoStreams(t, e)
}

func TestShutdownSendsGoingAway(t *testing.T) {
	b := newBackend(t)
	e := newEdge(t, siteConfig(config.Route{Path: "/wss", Upstreams: []string{b.wsURL()}}))
	var clients []*websocket.Conn
	for range 3 {
		c, _, err := e.dial(t, "/wss", nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		testutil.EchoRoundTrip(t, c, websocket.BinaryMessage, []byte("hi"))
		clients = append(clients, c)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- e.Shutdown(ctx)
	}()
	for i, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("client %d: %v, want close 1001", i, err)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v, want nil (clients answered the close)", err)
	}
	_, resp, err := e.dial(t, "/wss", nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("dial after shutdown: err %v, resp %v; want 503", err, resp)
	}
}

func TestShutdownDeadline(t *testing.T) {
	b := newBackend(t)
	e := newEdge(t, siteConfig(config.Route{Path: "/wss", Upstreams: []string{b.wsURL()}}))
	// A raw client that completes the upgrade and then never reads or answers.
	conn, err := tls.Dial("tcp", e.srv.Listener.Addr().String(), e.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /wss HTTP/1.1\r\nHost: chat.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	buf := make([]byte, 1024)
	if n, err := conn.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "101") {
		t.Fatalf("raw upgrade: %q, %v", buf[:n], err)
	}
	testutil.WaitFor(t, "stream registered", func() bool { return e.Streams() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := e.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want DeadlineExceeded (client never answered)", err)
	}
	if n := e.Streams(); n != 0 {
		t.Errorf("%d streams left after Shutdown, want 0", n)
	}
}

func TestStatusFor(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{ErrUnknownHost, 421},
		{ErrNoRoute, 404},
		{ErrNotWebSocket, 426},
		{ErrBadVersion, 426},
		{ErrBadHandshake, 400},
		{ErrMethod, 405},
		{ErrOriginNotAllowed, 403},
		{ErrTooManyConnections, 503},
		{ErrShuttingDown, 503},
		{ErrNoUpstream, 502},
		{ErrUpstreamHandshake, 502},
		{errors.Join(ErrNoUpstream, context.DeadlineExceeded), 504},
		{&net.OpError{Op: "dial", Err: timeoutErr{}}, 504},
		{context.Canceled, 499},
	}
	for _, tt := range tests {
		if got := StatusFor(tt.err); got != tt.want {
			t.Errorf("StatusFor(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestNoLeaks opens and ends many streams, half closed cleanly and half
// cut at the TCP level from either side, and checks that no goroutine
// outlives its pair.
func TestNoLeaks(t *testing.T) {
	before := goleak.IgnoreCurrent()
	func() {
		b := newBackend(t)
		e := newEdge(t, siteConfig(config.Route{Path: "/wss", Upstreams: []string{b.wsURL()}}))
		for i := range 120 {
			c, _, err := e.dial(t, "/wss", nil)
			if err != nil {
				t.Fatalf("dial %d: %v", i, err)
			}
			testutil.EchoRoundTrip(t, c, websocket.BinaryMessage, []byte("x"))
			switch i % 3 {
			case 0:
				_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"), time.Now().Add(time.Second))
				_, _, _ = c.ReadMessage()
				c.Close()
			case 1:
				c.UnderlyingConn().Close()
			case 2:
				(<-b.conns).UnderlyingConn().Close()
				_, _, _ = c.ReadMessage()
				c.Close()
			}
			if i%3 != 2 {
				<-b.conns
			}
		}
		waitNoStreams(t, e)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
		e.srv.Close()
		b.Close()
	}()
	goleak.VerifyNone(t, before)
}

// TestUpstreamAnswerBounded: an upstream that answers an upgrade with
// endless headers is cut off (502) after a bounded read, instead of
// filling memory until dial_timeout.
func TestUpstreamAnswerBounded(t *testing.T) {
	ln := testutil.Listen(t)
	wrote := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			wrote <- -1
			return
		}
		defer c.Close()
		n, _ := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\n")
		total := int64(n)
		line := []byte("X-Filler: " + strings.Repeat("a", 1000) + "\r\n")
		for range 256 << 10 { // 256 MB at most, unless the proxy hangs up
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			n, err := c.Write(line)
			total += int64(n)
			if err != nil {
				break
			}
		}
		wrote <- total
	}()
	e := newEdge(t, siteConfig(config.Route{Path: "/wss", Upstreams: []string{"ws://" + ln.Addr().String()}}))
	_, resp, err := e.dial(t, "/wss", nil)
	if err == nil || resp == nil || resp.StatusCode != 502 {
		t.Fatalf("dial: err %v, resp %v; want 502", err, resp)
	}
	// The proxy read 64 KiB and hung up; what the upstream got to write
	// beyond that sat in socket buffers (a few MiB on loopback).
	if n := <-wrote; n > 32<<20 {
		t.Errorf("upstream wrote %d MiB of headers before the proxy hung up; want the read bounded", n>>20)
	}
}

func TestStaticDirectoryRedirect(t *testing.T) {
	e := newEdge(t, siteConfig(config.Route{Path: "/files", Root: t.TempDir(), StripPrefix: true}))
	tr := &http.Transport{TLSClientConfig: e.tlsConfig()}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/files?x=1", nil)
	req.Host = "chat.example.com"
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "/files/?x=1" {
		t.Errorf("GET /files = %d Location %q, want 301 /files/?x=1", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestUnderscoreHeadersDropped: X_Real_IP and friends would reach
// CGI-style gateways as the same variable as X-Real-IP.
func TestUnderscoreHeadersDropped(t *testing.T) {
	b := newBackend(t)
	e := newEdge(t, siteConfig(config.Route{Path: "/", Upstreams: []string{b.URL}}))
	spoof := http.Header{"X_Real_IP": {"6.6.6.6"}, "X_Forwarded_For": {"6.6.6.6"}, "X_Other": {"x"}}
	for _, ws := range []bool{true, false} {
		if ws {
			if _, _, err := e.dial(t, "/ws", spoof.Clone()); err != nil {
				t.Fatalf("dial: %v", err)
			}
		} else {
			e.get(t, "chat.example.com", "/page", spoof)
		}
		for k := range b.lastRequest().Header {
			if strings.Contains(k, "_") {
				t.Errorf("websocket=%v: upstream got header %q, want names with underscores dropped", ws, k)
			}
		}
	}
}

// TestOtherUpgradesNotTunnelled: only WebSocket is relayed; a request
// for another protocol goes upstream as a plain request.
func TestOtherUpgradesNotTunnelled(t *testing.T) {
	b := newBackend(t)
	e := newEdge(t, siteConfig(config.Route{Path: "/", Upstreams: []string{b.URL}}))
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/x", nil)
	req.Host = "chat.example.com"
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	tr := &http.Transport{TLSClientConfig: e.tlsConfig()} // HTTP/1.1: upgrades cannot ride HTTP/2
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("got status %d, want 200 (a plain request)", resp.StatusCode)
	}
	if got := b.lastRequest().Header.Get("Upgrade"); got != "" {
		t.Errorf("upstream got Upgrade %q, want none", got)
	}
}

func TestRouteHostHeader(t *testing.T) {
	b := newBackend(t)
	e := newEdge(t, siteConfig(
		config.Route{Path: "/wss", Upstreams: []string{b.URL}, Headers: map[string]string{"Host": "backend.internal", "X-Site": "chat"}},
	))
	if _, _, err := e.dial(t, "/wss", nil); err != nil {
		t.Fatalf("dial: %v", err)
	}
	if r := b.lastRequest(); r.Host != "backend.internal" || r.Header.Get("X-Site") != "chat" {
		t.Errorf("websocket: upstream got Host %q, X-Site %q; want backend.internal, chat", r.Host, r.Header.Get("X-Site"))
	}
	e.get(t, "chat.example.com", "/wss/page", nil)
	if r := b.lastRequest(); r.Host != "backend.internal" || r.Header.Get("X-Site") != "chat" {
		t.Errorf("http: upstream got Host %q, X-Site %q; want backend.internal, chat", r.Host, r.Header.Get("X-Site"))
	}
}

// TestSingleUpstreamRecovers: a lone upstream that failed is probed
// again at once, so a restarted gateway does not wait out fail_timeout.
func TestSingleUpstreamRecovers(t *testing.T) {
	addr := testutil.FreeAddr(t)
	e := newEdge(t, siteConfig(config.Route{Path: "/", Upstreams: []string{"http://" + addr}, FailTimeout: time.Hour}))
	if got := e.get(t, "chat.example.com", "/", nil).StatusCode; got != 502 {
		t.Fatalf("upstream down: got %d, want 502", got)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("address taken again before the test could reuse it: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "back") }), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	if got := e.get(t, "chat.example.com", "/", nil).StatusCode; got != 200 {
		t.Errorf("upstream back, still within fail_timeout: got %d, want 200", got)
	}
}

// TestStalledRefusal: an upstream that refuses an upgrade and then stalls
// mid-body does not hold the request past response_timeout.
func TestStalledRefusal(t *testing.T) {
	ln := testutil.Listen(t)
	release := make(chan struct{})
	defer close(release)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\nno")
		<-release
	}()
	cfg := siteConfig(config.Route{Path: "/wss", Upstreams: []string{"ws://" + ln.Addr().String()}})
	cfg.Limits.ResponseTimeout = 300 * time.Millisecond
	e := newEdge(t, cfg)
	_, resp, _ := e.dial(t, "/wss", nil)
	if resp == nil || resp.StatusCode != 403 {
		t.Fatalf("got %v, want the upstream's 403", resp)
	}
	testutil.WaitFor(t, "the request's slot to be released", func() bool { return e.active.Load() == 0 })
}

// TestStalledReaderReleased: a client that stops reading a large
// response loses its connection after send_timeout instead of holding
// its connection slot forever.
func TestStalledReaderReleased(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big"), bytes.Repeat([]byte("x"), 32<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := siteConfig(config.Route{Path: "/", Root: dir})
	cfg.Limits.SendTimeout = 300 * time.Millisecond
	e := newEdge(t, cfg)
	conn, err := tls.Dial("tcp", e.srv.Listener.Addr().String(), e.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /big HTTP/1.1\r\nHost: chat.example.com\r\n\r\n")
	testutil.WaitFor(t, "the request to start", func() bool { return e.active.Load() == 1 })
	// Read nothing more: the server's writes block, then time out.
	testutil.WaitFor(t, "the stalled request's slot to be released", func() bool { return e.active.Load() == 0 })
}

// TestAccessLogOnAbort: a response the upstream cuts off mid-body still
// gets its access line.
func TestAccessLogOnAbort(t *testing.T) {
	ln := testutil.Listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = http.ReadRequest(bufio.NewReader(c))
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
			}()
		}
	}()
	var buf testutil.LockedBuffer
	cfg := siteConfig(config.Route{Path: "/", Upstreams: []string{"http://" + ln.Addr().String()}})
	cfg.SetDefaults()
	p, err := New(cfg, Options{Logger: testutil.Logger(t), AccessLog: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(p)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/cut", nil)
	req.Host = "chat.example.com"
	if resp, err := srv.Client().Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	testutil.WaitFor(t, "the access line", func() bool { return strings.Contains(buf.String(), "path=/cut") })
	if !strings.Contains(buf.String(), "aborted") {
		t.Errorf("access line does not say the response was aborted: %s", buf.String())
	}
}

// TestManyConcurrentStreams runs 100 streams at once through the edge,
// each sending 30 messages of mixed sizes and checking every echo in
// order, so that relay state cannot bleed between streams.
func TestManyConcurrentStreams(t *testing.T) {
	b := newBackend(t)
	e := newEdge(t, siteConfig(config.Route{Path: "/wss", Upstreams: []string{b.wsURL()}}))
	const streams, messages = 100, 30
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		wg.Go(func() {
			d := websocket.Dialer{TLSClientConfig: e.tlsConfig(), HandshakeTimeout: 10 * time.Second}
			c, _, err := d.Dial("wss://"+e.srv.Listener.Addr().String()+"/wss", http.Header{"Host": {"chat.example.com"}})
			if err != nil {
				errs <- fmt.Errorf("stream %d: dial: %w", i, err)
				return
			}
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			for m := range messages {
				size := 1 + (i*131+m*977)%70000 // small, medium and multi-frame-buffer sizes
				msg := bytes.Repeat([]byte{byte(i), byte(m)}, size/2+1)
				if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
					errs <- fmt.Errorf("stream %d: write %d: %w", i, m, err)
					return
				}
				_, got, err := c.ReadMessage()
				if err != nil {
					errs <- fmt.Errorf("stream %d: read %d: %w", i, m, err)
					return
				}
				if !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("stream %d: message %d came back altered (%d bytes, want %d)", i, m, len(got), len(msg))
					return
				}
			}
			if i%2 == 0 {
				_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitNoStreams(t, e)
}

// TestTLSUpstreams: wss:// and https:// upstreams are verified against
// upstream_tls.ca_file (or skipped with insecure_skip_verify), for
// WebSocket upgrades and plain requests alike.
func TestTLSUpstreams(t *testing.T) {
	backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			_, _ = io.WriteString(w, "tls plain")
			return
		}
		testutil.EchoWebSocket(w, r)
	}))
	defer backend.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: backend.Certificate().Raw})
	if err := os.WriteFile(caFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := backend.Listener.Addr().String()
	tests := []struct {
		name     string
		tls      config.UpstreamTLS
		wantOK   bool
		wantCode int
	}{
		{"trusted by ca_file", config.UpstreamTLS{CAFile: caFile}, true, 0},
		{"trusted, name from server_name", config.UpstreamTLS{CAFile: caFile, ServerName: "example.com"}, true, 0},
		{"wrong server_name", config.UpstreamTLS{CAFile: caFile, ServerName: "other.test"}, false, 502},
		{"not trusted", config.UpstreamTLS{}, false, 502},
		{"insecure_skip_verify", config.UpstreamTLS{InsecureSkipVerify: true}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEdge(t, siteConfig(
				config.Route{Path: "/wss", Upstreams: []string{"wss://" + addr}, UpstreamTLS: tt.tls},
				config.Route{Path: "/", Upstreams: []string{"https://" + addr}, UpstreamTLS: tt.tls},
			))
			c, resp, err := e.dial(t, "/wss", nil)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				testutil.EchoRoundTrip(t, c, websocket.BinaryMessage, []byte("over tls"))
			} else if err == nil || resp == nil || resp.StatusCode != tt.wantCode {
				t.Errorf("dial: err %v, resp %v; want %d", err, resp, tt.wantCode)
			}
			got := e.get(t, "chat.example.com", "/x", nil)
			body, _ := io.ReadAll(got.Body)
			if tt.wantOK && (got.StatusCode != 200 || string(body) != "tls plain") {
				t.Errorf("GET: %d %q, want 200 \"tls plain\"", got.StatusCode, body)
			}
			if !tt.wantOK && got.StatusCode != tt.wantCode {
				t.Errorf("GET: %d, want %d", got.StatusCode, tt.wantCode)
			}
		})
	}
}

// TestStaticSymlinks serves a root whose links lead inside it and out of
// it: the inside link is followed, the outside one is 404, whatever the
// path's form, unless follow_symlinks is set.
func TestStaticSymlinks(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "page.txt"), []byte("page"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ target, name string }{
		{outside, "out"}, // a directory outside
		{filepath.Join(outside, "secret.txt"), "s.txt"}, // a file outside
		{"page.txt", "alias.txt"},                       // a file inside
	} {
		if err := os.Symlink(l.target, filepath.Join(root, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		follow     bool
		path       string
		wantStatus int
		wantBody   string
	}{
		{false, "/static/page.txt", 200, "page"},
		{false, "/static/alias.txt", 200, "page"},
		{false, "/static/out/secret.txt", 404, ""},
		{false, "/static/s.txt", 404, ""},
		{false, "/static/./out/../out/secret.txt", 404, ""},
		{true, "/static/out/secret.txt", 200, "secret"},
		{true, "/static/s.txt", 200, "secret"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("follow=%v %s", tt.follow, tt.path), func(t *testing.T) {
			e := newEdge(t, siteConfig(config.Route{Path: "/static", Root: root, StripPrefix: true, FollowSymlinks: tt.follow}))
			resp := e.get(t, "chat.example.com", tt.path, nil)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || (tt.wantBody != "" && string(body) != tt.wantBody) {
				t.Errorf("GET %s = %d %q, want %d %q", tt.path, resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}
