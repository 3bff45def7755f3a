package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/testutil"
)

// echoBackend is a WebSocket echo gateway on loopback.
func echoBackend(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(testutil.EchoWebSocket))
	t.Cleanup(srv.Close)
	return srv
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startServer starts the edge for cfgText and returns its https address;
// the server stops, gracefully, when the test ends.
func startServer(t *testing.T, cfgText string) (addr string, stop func() error) {
	t.Helper()
	srv, stop := startServerWith(t, cfgText, serverOptions{})
	return srv.addr("https"), stop
}

// startServerWith is startServer with options (logger and InternalDir
// are filled in) that returns the server.
func startServerWith(t *testing.T, cfgText string, opts serverOptions) (srv *server, stop func() error) {
	t.Helper()
	path := writeFile(t, t.TempDir(), "config.yaml", cfgText)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if opts.Load == nil {
		opts.Load = func() (*config.Config, error) { return loadForTest(path) }
	}
	return serveConfig(t, cfg, opts)
}

// loadForTest loads path with the admin listener moved off its default
// port, which parallel tests would fight over, to any free port.
func loadForTest(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err == nil && cfg.Admin.Listen == config.Default().Admin.Listen {
		cfg.Admin.Listen = "127.0.0.1:0"
	}
	return cfg, err
}

// defaultOnFreePorts is the built-in default configuration with its
// listeners moved to free ports.
func defaultOnFreePorts(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse(defaultConfigName, defaultConfig)
	if err != nil {
		t.Fatalf("built-in default does not validate: %v", err)
	}
	cfg.Listen.HTTPS = "127.0.0.1:0"
	cfg.Gateway.TextListen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	return cfg
}

// serveConfig starts and serves cfg (loggers and a fresh InternalDir are
// filled into opts) until stop, which the test's end calls too.
func serveConfig(t *testing.T, cfg *config.Config, opts serverOptions) (srv *server, stop func() error) {
	t.Helper()
	opts.Logger, opts.InternalDir = testutil.Logger(t), t.TempDir()
	if opts.AccessLog == nil {
		opts.AccessLog = testutil.Logger(t)
	}
	if cfg.Admin.Listen == config.Default().Admin.Listen {
		cfg.Admin.Listen = "127.0.0.1:0"
	}
	srv, err := start(cfg, opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			return fmt.Errorf("serve did not return after cancel")
		}
	}
	t.Cleanup(func() { _ = stop() })
	return srv, stop
}

