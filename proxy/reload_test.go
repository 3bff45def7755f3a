package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/testutil"
)

// reload validates cfg as config.Load would and reloads e with it, as
// the server does: Prepare, then Commit.
func (e *edge) reload(t *testing.T, cfg *config.Config) error {
	t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config invalid: %v", err)
	}
	pr, err := e.Prepare(cfg)
	if err != nil {
		return err
	}
	pr.Commit()
	return nil
}

// pump echoes numbered messages of varied sizes over a WebSocket until
// stopped, up to pumpWindow of them in flight, and fails on the first
// error or a message that comes back changed, lost or out of order.
type pump struct {
	c      *websocket.Conn
	stop   chan struct{}
	done   chan error
	echoed atomic.Int64
}

const pumpWindow = 32

// pumpMessage is the i-th message of a pump: its number, then up to
// 3000 bytes of padding, so that frames of every length form pass.
func pumpMessage(i int) []byte {
	msg := fmt.Appendf(nil, "%08d", i)
	return append(msg, bytes.Repeat([]byte{byte(i)}, (i*373)%3000)...)
}

func startPump(c *websocket.Conn) *pump {
	p := &pump{c: c, stop: make(chan struct{}), done: make(chan error, 2)}
	sem := make(chan struct{}, pumpWindow)
	go func() { // writer
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				_ = c.SetWriteDeadline(time.Now().Add(relayWait))
				p.done <- c.WriteMessage(websocket.TextMessage, []byte("end"))
				return
			case sem <- struct{}{}:
			}
			_ = c.SetWriteDeadline(time.Now().Add(relayWait))
			if err := c.WriteMessage(websocket.BinaryMessage, pumpMessage(i)); err != nil {
				p.done <- fmt.Errorf("write %d: %w", i, err)
				return
			}
		}
	}()
	go func() { // reader
		for i := 0; ; i++ {
			_ = c.SetReadDeadline(time.Now().Add(relayWait))
			mt, msg, err := c.ReadMessage()
			if err != nil {
				p.done <- fmt.Errorf("read %d: %w", i, err)
				return
			}
			if mt == websocket.TextMessage && string(msg) == "end" {
				p.done <- nil
				return
			}
			if want := pumpMessage(i); !bytes.Equal(msg, want) {
				p.done <- fmt.Errorf("message %d came back as %.8q (%d bytes), want %.8q (%d bytes)", i, msg, len(msg), want, len(want))
				return
			}
			p.echoed.Add(1)
			<-sem
		}
	}()
	return p
}

// finish stops the pump and returns how many messages were echoed.
func (p *pump) finish(t *testing.T) int64 {
	t.Helper()
	close(p.stop)
	for range 2 {
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("stream broken: %v", err)
			}
		case <-time.After(2 * relayWait):
			t.Fatal("pump did not finish")
		}
	}
	return p.echoed.Load()
}

