package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wssgate/wssgate/cmd/wssgate/internal/server"
	"github.com/wssgate/wssgate/cmd/wssgate/internal/server/servertest"
	"github.com/wssgate/wssgate/config"
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
	backend := testutil.EchoServer(t)
	srv, _ := servertest.ServeFile(t, fmt.Sprintf(`
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
		server.Options{ACMEPoll: 20 * time.Millisecond})

	start := time.Now()
	for srv.Certificates()[0].Serial == "" {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("no certificate after 20 s: %+v\npebble:\n%s", srv.Certificates()[0], peb.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("certificate obtained by http-01 in %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(peb.Log(), "Attempting to validate w/ HTTP: http://"+host+":") {
		t.Errorf("pebble did not validate by http-01:\n%s", peb.Log())
	}

	c, leaf := wssDial(t, httpsAddr, host, peb.Roots(t))
	if got := leaf.SerialNumber.Text(16); got != srv.Certificates()[0].Serial {
		t.Errorf("served serial %s, want %s", got, srv.Certificates()[0].Serial)
	}
	for i := range 3 {
		testutil.EchoRoundTrip(t, c, websocket.TextMessage, []byte(fmt.Sprintf("message %d", i)))
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
`, host, certFile, keyFile, testutil.EchoServer(t).Listener.Addr())
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
		srv, _ := servertest.ServeFile(t, cfgText, server.Options{CertWatch: 20 * time.Millisecond})
		addr := srv.Addr(config.ListenerHTTPS)
		old, leaf := wssDial(t, addr, host, root.Pool())
		if !leaf.Equal(a.X509) {
			t.Fatalf("served serial %x, want a's %x", leaf.SerialNumber, a.X509.SerialNumber)
		}
		testutil.EchoRoundTrip(t, old, websocket.TextMessage, []byte("before"))
		replace(b)
		waitServed(addr, b)
		testutil.EchoRoundTrip(t, old, websocket.TextMessage, []byte("after")) // the open connection is untouched

		if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		waitServed(addr, b)
		testutil.EchoRoundTrip(t, old, websocket.TextMessage, []byte("still"))
		replace(a) // leave the files as the next subtest expects
	})

	t.Run("SIGHUP", func(t *testing.T) {
		hup := make(chan os.Signal, 1)
		srv, _ := servertest.ServeFile(t, cfgText, server.Options{CertWatch: time.Hour, Signals: hup})
		addr := srv.Addr(config.ListenerHTTPS)
		waitServed(addr, a)
		replace(b)
		hup <- syscall.SIGHUP
		waitServed(addr, b)
	})
}