// TestEndToEnd runs the real server with a CA-issued certificate and an
// intermediate: a wss client that trusts only the root connects by name,
// sees the full chain, exchanges messages, and gets close 1001 when the
// server stops.
func TestEndToEnd(t *testing.T) {
	root := testutil.NewCA(t, "Test Root")
	inter := root.Intermediate(t, "Test Intermediate")
	leaf := inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.example.com"}})
	dir := t.TempDir()
	certFile, keyFile := leaf.WriteFiles(t, dir)
	backend := echoBackend(t)
	addr, stop := startServer(t, fmt.Sprintf(`
listen: { https: "127.0.0.1:0", http: "" }
shutdown_timeout: 5s
sites:
  - hosts: [chat.example.com]
    tls: { cert_file: %q, key_file: %q }
    routes:
      - path: /wss
        upstreams: ["ws://%s"]
`, certFile, keyFile, backend.Listener.Addr()))

	var chainLen int
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{
			RootCAs:    root.Pool(),
			ServerName: "chat.example.com",
			MinVersion: tls.VersionTLS12,
			VerifyConnection: func(cs tls.ConnectionState) error {
				chainLen = len(cs.PeerCertificates)
				return nil
			},
		},
		HandshakeTimeout: 5 * time.Second,
	}
	c, _, err := d.Dial("wss://chat.example.com/wss", nil)
	if err != nil {
		t.Fatalf("dial through the edge: %v", err)
	}
	defer c.Close()
	if chainLen != 2 {
		t.Errorf("server sent %d certificates, want 2 (leaf and intermediate)", chainLen)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "ping" {
		t.Fatalf("echo: %q, %v", msg, err)
	}

	stopErr := make(chan error, 1)
	go func() { stopErr <- stop() }()
	_, _, err = c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("on shutdown the client got %v, want close 1001", err)
	}
	if err := <-stopErr; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg, err := config.Parse(defaultConfigName, defaultConfig)
	if err != nil {
		t.Fatalf("built-in default does not validate: %v", err)
	}
	if got, want := cfg.Listen.HTTPS, "127.0.0.1:8443"; got != want {
		t.Errorf("default listen.https = %q, want %q", got, want)
	}
	if got, want := cfg.Gateway.TextListen, "127.0.0.1:8282"; got != want {
		t.Errorf("default gateway.text_listen = %q, want %q", got, want)
	}
	// Serve it on free ports and fetch the page over real TLS.
	srv, _ := serveConfig(t, defaultOnFreePorts(t), serverOptions{})
	var out bytes.Buffer
	srv.announce(&out)
	if !strings.Contains(out.String(), "https://localhost:") || !strings.Contains(out.String(), "local certificate authority") {
		t.Errorf("announcement lacks the URL or the local CA:\n%s", out.String())
	}

	// Trust only the local CA the announcement named.
	roots := localRoots(t, srv)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + srv.addr("https") + "/")
	if err != nil {
		t.Fatalf("GET /: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET / = %d %s, want 200 text/html", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := resp.TLS.Version; got < tls.VersionTLS12 {
		t.Errorf("negotiated TLS version %x, want ≥ 1.2", got)
	}

	// A browser-like client on wss://localhost/wss and a telnet-like one
	// on the text port chat through the bundled gateway.
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}, HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("wss://"+srv.addr("https")+"/wss", http.Header{"Origin": {"https://localhost:8443"}})
	if err != nil {
		t.Fatalf("dial /wss: %v", err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	readWS := func() string {
		t.Helper()
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return string(b)
	}
	wsID, ok := strings.CutPrefix(readWS(), "Hello ")
	if !ok {
		t.Fatalf("the gateway did not greet the WebSocket client")
	}
	readWS() // online list
	readWS() // own login
	tc, err := net.Dial("tcp", srv.addr("gateway_text"))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(tc)
	hello, _ := br.ReadString('\n')
	textID, ok := strings.CutPrefix(strings.TrimSpace(hello), "Hello ")
	if !ok {
		t.Fatalf("text client got %q, want Hello <id>", hello)
	}
	if got := readWS(); got != textID+" login" {
		t.Errorf("WebSocket client got %q, want %s login", got, textID)
	}
	fmt.Fprintf(tc, "hi from telnet\r\n")
	if got := readWS(); got != textID+" said hi from telnet" {
		t.Errorf("WebSocket client got %q", got)
	}
	ws.WriteMessage(websocket.TextMessage, []byte("hi from the browser"))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("text client: %v", err)
		}
		if strings.TrimSpace(line) == wsID+" said hi from the browser" {
			break
		}
	}
}

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "Test Root")
	// A leaf as a public CA issues it: from an intermediate, in the file
	// with its chain, months to go (anything else draws a warning).
	leaf := ca.Intermediate(t, "Test Intermediate").Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.example.com"}, NotAfter: time.Now().AddDate(0, 3, 0)})
	certFile, keyFile := leaf.WriteFiles(t, dir)
	other := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.example.com"}})
	_, otherKey := other.WriteFiles(t, t.TempDir())

	good := writeFile(t, dir, "good.yaml", fmt.Sprintf("sites:\n  - hosts: [chat.example.com]\n    tls: {cert_file: %q, key_file: %q}\n    routes: [{path: /wss, upstreams: [\"ws://127.0.0.1:8282\"]}]\n", certFile, keyFile))
	broken := writeFile(t, dir, "broken.yaml", "listen:\n  https: 443\n  htps: \":80\"\nsites:\n  - hosts: [chat.example.com]\n    tls: {internal: true}\n    routes:\n      - path: wss\n        upstreams: [\"ws://127.0.0.1:8282\"]\n")
	mismatch := writeFile(t, dir, "mismatch.yaml", fmt.Sprintf("sites:\n  - hosts: [chat.example.com]\n    tls:\n      cert_file: %q\n      key_file: %q\n    routes: [{path: /, root: .}]\n", certFile, otherKey))
	missing := writeFile(t, dir, "missing.yaml", "sites:\n  - hosts: [chat.example.com]\n    tls:\n      cert_file: /nonexistent/chat.pem\n      key_file: /nonexistent/chat.key\n    routes: [{path: /, root: .}]\n")

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []*regexp.Regexp // each matches one stdout+stderr line, in order
	}{
		{"good", []string{"validate", "-config", good}, 0, []*regexp.Regexp{regexp.MustCompile(`good\.yaml: ok \(1 sites, 1 routes\)`)}},
		{"broken: every problem with its line", []string{"validate", "-config", broken}, 1, []*regexp.Regexp{
			regexp.MustCompile(`^.*broken\.yaml:3: listen\.htps: unknown key "htps"$`),
		}},
		{"key does not match certificate", []string{"validate", "-config", mismatch}, 1, []*regexp.Regexp{
			regexp.MustCompile(`^.*mismatch\.yaml:\d+: sites\[0\]\.tls\.(cert|key)_file: .*`),
		}},
		{"missing certificate file", []string{"validate", "-config", missing}, 1, []*regexp.Regexp{
			regexp.MustCompile(`^.*missing\.yaml:4: sites\[0\]\.tls\.cert_file: .*/nonexistent/chat\.pem.*`),
		}},
		{"unknown command", []string{"frobnicate"}, 2, nil},
		{"version", []string{"version"}, 0, []*regexp.Regexp{regexp.MustCompile(`^(devel|v\S+)$`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code := run(context.Background(), tt.args, &out, &out)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d; output:\n%s", code, tt.wantCode, out.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			for i, re := range tt.wantOut {
				if i >= len(lines) || !re.MatchString(lines[i]) {
					t.Errorf("output line %d does not match %s; output:\n%s", i, re, out.String())
				}
			}
		})
	}

	// Problems are reported in one pass, each on its own line: the unknown
	// key, and schema problems elsewhere (those in the same mapping as
	// the unknown key wait for it to be fixed; see config.Parse).
	var out bytes.Buffer
	run(context.Background(), []string{"validate", "-config", broken}, &out, &out)
	for _, want := range []string{
		"broken.yaml:3: listen.htps: unknown key \"htps\"",
		"broken.yaml:8: sites[0].routes[0].path: must start with /",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestExampleConfigValidates checks that config.example.yaml passes
// `wssgate validate` once its certificate paths exist.
func TestExampleConfigValidates(t *testing.T) {
	example, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := testutil.NewCA(t, "Test Root")
	text := string(example)
	// Give every certificate the example names a real file.
	for _, m := range regexp.MustCompile(`cert_file: (\S+), key_file: (\S+) }`).FindAllStringSubmatch(text, -1) {
		leaf := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.example.com", "www.example.com", "example.com", "api.example.com"}})
		c, k := leaf.WriteFiles(t, t.TempDir())
		text = strings.ReplaceAll(text, m[1], c)
		text = strings.ReplaceAll(text, m[2], k)
	}
	text = strings.ReplaceAll(text, "./public", dir)
	// And the gateway's secrets.
	text = strings.ReplaceAll(text, "/etc/wssgate/webhook.secret", writeFile(t, dir, "webhook.secret", "s3cret\n"))
	t.Setenv("WSSGATE_PUSH_SECRET", "push-secret")
	f := writeFile(t, dir, "config.yaml", text)
	var out bytes.Buffer
	if code := run(context.Background(), []string{"validate", "-config", f}, &out, &out); code != 0 {
		t.Fatalf("config.example.yaml does not validate (exit %d):\n%s", code, out.String())
	}
}

func TestStartFailures(t *testing.T) {
	busy := testutil.Listen(t)
	dir := t.TempDir()
	ca := testutil.NewCA(t, "Test Root")
	certFile, keyFile := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"a.example"}}).WriteFiles(t, dir)
	_, otherKey := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"a.example"}}).WriteFiles(t, t.TempDir())
	unreadable := writeFile(t, dir, "unreadable.key", "not a key")

	tests := []struct {
		name string
		cfg  string
		want string
	}{
		{"port taken", fmt.Sprintf("listen: {https: %q, http: \"\"}\nsites: [{hosts: [a.example], tls: {cert_file: %q, key_file: %q}, routes: [{path: /, root: .}]}]\n", busy.Addr(), certFile, keyFile), "listen.https: "},
		{"key not matching", fmt.Sprintf("listen: {https: \"127.0.0.1:0\", http: \"\"}\nsites: [{hosts: [a.example], tls: {cert_file: %q, key_file: %q}, routes: [{path: /, root: .}]}]\n", certFile, otherKey), "sites[0].tls."},
		{"unreadable key", fmt.Sprintf("listen: {https: \"127.0.0.1:0\", http: \"\"}\nsites: [{hosts: [a.example], tls: {cert_file: %q, key_file: %q}, routes: [{path: /, root: .}]}]\n", certFile, unreadable), "sites[0].tls."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, t.TempDir(), "config.yaml", tt.cfg)
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code := run(ctx, []string{"run", "-config", f}, &stdout, &stderr)
			if code == 0 {
				t.Fatalf("run succeeded, want a failure")
			}
			msg := strings.TrimSpace(stderr.String())
			if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "wssgate: ") || !strings.Contains(msg, tt.want) {
				t.Errorf("stderr = %q, want one line starting \"wssgate: \" containing %q", msg, tt.want)
			}
		})
	}
}

