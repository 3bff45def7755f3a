package tlsconf_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/testutil"
	"github.com/wssgate/wssgate/tlsconf"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// handshakeTimeout bounds every test handshake, both sides.
const handshakeTimeout = 10 * time.Second

// newConfig returns a configuration with the given sites.
func newConfig(minVersion string, sites ...config.Site) *config.Config {
	return &config.Config{TLS: config.TLS{MinVersion: minVersion}, Sites: sites}
}

// fileSite writes leaf to a temporary directory and returns a site for
// hosts that serves it from there.
func fileSite(t testing.TB, leaf *testutil.Leaf, hosts ...string) config.Site {
	t.Helper()
	certFile, keyFile := leaf.WriteFiles(t, t.TempDir())
	return config.Site{Hosts: hosts, TLS: config.SiteTLS{CertFile: certFile, KeyFile: keyFile}}
}

// newManager is tlsconf.New with a test logger and, unless set, a
// temporary InternalDir; it fails the test on error.
func newManager(t testing.TB, cfg *config.Config, opts tlsconf.Options) *tlsconf.Manager {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(t)
	}
	if opts.InternalDir == "" {
		opts.InternalDir = t.TempDir()
	}
	m, err := tlsconf.New(cfg, opts)
	if err != nil {
		t.Fatalf("New: got %v, want nil", err)
	}
	return m
}

// serve runs a TLS server with cfg on a loopback port until the test
// ends. Each connection is handshaken and closed. It returns the address.
func serve(t testing.TB, cfg *tls.Config) string {
	t.Helper()
	return serveOn(t, testutil.Listen(t), cfg)
}

// serveOn is serve on a listener the test opened.
func serveOn(t testing.TB, raw net.Listener, cfg *tls.Config) string {
	t.Helper()
	ln := tls.NewListener(raw, cfg)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // listener closed
			}
			wg.Go(func() {
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
				defer cancel()
				c.(*tls.Conn).HandshakeContext(ctx) // the client reports failures
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// handshake connects to addr as a TLS client with cfg and returns the
// connection state. An empty cfg.ServerName sends no SNI. It is safe to
// call from any goroutine.
func handshake(t testing.TB, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, handshakeTimeout)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	c := tls.Client(raw, cfg)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		return tls.ConnectionState{}, err
	}
	return c.ConnectionState(), nil
}

// logBuffer returns a logger writing text records into the returned
// buffer. Read the buffer only once the code under test has returned.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// versionName names a TLS version for test names.
func versionName(v uint16) string { return tls.VersionName(v) }
