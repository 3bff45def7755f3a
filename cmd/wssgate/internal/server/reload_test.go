package server_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wssgate/wssgate/cmd/wssgate/internal/server"
	"github.com/wssgate/wssgate/cmd/wssgate/internal/server/servertest"
	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/internal/testutil"
)

// reloadBase is a configuration the reload tests change one key of.
const reloadBase = `listen: { https: "127.0.0.1:0", http: "" }
admin: { listen: "127.0.0.1:0" }
log: { format: text }
gateway:
  text_listen: "127.0.0.1:0"
  ping_interval: 25s
sites:
  - hosts: [localhost]
    tls: { internal: true }
    routes:
      - { path: /wss, gateway: true }
      - { path: /, respond: { body: "one" } }
`

// TestReloadRefused checks that a reload that cannot apply changes
// nothing and says why, naming file, line and key: keys only an upgrade
// can change, invalid files, and a port that cannot be bound.
func TestReloadRefused(t *testing.T) {
	taken := testutil.Listen(t)
	tests := []struct {
		name string
		edit func(string) string
		want string // a regexp one problem must match
	}{
		{"log format", func(s string) string { return strings.Replace(s, "format: text", "format: json", 1) },
			`config\.yaml:3: log\.format: changed from "text" to "json"; a reload cannot apply it: run wssgate upgrade`},
		{"heartbeat", func(s string) string { return strings.Replace(s, "ping_interval: 25s", "ping_interval: 10s", 1) },
			`config\.yaml:6: gateway\.ping_interval: changed; a reload cannot apply it`},
		{"gateway off", func(s string) string {
			s = strings.Replace(s, "      - { path: /wss, gateway: true }\n", "", 1)
			return strings.Replace(s, "  text_listen: \"127.0.0.1:0\"\n", "", 1)
		}, `gateway: the bundled gateway is turned on or off`},
		{"unknown key", func(s string) string { return s + "lisen: {}\n" }, `config\.yaml:13: lisen: unknown key`},
		{"bad value", func(s string) string { return strings.Replace(s, `body: "one"`, `body: "one", status: 42`, 1) },
			`config\.yaml:12: sites\[0\]\.routes\[1\]\.respond\.status`},
		{"port taken", func(s string) string {
			return strings.Replace(s, `https: "127.0.0.1:0"`, fmt.Sprintf("https: %q", taken.Addr()), 1)
		}, `config\.yaml:1: listen\.https: .*` + regexp.QuoteMeta(taken.Addr().String()) + `.*address already in use`},
		{"unreadable ca_file", func(s string) string {
			return strings.Replace(s, `{ path: /, respond: { body: "one" } }`, `{ path: /, upstreams: ["https://127.0.0.1:1"], upstream_tls: { ca_file: /nonexistent.pem } }`, 1)
		}, `config\.yaml:12: sites\[0\]\.routes\[1\]\.upstream_tls\.ca_file`},
	}
	srv, path := servertest.ServeFile(t, reloadBase, server.Options{})
	addr := srv.Addr(config.ListenerHTTPS)
	client := srv.Client()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			servertest.WriteFile(t, filepath.Dir(path), "config.yaml", tt.edit(reloadBase))
			err := srv.Reload()
			if err == nil {
				t.Fatal("reload applied")
			}
			var lines []string
			for _, e := range config.Errors(err) {
				lines = append(lines, e.Error())
			}
			if !regexp.MustCompile(tt.want).MatchString(strings.Join(lines, "\n")) {
				t.Errorf("problems:\n%s\nwant one matching %s", strings.Join(lines, "\n"), tt.want)
			}
			if got := servertest.Body(t, client, "https://localhost"+portOf(addr)+"/"); got != "one" {
				t.Errorf("after a refused reload / answers %q", got)
			}
			s := srv.Snapshot()
			if s.Reload.Generation != 0 || !s.Reload.Failed || len(s.Reload.Problems) == 0 {
				t.Errorf("status reload block %+v", s.Reload)
			}
		})
	}
}