// TestReloadUnderTraffic reloads again and again while streams echo
// without pause: routes are added, retargeted and removed, and a reload
// fails, yet every open stream relays on with nothing lost or reordered,
// new connections follow the new table, and the failed reload leaves the
// table as it was.
func TestReloadUnderTraffic(t *testing.T) {
	verifyNoStreamLeaks(t)
	b1, b2, b3 := newBackend(t), newBackend(t), newBackend(t)
	before := siteConfig(
		config.Route{Path: "/same", Upstreams: []string{b1.wsURL()}},
		config.Route{Path: "/moved", Upstreams: []string{b1.wsURL()}},
		config.Route{Path: "/gone", Upstreams: []string{b1.wsURL()}},
	)
	after := func() *config.Config {
		return siteConfig(
			config.Route{Path: "/same", Upstreams: []string{b1.wsURL()}},
			config.Route{Path: "/moved", Upstreams: []string{b2.wsURL()}},
			config.Route{Path: "/new", Upstreams: []string{b3.wsURL()}},
		)
	}
	e := newEdge(t, before)

	var pumps []*pump
	for _, path := range []string{"/same", "/moved", "/gone", "/same", "/moved", "/gone"} {
		c, _, err := e.dial(t, path, nil)
		if err != nil {
			t.Fatalf("dial %s: %v", path, err)
		}
		pumps = append(pumps, startPump(c))
	}
	waitEchoed := func(what string) {
		t.Helper()
		marks := make([]int64, len(pumps))
		for i, p := range pumps {
			marks[i] = p.echoed.Load()
		}
		testutil.WaitFor(t, "every stream to echo "+what, func() bool {
			for i, p := range pumps {
				if p.echoed.Load() < marks[i]+pumpWindow {
					return false
				}
			}
			return true
		})
	}
	waitEchoed("before the reloads")

	// Stats runs alongside the reloads and the traffic (for -race).
	statsDone := make(chan struct{})
	stopStats := make(chan struct{})
	go func() {
		defer close(statsDone)
		for {
			select {
			case <-stopStats:
				return
			default:
				_ = e.Stats()
			}
		}
	}()
	for i := range 20 {
		cfg := after()
		if i%2 == 1 {
			cfg = siteConfig(before.Sites[0].Routes...)
		}
		if err := e.reload(t, cfg); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	if err := e.reload(t, after()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	close(stopStats)
	<-statsDone
	waitEchoed("after the reloads")

	// A reload that fails leaves the running table alone.
	bad := after()
	bad.Sites[0].Routes = append(bad.Sites[0].Routes, config.Route{
		Path: "/tls", Upstreams: []string{"wss://127.0.0.1:1"},
		UpstreamTLS: config.UpstreamTLS{CAFile: t.TempDir() + "/missing.pem"},
	})
	bad.Sites[0].Routes[0].Path = "/renamed"
	err := e.reload(t, bad)
	var re *RouteError
	if !errors.As(err, &re) || re.Path() != "sites[0].routes[3].upstream_tls.ca_file" {
		t.Fatalf("reload with a missing ca_file: %v, want a *RouteError at sites[0].routes[3].upstream_tls.ca_file", err)
	}

	// New connections follow the table of the last successful reload.
	for _, tc := range []struct {
		path string
		want *backend // nil: refused with 404
	}{
		{"/same", b1},
		{"/moved", b2},
		{"/new", b3},
		{"/gone", nil},
		{"/renamed", nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			c, resp, err := e.dial(t, tc.path, nil)
			if tc.want == nil {
				if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
					t.Fatalf("dial %s: %v, %v; want 404", tc.path, err, resp)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial %s: %v", tc.path, err)
			}
			testutil.EchoRoundTrip(t, c, websocket.BinaryMessage, []byte("after reload"))
			if r := tc.want.lastRequest(); r == nil || r.URL.Path != tc.path {
				t.Errorf("dial %s: the expected backend did not see it (last request %v)", tc.path, r)
			}
		})
	}

	waitEchoed("after the failed reload")
	for i, p := range pumps {
		n := p.finish(t)
		t.Logf("stream %d echoed %d messages", i, n)
	}
}

// TestReloadKeepsConnectionCounts: connections admitted before a reload
// count toward max_connections after it, site and global alike, and give
// their slot back to the counter the new table checks.
func TestReloadKeepsConnectionCounts(t *testing.T) {
	for _, scope := range []string{"site", "global"} {
		t.Run(scope, func(t *testing.T) {
			b := newBackend(t)
			limited := func(limit int, extra ...config.Route) *config.Config {
				cfg := siteConfig(append([]config.Route{{Path: "/wss", Upstreams: []string{b.wsURL()}}}, extra...)...)
				if scope == "site" {
					cfg.Sites[0].MaxConnections = limit
				} else {
					cfg.Limits.MaxConnections = limit
				}
				return cfg
			}
			e := newEdge(t, limited(2))
			var held []*websocket.Conn
			for i := range 2 {
				c, _, err := e.dial(t, "/wss", nil)
				if err != nil {
					t.Fatalf("dial %d: %v", i, err)
				}
				held = append(held, c)
			}
			refused := func(when string) {
				t.Helper()
				if _, resp, err := e.dial(t, "/wss", nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("%s: one connection over the limit got %v, %v; want 503", when, err, resp)
				}
			}
			refused("before the reload")

			// A new table, with a route added: the two open streams still count.
			if err := e.reload(t, limited(2, config.Route{Path: "/other", Respond: &config.Respond{Body: "x"}})); err != nil {
				t.Fatal(err)
			}
			refused("after the reload")

			// A higher limit admits one more, and counts the old ones.
			if err := e.reload(t, limited(3)); err != nil {
				t.Fatal(err)
			}
			c, _, err := e.dial(t, "/wss", nil)
			if err != nil {
				t.Fatalf("dial under the raised limit: %v", err)
			}
			held = append(held, c)
			refused("at the raised limit")

			// An old stream ending frees its slot under the new table.
			held[0].Close()
			testutil.WaitFor(t, "the old stream's slot", func() bool { return e.active.Load() == 2 })
			if _, _, err := e.dial(t, "/wss", nil); err != nil {
				t.Fatalf("dial after an old stream ended: %v", err)
			}
			for _, c := range held[1:] {
				testutil.EchoRoundTrip(t, c, websocket.BinaryMessage, []byte("still here"))
			}
		})
	}
}

// TestReloadClosesIdleUpstreamConnections: the plain HTTP connections of
// a replaced table are closed once idle, and a request in flight on one
// during the reload finishes intact first.
func TestReloadClosesIdleUpstreamConnections(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	inSlow := make(chan struct{}, 1)
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "slow ")
			w.(http.Flusher).Flush()
			inSlow <- struct{}{}
			<-release
			io.WriteString(w, "done.")
			return
		}
		io.WriteString(w, "fast")
	}))
	be.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			open[c] = true
		case http.StateClosed, http.StateHijacked:
			delete(open, c)
		}
	}
	be.Start()
	t.Cleanup(be.Close)
	openConns := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(open)
	}
	cfg := func() *config.Config {
		return siteConfig(config.Route{Path: "/", Upstreams: []string{be.URL}})
	}
	e := newEdge(t, cfg())
	t.Cleanup(unblock) // first: closing the servers waits for the handlers

	slow := make(chan string, 1)
	tr := &http.Transport{TLSClientConfig: e.tlsConfig()}
	t.Cleanup(tr.CloseIdleConnections)
	req := mustRequest(t, e, "/slow")
	go func() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			slow <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			slow <- err.Error()
			return
		}
		slow <- string(b)
	}()
	<-inSlow
	if resp := e.get(t, "chat.example.com", "/fast", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /fast = %d", resp.StatusCode)
	}
	testutil.WaitFor(t, "two upstream connections, one idle", func() bool { return openConns() == 2 })

	if err := e.reload(t, cfg()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the idle connection to close", func() bool { return openConns() == 1 })
	unblock()
	if got := <-slow; got != "slow done." {
		t.Fatalf("request in flight during the reload got %q, want %q", got, "slow done.")
	}
	testutil.WaitFor(t, "the in-flight request's connection to close", func() bool { return openConns() == 0 })

	// The new table has transports of its own.
	if resp := e.get(t, "chat.example.com", "/fast", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /fast after the reload = %d", resp.StatusCode)
	}
}

// mustRequest is a GET of path through e, with e's Host and TLS trust.
func mustRequest(t *testing.T, e *edge, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "chat.example.com"
	return req
}
