package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wssgate/wssgate/cmd/wssgate/internal/server"
	"github.com/wssgate/wssgate/cmd/wssgate/internal/server/servertest"
	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/testutil"
)

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
	srv := servertest.Serve(t, defaultOnFreePorts(t), server.Options{})
	var out bytes.Buffer
	announce(&out, srv.Server)
	if !strings.Contains(out.String(), "https://localhost:") || !strings.Contains(out.String(), "local certificate authority") {
		t.Errorf("announcement lacks the URL or the local CA:\n%s", out.String())
	}

	// Trust only the local CA the announcement named.
	roots := srv.Roots()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + srv.Addr(config.ListenerHTTPS) + "/")
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
	ws, _, err := d.Dial("wss://"+srv.Addr(config.ListenerHTTPS)+"/wss", http.Header{"Origin": {"https://localhost:8443"}})
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
	tc, err := net.Dial("tcp", srv.Addr(config.ListenerGatewayText))
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

	good := servertest.WriteFile(t, dir, "good.yaml", fmt.Sprintf("sites:\n  - hosts: [chat.example.com]\n    tls: {cert_file: %q, key_file: %q}\n    routes: [{path: /wss, upstreams: [\"ws://127.0.0.1:8282\"]}]\n", certFile, keyFile))
	broken := servertest.WriteFile(t, dir, "broken.yaml", "listen:\n  https: 443\n  htps: \":80\"\nsites:\n  - hosts: [chat.example.com]\n    tls: {internal: true}\n    routes:\n      - path: wss\n        upstreams: [\"ws://127.0.0.1:8282\"]\n")
	mismatch := servertest.WriteFile(t, dir, "mismatch.yaml", fmt.Sprintf("sites:\n  - hosts: [chat.example.com]\n    tls:\n      cert_file: %q\n      key_file: %q\n    routes: [{path: /, root: .}]\n", certFile, otherKey))
	missing := servertest.WriteFile(t, dir, "missing.yaml", "sites:\n  - hosts: [chat.example.com]\n    tls:\n      cert_file: /nonexistent/chat.pem\n      key_file: /nonexistent/chat.key\n    routes: [{path: /, root: .}]\n")

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
	text = strings.ReplaceAll(text, "/etc/wssgate/webhook.secret", servertest.WriteFile(t, dir, "webhook.secret", "s3cret\n"))
	t.Setenv("WSSGATE_PUSH_SECRET", "push-secret")
	f := servertest.WriteFile(t, dir, "config.yaml", text)
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
	unreadable := servertest.WriteFile(t, dir, "unreadable.key", "not a key")

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
			f := servertest.WriteFile(t, t.TempDir(), "config.yaml", tt.cfg)
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

// TestExampleProgramConfigs checks the configurations shipped beside the
// example programs.
func TestExampleProgramConfigs(t *testing.T) {
	files, err := filepath.Glob("../../examples/*/config.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configurations found (%v)", err)
	}
	t.Setenv("WSSGATE_PUSH_SECRET", "change-me")  // examples/push/config.yaml reads it
	t.Setenv("GATEWAYWORKER_SECRET", "change-me") // examples/gatewayworker/config.yaml reads it
	for _, f := range files {
		var out bytes.Buffer
		if code := run(context.Background(), []string{"validate", "-config", f}, &out, &out); code != 0 {
			t.Errorf("%s does not validate (exit %d):\n%s", f, code, out.String())
		}
	}
}
