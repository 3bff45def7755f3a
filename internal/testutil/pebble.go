package testutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PebbleOptions configure [StartPebble].
type PebbleOptions struct {
	// HTTPPort and TLSPort are where pebble's validation connects for
	// http-01 and tls-alpn-01: the test's http and https listeners. Every
	// name resolves to 127.0.0.1. Zero means a closed port, which makes
	// that challenge fail.
	HTTPPort, TLSPort int
	// EABKeys, when set, makes External Account Binding mandatory and
	// lists the accepted key IDs with their base64url HMAC keys.
	EABKeys map[string]string
	// Validity is the lifetime of issued certificates; zero means pebble's
	// default (five years).
	Validity time.Duration
}

// Pebble is a running pebble ACME server (Let's Encrypt's test CA) with
// pebble-challtestsrv as its DNS server, on loopback.
type Pebble struct {
	// DirectoryURL is the ACME directory.
	DirectoryURL string
	// CAFile is a PEM file with the root of pebble's own HTTPS
	// certificate: what an ACME client must trust to talk to it.
	CAFile string

	mgmt   string
	client *http.Client
	log    *LockedBuffer
	stop   func()
}

// StartPebble starts pebble-challtestsrv and pebble (Debian's pebble
// package) on free loopback ports and waits until the ACME directory
// answers. Both are stopped when the test ends, or earlier by
// [Pebble.Stop]. Without the programs the test is skipped, but fails
// when the environment has CI=true: CI must have them.
func StartPebble(t testing.TB, o PebbleOptions) *Pebble {
	t.Helper()
	bins := map[string]string{}
	for _, name := range []string{"pebble", "pebble-challtestsrv"} {
		p, err := exec.LookPath(name)
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("testutil: %s not found (CI must install Debian's pebble package): %v", name, err)
			}
			t.Skipf("testutil: %s not found; install Debian's pebble package to run this test", name)
		}
		bins[name] = p
	}
	dir := t.TempDir()
	ca := NewCA(t, "pebble listener CA")
	leaf := ca.Leaf(t, LeafOptions{Hosts: []string{"localhost", "127.0.0.1"}, NotAfter: time.Now().Add(24 * time.Hour)})
	certFile, keyFile := leaf.WriteFiles(t, dir)
	caFile := filepath.Join(dir, "pebble-ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatalf("testutil: %v", err)
	}
	dns := FreeAddr(t)
	listen, mgmt := FreeAddr(t), FreeAddr(t)
	closed := func(port int) int {
		if port != 0 {
			return port
		}
		var p int
		fmt.Sscanf(FreeAddr(t)[len("127.0.0.1:"):], "%d", &p)
		return p
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        mgmt,
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       closed(o.HTTPPort),
		"tlsPort":                        closed(o.TLSPort),
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": len(o.EABKeys) > 0,
		"externalAccountMACKeys":         o.EABKeys,
		"certificateValidityPeriod":      int(o.Validity / time.Second),
	}}
	data, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, data, 0o600); err != nil {
		t.Fatalf("testutil: %v", err)
	}

	p := &Pebble{
		DirectoryURL: "https://" + listen + "/dir",
		CAFile:       caFile,
		mgmt:         "https://" + mgmt,
		log:          &LockedBuffer{},
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.X509)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	p.client = &http.Client{Transport: tr, Timeout: 5 * time.Second}

	dnsCmd := exec.Command(bins["pebble-challtestsrv"], "-dns01", dns, "-http01", "", "-https01", "", "-tlsalpn01", "",
		"-management", FreeAddr(t), "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	dnsCmd.Stdout, dnsCmd.Stderr = Writer(t), Writer(t)
	pebCmd := exec.Command(bins["pebble"], "-config", cfgFile, "-dnsserver", dns, "-strict=false")
	pebCmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	pebCmd.Stdout = io.MultiWriter(p.log, Writer(t))
	pebCmd.Stderr = pebCmd.Stdout
	var stops []func()
	for _, c := range []*exec.Cmd{dnsCmd, pebCmd} {
		if err := c.Start(); err != nil {
			for _, s := range stops {
				s()
			}
			t.Fatalf("testutil: start %s: %v", c.Path, err)
		}
		stops = append(stops, stopper(c))
	}
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			for i := len(stops) - 1; i >= 0; i-- {
				stops[i]()
			}
			tr.CloseIdleConnections()
		})
	}
	t.Cleanup(p.stop)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		resp, err := p.get(ctx, p.DirectoryURL)
		if err == nil && resp.StatusCode == http.StatusOK {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("testutil: pebble directory %s not answering: %v", p.DirectoryURL, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// stopper returns a function that ends the process c started, by its PID,
// and waits for it.
func stopper(c *exec.Cmd) func() {
	done := make(chan struct{})
	go func() {
		_ = c.Wait()
		close(done)
	}()
	return func() {
		_ = c.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
	}
}

func (p *Pebble) get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp, err
}

// Roots returns a pool with only pebble's issuing root, which changes on
// every start: what a client of the certificates pebble issues trusts.
func (p *Pebble) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	resp, err := p.get(context.Background(), p.mgmt+"/roots/0")
	if err != nil {
		t.Fatalf("testutil: pebble root: %v", err)
	}
	pemData, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatalf("testutil: pebble root: no certificate in %q", pemData)
	}
	return pool
}

// Issued returns how many certificates pebble has issued, from its log.
func (p *Pebble) Issued() int { return strings.Count(p.log.String(), "Issued certificate serial") }

// Log returns what pebble has logged so far.
func (p *Pebble) Log() string { return p.log.String() }

// Stop ends pebble and its DNS server now (the CA goes away).
func (p *Pebble) Stop() { p.stop() }