// TestReloadApplies checks what a reload changes for new connections
// while open ones (an edge WebSocket, a gateway client, a text client)
// go on untouched: a new route and a new response, a moved listener, a
// new admin token, a new push API secret and a log level.
func TestReloadApplies(t *testing.T) {
	backend := testutil.EchoServer(t)
	cfgText := func(route, body, https, token, secret, level string) string {
		return fmt.Sprintf(`listen: { https: %q, http: "" }
admin: { listen: "127.0.0.1:0", token: %q }
log: { level: %s }
gateway:
  text_listen: "127.0.0.1:0"
  push_api: { listen: "127.0.0.1:0", secret: %q }
sites:
  - hosts: [localhost]
    tls: { internal: true }
    routes:
      - { path: /wss, gateway: true }
      - { path: /echo, upstreams: ["ws://%s"] }
      - { path: %s, respond: { body: %q } }
`, https, token, level, secret, backend.Listener.Addr(), route, body)
	}
	first, second := testutil.FreeAddr(t), testutil.FreeAddr(t)
	srv, path := servertest.ServeFile(t, cfgText("/a", "a", first, "t1", "s1", "info"), server.Options{})
	client := srv.Client()
	roots := srv.Roots()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: roots}}
	edge, _, err := d.Dial("wss://localhost"+portOf(first)+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer edge.Close()
	gw := gatewaytest.DialWSWith(t, &d, "wss://localhost"+portOf(first)+"/wss", nil)
	gw.ReadID("Hello ")
	text := gatewaytest.DialText(t, srv.Addr(config.ListenerGatewayText))
	text.ReadID("Hello ")
	adminAddr := srv.Addr(config.ListenerAdmin)

	servertest.WriteFile(t, filepath.Dir(path), "config.yaml", cfgText("/b", "b", second, "t2", "s2", "debug"))
	if err := srv.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	// New connections: the new route on the new address, the old address closed.
	if got := servertest.Body(t, client, "https://localhost"+portOf(second)+"/b"); got != "b" {
		t.Errorf("/b on the new address: %q", got)
	}
	if c, err := net.Dial("tcp", first); err == nil {
		c.Close()
		t.Errorf("old https address %s still accepts", first)
	}
	if code := statusOf(t, client, "https://localhost"+portOf(second)+"/a"); code != http.StatusNotFound {
		t.Errorf("/a after it was removed: %d", code)
	}
	// Open connections: untouched, on the address that is gone.
	if err := edge.WriteMessage(websocket.TextMessage, []byte("still")); err != nil {
		t.Fatal(err)
	}
	if _, m, err := edge.ReadMessage(); err != nil || string(m) != "still" {
		t.Errorf("edge stream after reload: %q, %v", m, err)
	}
	for _, from := range []*gatewaytest.Peer{gw, text} {
		from.Send("after the reload")
		for _, p := range []*gatewaytest.Peer{gw, text} {
			if got := readSaid(p); !strings.HasSuffix(got, " said after the reload") {
				t.Errorf("gateway client after reload heard %q", got)
			}
		}
	}
	// The admin token and the push API secret changed.
	if adminAddr != srv.Addr(config.ListenerAdmin) {
		t.Errorf("admin moved from %s to %s though its address did not change", adminAddr, srv.Addr(config.ListenerAdmin))
	}
	for tok, want := range map[string]int{"t1": 401, "t2": 200} {
		if got := servertest.BearerGet(t, "http://"+adminAddr+"/status", tok); got != want {
			t.Errorf("admin with token %s: %d, want %d", tok, got, want)
		}
	}
	for sec, want := range map[string]int{"s1": 401, "s2": 200} {
		req, _ := http.NewRequest("POST", "http://"+srv.Addr(config.ListenerPushAPI)+"/api/getAllClientIdCount", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+sec)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("push API with secret %s: %d, want %d", sec, resp.StatusCode, want)
		}
	}
	if s := srv.Snapshot(); s.Reload.Generation != 1 || s.Reload.Failed {
		t.Errorf("status reload block %+v", s.Reload)
	}
}

// TestReloadAllOrNothing hammers the server with requests while reloads
// that change the response but carry a certificate that cannot load are
// refused: no request may ever see the refused configuration.
func TestReloadAllOrNothing(t *testing.T) {
	base := `listen: { https: "127.0.0.1:0", http: "" }
admin: { listen: "" }
sites:
  - hosts: [localhost]
    tls: { internal: true }
    routes:
      - { path: /, respond: { body: "%s" } }
`
	srv, path := servertest.ServeFile(t, fmt.Sprintf(base, "one"), server.Options{})
	client := srv.Client()
	url := srv.URL("/")
	refused := fmt.Sprintf(base, "two") + `  - hosts: [broken.example]
    tls: { cert_file: /nonexistent.pem, key_file: /nonexistent.key }
    routes: [{ path: /, respond: { body: x } }]
`
	var seen sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(url)
				if err != nil {
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				seen.Store(string(b), true)
			}
		})
	}
	for range 10 {
		servertest.WriteFile(t, filepath.Dir(path), "config.yaml", refused)
		if err := srv.Reload(); err == nil {
			t.Fatal("a reload with a missing certificate applied")
		}
	}
	close(stop)
	wg.Wait()
	if _, ok := seen.Load("two"); ok {
		t.Error("a request was answered by the configuration the reload refused")
	}
	if _, ok := seen.Load("one"); !ok {
		t.Error("no request was answered at all")
	}
}

// TestStopCutsReplacedServers checks that a graceful stop gives the
// servers a reload replaced shutdown_timeout, not the drain_timeout they
// had: a long response through a replaced server must not hold the
// process past its stop deadline.
func TestStopCutsReplacedServers(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 600 {
			if _, err := io.WriteString(w, "data: x\n\n"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	}))
	defer slow.Close()
	cfgText := func(keepalive string) string {
		return fmt.Sprintf(`listen: { https: "127.0.0.1:0", http: "" }
admin: { listen: "" }
shutdown_timeout: 1s
drain_timeout: 1m
limits: { keepalive_timeout: %s }
sites:
  - hosts: [localhost]
    tls: { internal: true }
    routes:
      - { path: /, upstreams: ["http://%s"] }
`, keepalive, slow.Listener.Addr())
	}
	path := servertest.WriteFile(t, t.TempDir(), "config.yaml", cfgText("75s"))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Serve(t, cfg, server.Options{Load: func() (*config.Config, error) { return config.Load(path) }})
	client := srv.Client()
	client.Timeout = 0
	resp, err := client.Get(srv.URL("/events"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	go io.Copy(io.Discard, resp.Body)
	servertest.WriteFile(t, filepath.Dir(path), "config.yaml", cfgText("70s")) // new limits: the https server is replaced
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Stop() }()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second): // shutdown_timeout is 1s; drain_timeout 1m
		t.Fatal("stop waited for the replaced server's drain_timeout")
	}
}

// readSaid reads until a chat line someone said.
func readSaid(p *gatewaytest.Peer) string {
	for {
		if m := p.Read(); strings.Contains(m, " said ") {
			return m
		}
	}
}

// statusOf GETs url and returns the status code.
func statusOf(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// portOf is ":port" of a host:port address.
func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return ":" + port
}
