package tlsconf_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/testutil"
	"github.com/wssgate/wssgate/tlsconf"
)

// acmePoll is the Run loop's poll interval in these tests.
const acmePoll = 20 * time.Millisecond

// acmeConfig is a configuration whose sites[0] gets its certificate for
// hosts from peb, cached in cacheDir.
func acmeConfig(peb *testutil.Pebble, cacheDir string, hosts ...string) *config.Config {
	cfg := newConfig("1.2", config.Site{Hosts: hosts, TLS: config.SiteTLS{ACME: true}})
	cfg.TLS.ACME = config.ACME{DirectoryURL: peb.DirectoryURL, CARoot: peb.CAFile, CacheDir: cacheDir, Email: "admin@wssgate.test"}
	return cfg
}

// run runs m until the test ends, or until the returned stop is called.
func run(t testing.TB, m *tlsconf.Manager) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return 10 s after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitCert waits until m serves a certificate for host and returns it.
func waitCert(t testing.TB, m *tlsconf.Manager, host string) tlsconf.CertInfo {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var last tlsconf.CertInfo
		for _, ci := range m.Certificates() {
			if len(ci.Hosts) > 0 && ci.Hosts[0] == host {
				last = ci
				if ci.Serial != "" {
					return ci
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate for %s after 20 s; last state %+v", host, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// servedSerial handshakes with addr for name, trusting roots, and returns
// the serial of the leaf served.
func servedSerial(t testing.TB, addr, name string, cfg *tls.Config) (string, error) {
	t.Helper()
	cfg = cfg.Clone()
	cfg.ServerName = name
	st, err := handshake(t, addr, cfg)
	if err != nil {
		return "", err
	}
	return st.PeerCertificates[0].SerialNumber.Text(16), nil
}

// TestACMETLSALPN obtains a certificate from pebble by tls-alpn-01 and
// follows it through what must not cause an order: a handshake for a
// name outside the configuration, a restart with the cache, and a
// restart while the CA is down.
func TestACMETLSALPN(t *testing.T) {
	const host = "chat.wssgate.test"
	ln := testutil.Listen(t)
	peb := testutil.StartPebble(t, testutil.PebbleOptions{TLSPort: ln.Addr().(*net.TCPAddr).Port})
	cacheDir := t.TempDir()
	cfg := acmeConfig(peb, cacheDir, host)
	log, logs := syncLog()
	m := newManager(t, cfg, tlsconf.Options{Logger: log, ACMEPollInterval: acmePoll})
	if got := m.TLSConfig().NextProtos; !strings.Contains(strings.Join(got, ","), "acme-tls/1") {
		t.Fatalf("NextProtos = %q, want acme-tls/1 among them", got)
	}
	addr := serveOn(t, ln, m.TLSConfig())
	stop := run(t, m)
	trust := &tls.Config{RootCAs: peb.Roots(t)}

	start := time.Now()
	info := waitCert(t, m, host)
	t.Logf("certificate obtained in %v", time.Since(start).Round(time.Millisecond))
	serial, err := servedSerial(t, addr, host, trust)
	if err != nil {
		t.Fatalf("handshake trusting only pebble's root: %v", err)
	}
	if serial != info.Serial || info.Source != tlsconf.SourceACME || !strings.Contains(info.Issuer, "Pebble") {
		t.Errorf("served serial %s, Certificates says %+v; want the same serial, source acme, a Pebble issuer", serial, info)
	}
	if got := peb.Issued(); got != 1 {
		t.Errorf("pebble issued %d certificates, want 1", got)
	}
	// HTTPHandler was never called and pebble's http-01 port is closed:
	// the validation was tls-alpn-01 on ln.

	t.Run("name outside the configuration", func(t *testing.T) {
		// Served the first site's certificate (so verification fails),
		// and a challenge handshake for it gets nothing.
		if _, err := servedSerial(t, addr, "evil.wssgate.test", trust); err == nil {
			t.Errorf("handshake for evil.wssgate.test verified, want a name mismatch")
		}
		if _, err := servedSerial(t, addr, "evil.wssgate.test", &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"acme-tls/1"}}); err == nil {
			t.Errorf("tls-alpn-01 handshake for evil.wssgate.test succeeded, want a failure")
		}
		time.Sleep(5 * acmePoll)
		if got := peb.Issued(); got != 1 || strings.Contains(peb.Log(), "evil") {
			t.Errorf("pebble issued %d certificates (want 1) or saw evil.wssgate.test:\n%s", got, peb.Log())
		}
	})

	t.Run("restart uses the cache", func(t *testing.T) {
		stop()
		m2 := newManager(t, cfg, tlsconf.Options{Logger: testutil.Logger(t), ACMEPollInterval: acmePoll})
		if got := m2.Certificates()[0].Serial; got != info.Serial {
			t.Errorf("after New: serial %q, want the cached %s", got, info.Serial)
		}
		addr2 := serve(t, m2.TLSConfig())
		stop2 := run(t, m2)
		time.Sleep(5 * acmePoll)
		stop2()
		if serial, err := servedSerial(t, addr2, host, trust); err != nil || serial != info.Serial {
			t.Errorf("served serial %s (%v), want the cached %s", serial, err, info.Serial)
		}
		if got := peb.Issued(); got != 1 {
			t.Errorf("pebble issued %d certificates, want still 1", got)
		}
	})

	t.Run("CA down", func(t *testing.T) {
		peb.Stop()
		m3 := newManager(t, cfg, tlsconf.Options{Logger: testutil.Logger(t), ACMEPollInterval: acmePoll})
		addr3 := serve(t, m3.TLSConfig())
		run(t, m3)
		time.Sleep(5 * acmePoll)
		if serial, err := servedSerial(t, addr3, host, trust); err != nil || serial != info.Serial {
			t.Errorf("with the CA down: served serial %s (%v), want the cached %s", serial, err, info.Serial)
		}
	})
	if t.Failed() {
		t.Logf("manager log:\n%s", logs())
	}
}

// TestACMEFailedOrder makes pebble refuse the account (External Account
// Binding required, none given): the order fails, the CA's reason is
// logged once, the handshake fails, and no retry follows within the
// backoff. With the binding configured the same CA issues.
func TestACMEFailedOrder(t *testing.T) {
	const host = "eab.wssgate.test"
	ln := testutil.Listen(t)
	peb := testutil.StartPebble(t, testutil.PebbleOptions{
		TLSPort: ln.Addr().(*net.TCPAddr).Port,
		EABKeys: map[string]string{"kid-1": "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"},
	})
	log, logs := syncLog()
	m := newManager(t, acmeConfig(peb, t.TempDir(), host), tlsconf.Options{Logger: log, ACMEPollInterval: acmePoll})
	addr := serveOn(t, ln, m.TLSConfig())
	stop := run(t, m)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(m.Certificates()[0].Problem, "last order failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no failed order after 10 s: %+v", m.Certificates()[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 5 {
		if _, err := servedSerial(t, addr, host, &tls.Config{InsecureSkipVerify: true}); err == nil {
			t.Errorf("handshake without a certificate succeeded")
		}
	}
	time.Sleep(10 * acmePoll) // ten polls: all within the backoff
	stop()
	out := logs()
	if n := strings.Count(out, "ACME order failed"); n != 1 {
		t.Errorf("logged %d failed orders, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "ca_error=\"externalAccountRequired: ") {
		t.Errorf("the log line lacks the CA's reason (external account binding):\n%s", out)
	}
	if n := strings.Count(peb.Log(), "/sign-me-up"); n > 2 {
		t.Errorf("pebble saw %d account requests, want at most 2 (one attempt)", n)
	}
}

// TestACMEEAB obtains a certificate from a CA that requires External
// Account Binding, with the binding configured.
func TestACMEEAB(t *testing.T) {
	const host = "eab.wssgate.test"
	const kid, key = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	ln := testutil.Listen(t)
	peb := testutil.StartPebble(t, testutil.PebbleOptions{TLSPort: ln.Addr().(*net.TCPAddr).Port, EABKeys: map[string]string{kid: key}})
	cfg := acmeConfig(peb, t.TempDir(), host)
	cfg.TLS.ACME.EABKeyID, cfg.TLS.ACME.EABHMACKey = kid, key
	m := newManager(t, cfg, tlsconf.Options{ACMEPollInterval: acmePoll})
	addr := serveOn(t, ln, m.TLSConfig())
	run(t, m)
	info := waitCert(t, m, host)
	if serial, err := servedSerial(t, addr, host, &tls.Config{RootCAs: peb.Roots(t)}); err != nil || serial != info.Serial {
		t.Errorf("served serial %s (%v), want %s", serial, err, info.Serial)
	}
}

// TestRetryDelay checks the backoff between failed orders.
func TestRetryDelay(t *testing.T) {
	tests := []struct {
		failures int
		min, max time.Duration
	}{
		{1, 2 * time.Minute, 2*time.Minute + 12*time.Second},
		{2, 4 * time.Minute, 4*time.Minute + 24*time.Second},
		{5, 32 * time.Minute, 36 * time.Minute},
		{6, time.Hour, 66 * time.Minute},
		{50, time.Hour, 66 * time.Minute},
	}
	for _, tt := range tests {
		for range 20 {
			if got := tlsconf.RetryDelay(tt.failures); got < tt.min || got > tt.max {
				t.Errorf("RetryDelay(%d) = %v, want within [%v, %v]", tt.failures, got, tt.min, tt.max)
				break
			}
		}
	}
}

// acmeSite is a site with tls.acme for hosts.
func acmeSite(hosts ...string) config.Site {
	return config.Site{Hosts: hosts, TLS: config.SiteTLS{ACME: true}}
}

// TestReloadACMERestartRequired: the running ACME client cannot take a
// new CA or new ACME hosts; Prepare says so and changes nothing.
func TestReloadACMERestartRequired(t *testing.T) {
	ca := testutil.NewCA(t, "root")
	file := fileSite(t, ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"static.test"}}), "static.test")
	cacheDir := t.TempDir()
	base := func(hosts ...string) *config.Config {
		cfg := newConfig("1.2", file, acmeSite(hosts...))
		cfg.TLS.ACME = config.ACME{DirectoryURL: "https://127.0.0.1:1/dir", CacheDir: cacheDir}
		return cfg
	}
	cfg := base("a.example.com")
	m := newManager(t, cfg, tlsconf.Options{})
	otherCA := base("a.example.com")
	otherCA.TLS.ACME.DirectoryURL = "https://127.0.0.1:2/dir"
	tests := []struct {
		name    string
		cfg     *config.Config
		wantErr error
	}{
		{"same", cfg, nil},
		{"another ACME host", base("a.example.com", "b.example.com"), tlsconf.ErrRestartRequired},
		{"another CA", otherCA, tlsconf.ErrRestartRequired},
		{"no ACME site", newConfig("1.2", file), tlsconf.ErrRestartRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := reload(m, tt.cfg); !errors.Is(err, tt.wantErr) {
				t.Errorf("Prepare: got %v, want %v", err, tt.wantErr)
			}
			if got := len(m.Certificates()); got != 2 {
				t.Errorf("after the reload: %d certificates listed, want 2 (file and acme)", got)
			}
		})
	}
}

// TestACMERenewal: with short-lived certificates from pebble, autocert
// renews before expiry (at two thirds of the lifetime) and the new
// certificate is served, once, without a restart.
func TestACMERenewal(t *testing.T) {
	const host = "renew.wssgate.test"
	const validity = 12 * time.Second // renewal at 8s leaves 4s of margin on a busy machine
	ln := testutil.Listen(t)
	peb := testutil.StartPebble(t, testutil.PebbleOptions{TLSPort: ln.Addr().(*net.TCPAddr).Port, Validity: validity})
	cfg := acmeConfig(peb, t.TempDir(), host)
	m := newManager(t, cfg, tlsconf.Options{Logger: testutil.Logger(t), ACMEPollInterval: acmePoll})
	addr := serveOn(t, ln, m.TLSConfig())
	run(t, m)
	trust := &tls.Config{RootCAs: peb.Roots(t)}

	first := waitCert(t, m, host)
	deadline := time.Now().Add(3 * validity)
	for {
		serial, err := servedSerial(t, addr, host, trust)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		if serial != first.Serial {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving %s %v after it was issued; pebble log:\n%s", serial, 3*validity, peb.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !time.Now().Before(first.NotAfter) {
		t.Errorf("renewed only after the old certificate expired (%v)", first.NotAfter)
	}
	time.Sleep(500 * time.Millisecond) // no renewal storm after it
	if got := peb.Issued(); got != 2 {
		t.Errorf("pebble issued %d certificates, want 2 (the first and one renewal)", got)
	}
}
