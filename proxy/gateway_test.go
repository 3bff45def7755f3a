package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/testutil"
)

// inProcessGateway is an http.Handler standing in for the bundled
// gateway: it upgrades, says which client address it was given, then
// echoes. The handler returns only when the connection ends, as the
// gateway's does.
func inProcessGateway(addr func(*http.Request) netip.AddrPort) http.Handler {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.WriteMessage(websocket.TextMessage, []byte(addr(r).String()))
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			c.WriteMessage(mt, msg)
		}
	})
}

func TestGatewayRoute(t *testing.T) {
	cfg := siteConfig(
		config.Route{Path: "/wss", Gateway: true, AllowedOrigins: []string{"https://chat.example.com"}},
		config.Route{Path: "/", ChatPage: true},
	)
	cfg.Sites[0].MaxConnections = 1
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "chat page") })
	e := newEdgeWith(t, cfg, Options{Gateway: inProcessGateway(ClientAddrFunc(nil)), ChatPage: page})

	c, resp, err := e.dial(t, "/wss", http.Header{"Origin": {"https://chat.example.com"}})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	// The client dials from 127.0.0.2 (clientDialer): the gateway is told
	// the edge connection's peer, port included.
	ap, err := netip.ParseAddrPort(string(msg))
	if err != nil || ap.Addr() != netip.MustParseAddr("127.0.0.2") || ap.Port() == 0 {
		t.Errorf("gateway saw client %q, want 127.0.0.2 with its port", msg)
	}
	testutil.EchoRoundTrip(t, c, websocket.BinaryMessage, []byte("through the edge"))

	// The open gateway connection holds the site's only slot.
	if _, resp, err := e.dial(t, "/wss", nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second connection over max_connections: %v, %v; want 503", err, resp)
	}
	c.Close()
	testutil.WaitFor(t, "the slot to be released", func() bool { return e.active.Load() == 0 })

	for _, tc := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"foreign origin", http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
		{"bad version", http.Header{"Sec-WebSocket-Version": {"8"}}, http.StatusUpgradeRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := e.dial(t, "/wss", tc.header)
			if err == nil || resp == nil || resp.StatusCode != tc.want {
				t.Fatalf("got %v, %v; want %d", err, resp, tc.want)
			}
		})
	}
	// A plain request to the gateway route: 426.
	if resp := e.get(t, "chat.example.com", "/wss", nil); resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("plain GET /wss = %d, want 426", resp.StatusCode)
	}
	// The chat page route.
	resp = e.get(t, "chat.example.com", "/", nil)
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || !strings.Contains(string(b), "chat page") {
		t.Errorf("GET / = %d %q, want the chat page", resp.StatusCode, b)
	}
}

// TestGatewayRouteWithoutHandler: a config with gateway: true but no
// gateway handler fails the upgrade with 502 rather than crash.
func TestGatewayRouteWithoutHandler(t *testing.T) {
	e := newEdge(t, siteConfig(config.Route{Path: "/wss", Gateway: true}))
	if _, resp, err := e.dial(t, "/wss", nil); err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("got %v, %v; want 502", err, resp)
	}
}

func TestClientAddrFunc(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f := ClientAddrFunc(trusted)
	for _, tc := range []struct {
		remote, xff, want string
	}{
		{"192.0.2.7:5555", "", "192.0.2.7:5555"},
		{"192.0.2.7:5555", "203.0.113.9", "192.0.2.7:5555"}, // untrusted peer: header ignored
		{"10.1.1.1:5555", "203.0.113.9", "203.0.113.9:0"},
		{"10.1.1.1:5555", "203.0.113.9, 10.2.2.2", "203.0.113.9:0"},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := f(r).String(); got != tc.want {
			t.Errorf("remote %s, X-Forwarded-For %q: got %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

// TestGatewayDetach: a gateway that takes the connection over with Detach
// and returns from its handler keeps the route's slot until the
// connection ends, and the access line is written then, once, with 101.
func TestGatewayDetach(t *testing.T) {
	cfg := siteConfig(config.Route{Path: "/wss", Gateway: true})
	cfg.Sites[0].MaxConnections = 1
	up := websocket.Upgrader{}
	returned := make(chan struct{}, 4)
	gw := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		done := Detach(r)
		if done == nil {
			t.Errorf("Detach returned nil for a request through the gateway route")
			return
		}
		if Detach(r) != nil {
			t.Errorf("Detach returned a second done function")
		}
		go func() {
			defer done()
			defer c.Close()
			for {
				mt, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				c.WriteMessage(mt, msg)
			}
		}()
		returned <- struct{}{}
	})
	var logs testutil.LockedBuffer
	cfg.SetDefaults()
	p, err := New(cfg, Options{Gateway: gw, AccessLog: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(p)
	srv.StartTLS()
	defer srv.Close()
	e := &edge{Proxy: p, srv: srv}

	c, _, err := e.dial(t, "/wss", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	<-returned // the handler has returned; the connection lives on
	testutil.EchoRoundTrip(t, c, websocket.BinaryMessage, []byte("held"))
	if _, resp, err := e.dial(t, "/wss", nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second connection: %v, %v; want 503 (the slot is still held)", err, resp)
	}
	if strings.Contains(logs.String(), "status=101") {
		t.Errorf("access line written before the connection ended:\n%s", logs.String())
	}
	c.Close()
	testutil.WaitFor(t, "the slot to be released", func() bool { return e.active.Load() == 0 })
	testutil.WaitFor(t, "the access line", func() bool { return strings.Count(logs.String(), "status=101") == 1 })
	if r := httptest.NewRequest("GET", "/", nil); Detach(r) != nil {
		t.Errorf("Detach outside the gateway route returned a function")
	}
}
