package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/testutil"
	"github.com/wssgate/wssgate/tlsconf"
)

// reload applies cfg to m as the server does: Prepare, then commit.
func reload(m *tlsconf.Manager, cfg *config.Config) error {
	commit, err := m.Prepare(cfg)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// TestReload proves a reload reaches every listener made from the
// Manager, and that a failed one, or one that changes min_version,
// leaves the previous certificates in use.
func TestReload(t *testing.T) {
	ca := testutil.NewCA(t, "root")
	a := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.test"}})
	b := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.test"}, Key: "rsa"})
	cfgA := newConfig("1.2", fileSite(t, a, "chat.test"))
	cfgB := newConfig("1.2", fileSite(t, b, "chat.test"))
	broken := newConfig("1.2", fileSite(t, a, "chat.test"), config.Site{
		Hosts: []string{"new.test"},
		TLS:   config.SiteTLS{CertFile: filepath.Join(t.TempDir(), "missing.pem"), KeyFile: cfgA.Sites[0].TLS.KeyFile},
	})
	stricter := newConfig("1.3", fileSite(t, a, "chat.test"))

	m := newManager(t, cfgA, tlsconf.Options{})
	addrs := []string{serve(t, m.TLSConfig()), serve(t, m.TLSConfig())}

	tests := []struct {
		name    string
		cfg     *config.Config
		wantErr error // nil: success
		want    *testutil.Leaf
	}{
		{"to B", cfgB, nil, b},
		{"broken site", broken, fs.ErrNotExist, b},
		{"min_version changed", stricter, tlsconf.ErrRestartRequired, b},
		{"nil config", nil, nil, b},
		{"back to A", cfgA, nil, a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := reload(m, tt.cfg)
			switch {
			case tt.cfg == nil:
				if err == nil {
					t.Fatalf("Prepare(nil): got nil, want an error")
				}
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Prepare: got %v, want nil", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("Prepare: got %v, want an error wrapping %v", err, tt.wantErr)
			}
			for i, addr := range addrs {
				st, err := handshake(t, addr, &tls.Config{ServerName: "chat.test", RootCAs: ca.Pool()})
				if err != nil {
					t.Fatalf("listener %d: handshake: %v", i, err)
				}
				if !st.PeerCertificates[0].Equal(tt.want.X509) {
					t.Errorf("listener %d: got serial %x, want %x", i, st.PeerCertificates[0].SerialNumber, tt.want.X509.SerialNumber)
				}
			}
			if got := m.Certificates()[0].NotAfter; !got.Equal(tt.want.X509.NotAfter) {
				t.Errorf("Certificates: got NotAfter %v, want %v", got, tt.want.X509.NotAfter)
			}
		})
	}
}

// TestReloadDuringHandshakes runs handshakes while reloading back and
// forth; under -race it proves the swap is safe, and every handshake
// must get one of the two certificates.
func TestReloadDuringHandshakes(t *testing.T) {
	ca := testutil.NewCA(t, "root")
	a := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.test"}})
	b := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.test"}})
	cfgs := []*config.Config{newConfig("1.2", fileSite(t, a, "chat.test")), newConfig("1.2", fileSite(t, b, "chat.test"))}
	m := newManager(t, cfgs[0], tlsconf.Options{})
	addr := serve(t, m.TLSConfig())

	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		mu      sync.Mutex
		seen    = map[string]int{}
		failure error
	)
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				st, err := handshake(t, addr, &tls.Config{ServerName: "chat.test", RootCAs: ca.Pool()})
				mu.Lock()
				if err != nil && failure == nil {
					failure = err
				} else if err == nil {
					seen[which(st.PeerCertificates[0], a, b)]++
				}
				mu.Unlock()
			}
		})
	}
	// reload at least 40 times, and on until both certificates have been
	// served a few times, or a deadline passes.
	deadline := time.Now().Add(handshakeTimeout)
	for i := 0; ; i++ {
		mu.Lock()
		enough := seen["a"] >= 5 && seen["b"] >= 5
		mu.Unlock()
		if i >= 40 && enough || time.Now().After(deadline) {
			break
		}
		if err := reload(m, cfgs[i%2]); err != nil {
			t.Errorf("reload %d: %v", i, err)
			break
		}
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if failure != nil {
		t.Fatalf("handshake during reloads: %v", failure)
	}
	if seen["other"] != 0 {
		t.Errorf("got %d handshakes with an unknown certificate, want 0", seen["other"])
	}
	t.Logf("handshakes: %v", seen)
}

func which(c *x509.Certificate, a, b *testutil.Leaf) string {
	switch {
	case c.Equal(a.X509):
		return "a"
	case c.Equal(b.X509):
		return "b"
	}
	return "other"
}

// BenchmarkGetCertificate measures the handshake's certificate lookup,
// which takes no locks, from many goroutines.
func BenchmarkGetCertificate(b *testing.B) {
	ca := testutil.NewCA(b, "root")
	var sites []config.Site
	for _, h := range []string{"a.test", "b.test", "*.c.test"} {
		sites = append(sites, fileSite(b, ca.Leaf(b, testutil.LeafOptions{Hosts: []string{h}}), h))
	}
	m, err := tlsconf.New(newConfig("1.2", sites...), tlsconf.Options{})
	if err != nil {
		b.Fatal(err)
	}
	get := m.TLSConfig().GetCertificate
	hellos := []*tls.ClientHelloInfo{{ServerName: "b.test"}, {ServerName: "x.c.test"}, {ServerName: "Unknown.Test"}, {}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if _, err := get(hellos[i%len(hellos)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