func TestRedirect(t *testing.T) {
	tests := []struct {
		httpsAddr, method, target, host string
		wantCode                        int
		wantLoc                         string
	}{
		{"127.0.0.1:443", "GET", "/wss?x=1", "chat.example.com", 301, "https://chat.example.com/wss?x=1"},
		{"127.0.0.1:8443", "GET", "/", "chat.example.com:8080", 301, "https://chat.example.com:8443/"},
		{"127.0.0.1:443", "POST", "/api", "chat.example.com", 308, "https://chat.example.com/api"},
	}
	for _, tt := range tests {
		addr, _ := net.ResolveTCPAddr("tcp", tt.httpsAddr)
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(tt.method, tt.target, nil)
		req.Host = tt.host
		redirectHandler(addr).ServeHTTP(rec, req)
		if rec.Code != tt.wantCode || rec.Header().Get("Location") != tt.wantLoc {
			t.Errorf("%s %s (Host %s) = %d %q, want %d %q", tt.method, tt.target, tt.host, rec.Code, rec.Header().Get("Location"), tt.wantCode, tt.wantLoc)
		}
	}
}

// TestExampleProgramConfigs checks the configurations shipped beside the
// example programs.
func TestExampleProgramConfigs(t *testing.T) {
	files, err := filepath.Glob("../../examples/*/config.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configurations found (%v)", err)
	}
	t.Setenv("WSSGATE_PUSH_SECRET", "change-me") // examples/push/config.yaml reads it
	for _, f := range files {
		var out bytes.Buffer
		if code := run(context.Background(), []string{"validate", "-config", f}, &out, &out); code != 0 {
			t.Errorf("%s does not validate (exit %d):\n%s", f, code, out.String())
		}
	}
}

