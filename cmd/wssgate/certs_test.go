package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wssgate/wssgate/internal/testutil"
)

// wssDial opens wss://host/wss through the edge at addr, trusting roots,
// and returns the connection and the leaf the edge served.
func wssDial(t *testing.T, addr, host string, roots *x509.CertPool) (*websocket.Conn, *x509.Certificate) {
	t.Helper()
	var leaf *x509.Certificate
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{
			RootCAs:    roots,
			ServerName: host,
			MinVersion: tls.VersionTLS12,
			VerifyConnection: func(cs tls.ConnectionState) error {
				leaf = cs.PeerCertificates[0]
				return nil
			},
		},
		HandshakeTimeout: 5 * time.Second,
	}
	c, _, err := d.Dial("wss://"+host+"/wss", nil)
	if err != nil {
		t.Fatalf("dial wss://%s/wss through %s: %v", host, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, leaf
}

// echo sends msg on c and checks that it comes back.
func echo(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	if _, got, err := c.ReadMessage(); err != nil || string(got) != msg {
		t.Fatalf("echo of %q: got %q, %v", msg, got, err)
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscanf(p, "%d", &n)
	return n
}

// TestACMEHTTP01EndToEnd runs the edge with an ACME site against pebble,
// whose tls-alpn-01 port is closed, so the certificate is validated by
// http-01 through the plain listener's handler. A wss client that trusts
// only pebble's root then talks through the edge to an echo gateway, and
// other plain requests are still redirected.
func TestACMEHTTP01EndToEnd(t *testing.T) {
	const host = "chat.wssgate.test"
	httpsAddr, httpAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	peb := testutil.StartPebble(t, testutil.PebbleOptions{HTTPPort: port(t, httpAddr)})
	backend := echoBackend(t)
	srv, _ := startServerWith(t, fmt.Sprintf(`
listen: { https: %q, http: %q }
shutdown_timeout: 5s
tls:
  acme: { directory_url: %q, ca_root: %q, cache_dir: %q, email: admin@wssgate.test }
sites:
  - hosts: [%s]
    tls: { acme: true }
    routes:
      - { path: /wss, upstreams: ["ws://%s"] }
`, httpsAddr, httpAddr, peb.DirectoryURL, peb.CAFile, t.TempDir(), host, backend.Listener.Addr()),
		serverOptions{ACMEPoll: 20 * time.Millisecond})

	start := time.Now()
	for srv.certs.Certificates()[0].Serial == "" {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("no certificate after 20 s: %+v\npebble:\n%s", srv.certs.Certificates()[0], peb.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("certificate obtained by http-01 in %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(peb.Log(), "Attempting to validate w/ HTTP: http://"+host+":") {
		t.Errorf("pebble did not validate by http-01:\n%s", peb.Log())
	}

	c, leaf := wssDial(t, httpsAddr, host, peb.Roots(t))
	if got := leaf.SerialNumber.Text(16); got != srv.certs.Certificates()[0].Serial {
		t.Errorf("served serial %s, want %s", got, srv.certs.Certificates()[0].Serial)
	}
	for i := range 3 {
		echo(t, c, fmt.Sprintf("message %d", i))
	}

	// Not a challenge: redirected as before.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/wss?x=1", nil)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://" + host + ":" + fmt.Sprint(port(t, httpsAddr)) + "/wss?x=1"; resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Errorf("GET /wss on the http listener = %d %q, want 301 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	// A challenge path for a name outside the configuration is refused.
	req, _ = http.NewRequest(http.MethodGet, "http://"+httpAddr+"/.well-known/acme-challenge/x", nil)
	req.Host = "evil.wssgate.test"
	if resp, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("challenge request for evil.wssgate.test = %d, want 403", resp.StatusCode)
	}
}

// TestCertificateFileReplaced replaces a static certificate on disk
// under the running edge: new wss connections get the new certificate,
// one opened before keeps exchanging messages, and a broken replacement
// is not served. The second half reloads by the SIGHUP channel alone.
func TestCertificateFileReplaced(t *testing.T) {
	const host = "chat.example.com"
	root := testutil.NewCA(t, "Test Root")
	inter := root.Intermediate(t, "Test Intermediate")
	a := inter.Leaf(t, testutil.LeafOptions{Hosts: []string{host}})
	b := inter.Leaf(t, testutil.LeafOptions{Hosts: []string{host}})
	certFile, keyFile := a.WriteFiles(t, t.TempDir())
	cfgText := fmt.Sprintf(`
listen: { https: "127.0.0.1:0", http: "" }
shutdown_timeout: 5s
sites:
  - hosts: [%s]
    tls: { cert_file: %q, key_file: %q }
    routes:
      - { path: /wss, upstreams: ["ws://%s"] }
`, host, certFile, keyFile, echoBackend(t).Listener.Addr())
	replace := func(l *testutil.Leaf) {
		t.Helper()
		for _, f := range []struct {
			name string
			data []byte
		}{{certFile, l.CertPEM}, {keyFile, l.KeyPEM}} {
			if err := os.WriteFile(f.name, f.data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitServed := func(addr string, want *testutil.Leaf) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, leaf := wssDial(t, addr, host, root.Pool())
			c.Close()
			if leaf.Equal(want.X509) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("new connections still get serial %x, want %x", leaf.SerialNumber, want.X509.SerialNumber)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	t.Run("watched", func(t *testing.T) {
		srv, _ := startServerWith(t, cfgText, serverOptions{CertWatch: 20 * time.Millisecond})
		addr := srv.addr("https")
		old, leaf := wssDial(t, addr, host, root.Pool())
		if !leaf.Equal(a.X509) {
			t.Fatalf("served serial %x, want a's %x", leaf.SerialNumber, a.X509.SerialNumber)
		}
		echo(t, old, "before")
		replace(b)
		waitServed(addr, b)
		echo(t, old, "after") // the open connection is untouched

		if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		waitServed(addr, b)
		echo(t, old, "still")
		replace(a) // leave the files as the next subtest expects
	})

	t.Run("SIGHUP", func(t *testing.T) {
		hup := make(chan os.Signal, 1)
		srv, _ := startServerWith(t, cfgText, serverOptions{CertWatch: time.Hour, Signals: hup})
		addr := srv.addr("https")
		waitServed(addr, a)
		replace(b)
		hup <- syscall.SIGHUP
		waitServed(addr, b)
	})
}

// TestValidateCertificates runs validate on certificates with problems
// (exit 1, FILE:LINE: key) and with warnings only (exit 0).
func TestValidateCertificates(t *testing.T) {
	root := testutil.NewCA(t, "Test Root")
	inter := root.Intermediate(t, "Test Intermediate")
	months := time.Now().AddDate(0, 3, 0)
	noChain := inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.example.com"}, NotAfter: months})
	noChain.CertPEM = noChain.CertPEM[:bytes.Index(noChain.CertPEM, []byte("-----END CERTIFICATE-----"))+len("-----END CERTIFICATE-----\n")]
	tests := []struct {
		name     string
		leaf     *testutil.Leaf
		hosts    string
		wantCode int
		want     []string
	}{
		{"expires soon", inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.example.com"}, NotAfter: time.Now().AddDate(0, 0, 5)}), "[chat.example.com]", 0,
			[]string{"c.yaml:4: sites[0].tls.cert_file: warning: the certificate in", "expires in 4 days", "c.yaml: ok (1 sites, 1 routes, 1 warnings)"}},
		{"no intermediate", noChain, "[chat.example.com]", 0,
			[]string{"c.yaml:4: sites[0].tls.cert_file: warning:", "without its intermediate", "WeChat"}},
		{"expired", inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.example.com"}, NotBefore: time.Now().AddDate(0, -2, 0), NotAfter: time.Now().AddDate(0, 0, -1)}), "[chat.example.com]", 1,
			[]string{"c.yaml:4: sites[0].tls.cert_file: the certificate in", "expired on"}},
		{"host not covered", inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.example.com"}, NotAfter: months}), "[chat.example.com, www.example.com]", 1,
			[]string{`c.yaml:2: sites[0].hosts[1]: the certificate in`, `does not cover "www.example.com"`}},
		{"weak key", inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.example.com"}, Key: "rsa1024", NotAfter: months}), "[chat.example.com]", 1,
			[]string{"c.yaml:6: sites[0].tls.key_file:", "1024-bit RSA key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := tt.leaf.WriteFiles(t, dir)
			f := writeFile(t, dir, "c.yaml", fmt.Sprintf("sites:\n  - hosts: %s\n    tls:\n      cert_file: %q\n      # the key\n      key_file: %q\n    routes: [{path: /, root: .}]\n", tt.hosts, certFile, keyFile))
			var out bytes.Buffer
			code := run(context.Background(), []string{"validate", "-config", f}, &out, &out)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; output:\n%s", code, tt.wantCode, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestCertsCommand lists a file certificate, an ACME certificate from the
// cache and an internal one not issued yet, without creating anything.
func TestCertsCommand(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("HOME", dir)
	root := testutil.NewCA(t, "Test Root")
	inter := root.Intermediate(t, "Test Intermediate")
	file := inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"file.example.com"}, NotAfter: time.Now().AddDate(0, 0, 60)})
	certFile, keyFile := file.WriteFiles(t, dir)
	// The ACME cache as autocert writes it: key, then chain, in
	// CACHE_DIR/<directory URL>/<host>.
	acmeLeaf := inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"acme.example.com"}, NotAfter: time.Now().AddDate(0, 0, 80)})
	cache := filepath.Join(dir, "acme")
	if err := os.MkdirAll(filepath.Join(cache, "ca.example-dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cache, "ca.example-dir"), "acme.example.com", string(acmeLeaf.KeyPEM)+string(acmeLeaf.CertPEM))
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
tls:
  acme: { directory_url: "https://ca.example/dir", cache_dir: %q }
sites:
  - hosts: [file.example.com]
    tls: { cert_file: %q, key_file: %q }
    routes: [{path: /, root: .}]
  - hosts: [acme.example.com, www.acme.example.com]
    tls: { acme: true }
    routes: [{path: /, root: .}]
  - hosts: [localhost]
    tls: { internal: true }
    routes: [{path: /, root: .}]
`, cache, certFile, keyFile))
	var out bytes.Buffer
	if code := run(context.Background(), []string{"certs", "-config", cfg}, &out, &out); code != 0 {
		t.Fatalf("certs: exit %d:\n%s", code, out.String())
	}
	t.Logf("output:\n%s", out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := [][]string{
		{"SITE", "HOSTS", "SOURCE", "NOT AFTER", "ISSUER", "FILE"},
		{"0", "file.example.com", "file", "(59d)", "CN=Test Intermediate", certFile},
		{"1", "acme.example.com", "acme", "(79d)", "CN=Test Intermediate", filepath.Join(cache, "ca.example-dir", "acme.example.com")},
		{"1", "www.acme.example.com", "acme", "none: not obtained yet", "-"},
		{"2", "localhost", "internal", "none: not issued yet"},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d", len(lines), len(want))
	}
	for i, w := range want {
		for _, part := range w {
			if !strings.Contains(lines[i], part) {
				t.Errorf("line %d %q lacks %q", i, lines[i], part)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "config")); err == nil {
		t.Errorf("certs created %s", filepath.Join(dir, "config"))
	}
}
