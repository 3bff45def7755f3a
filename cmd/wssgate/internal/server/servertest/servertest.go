// Package servertest runs a [server.Server] in a test: on loopback, with
// the test's logger, a fresh local CA, the admin listener on a free
// port, and a graceful stop when the test ends. It is for _test.go files
// only.
//
// Like internal/testutil, every helper takes a testing.TB, calls
// t.Helper, fails the test with t.Fatal on error and releases what it
// opened with t.Cleanup.
package servertest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wssgate/wssgate/cmd/wssgate/internal/server"
	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/testutil"
)

// stopWait bounds how long Stop waits for Run to return.
const stopWait = 15 * time.Second

// Server is a server.Server under test.
type Server struct {
	*server.Server
	// Stop stops the server gracefully and returns Run's error; later
	// calls return nil. The test's end calls it too.
	Stop func() error
	t    testing.TB
}

// Serve starts and runs cfg until Stop. It fills in opts.Logger and
// opts.AccessLog (the test's log) and opts.InternalDir (a temporary
// directory), and moves the admin listener off its default port, which
// a running wssgate or another test may hold, to a free one.
func Serve(t testing.TB, cfg *config.Config, opts server.Options) *Server {
	t.Helper()
	opts.Logger, opts.InternalDir = testutil.Logger(t), t.TempDir()
	if opts.AccessLog == nil {
		opts.AccessLog = testutil.Logger(t)
	}
	freeAdmin(cfg)
	srv, err := server.New(cfg, opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(stopWait):
			return fmt.Errorf("Run did not return %s after its context ended", stopWait)
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return &Server{Server: srv, Stop: stop, t: t}
}

// ServeFile writes cfgText to a config.yaml of its own and serves it as
// Serve does, with opts.Load (when nil) reading the file again, so that
// the test can rewrite it and reload. It returns the file's path.
func ServeFile(t testing.TB, cfgText string, opts server.Options) (*Server, string) {
	t.Helper()
	path := WriteFile(t, t.TempDir(), "config.yaml", cfgText)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if opts.Load == nil {
		opts.Load = func() (*config.Config, error) {
			cfg, err := config.Load(path)
			if err == nil {
				freeAdmin(cfg)
			}
			return cfg, err
		}
	}
	return Serve(t, cfg, opts), path
}

// freeAdmin moves the admin listener from its default port to a free
// one.
func freeAdmin(cfg *config.Config) {
	if cfg.Admin.Listen == config.Default().Admin.Listen {
		cfg.Admin.Listen = "127.0.0.1:0"
	}
}

// WriteFile writes content to dir/name and returns the path.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Roots is a pool with only the local CA that the server's internal
// certificates come from.
func (s *Server) Roots() *x509.CertPool {
	s.t.Helper()
	file := s.RootCertFile()
	pem, err := os.ReadFile(file)
	if err != nil {
		s.t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		s.t.Fatalf("no certificate in %s", file)
	}
	return roots
}

// Client is an HTTPS client that trusts the server's local CA and opens
// a new connection for each request.
func (s *Server) Client() *http.Client {
	s.t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Roots()}, DisableKeepAlives: true}
	s.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// URL is "https://localhost:port" + path on the server's https listener.
func (s *Server) URL(path string) string {
	_, port, _ := net.SplitHostPort(s.Addr(config.ListenerHTTPS))
	return "https://localhost:" + port + path
}

// Body GETs url with c and returns the response body.
func Body(t testing.TB, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return string(b)
}

// BearerGet GETs url with "Authorization: Bearer token" and returns the
// status code.
func BearerGet(t testing.TB, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