func TestSetMaxConnections(t *testing.T) {
	tests := []struct {
		configured int
		limit      uint64
		want       int
		warn       bool
	}{
		{0, 20000, 9950, false},
		{0, 0, 10000, false}, // limit unknown
		{0, 1 << 40, 1 << 30, false},
		{500, 20000, 500, false},
		{15000, 20000, 15000, true},
	}
	for _, tt := range tests {
		cfg := config.Default()
		cfg.Limits.MaxConnections = tt.configured
		var logs bytes.Buffer
		setMaxConnections(&cfg, tt.limit, slog.New(slog.NewTextHandler(&logs, nil)))
		if cfg.Limits.MaxConnections != tt.want {
			t.Errorf("configured %d, open-file limit %d: got max_connections %d, want %d", tt.configured, tt.limit, cfg.Limits.MaxConnections, tt.want)
		}
		if warned := strings.Contains(logs.String(), "level=WARN"); warned != tt.warn {
			t.Errorf("configured %d, open-file limit %d: warned %v, want %v", tt.configured, tt.limit, warned, tt.warn)
		}
	}
}

// localRoots is a pool with only the local CA that srv's internal
// certificates come from.
func localRoots(t *testing.T, srv *server) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(srv.certs.RootCertFile())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", srv.certs.RootCertFile())
	}
	return roots
}
