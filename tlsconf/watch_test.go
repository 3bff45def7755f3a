package tlsconf_test

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wssgate/wssgate/internal/testutil"
	"github.com/wssgate/wssgate/tlsconf"
)

// TestFileWatch replaces a site's certificate files under a running
// Manager: new handshakes get the new certificate, a connection opened
// before keeps working, and a broken replacement keeps the last good
// certificate, with the reason logged once.
func TestFileWatch(t *testing.T) {
	ca := testutil.NewCA(t, "root")
	a := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.test"}})
	b := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.test"}, Key: "rsa"})
	site := fileSite(t, a, "chat.test")
	cfg := newConfig("1.2", site)
	log, logs := syncLog()
	m := newManager(t, cfg, tlsconf.Options{Logger: log, WatchInterval: 10 * time.Millisecond})
	addr := serve(t, m.TLSConfig())
	run(t, m)
	trust := &tls.Config{RootCAs: ca.Pool()}
	wantSerial := func(t *testing.T, want *testutil.Leaf, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got, err := servedSerial(t, addr, "chat.test", trust)
			if err == nil && got == want.X509.SerialNumber.Text(16) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("served %s (%v), want %s", got, err, want.X509.SerialNumber.Text(16))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	write := func(t *testing.T, certPEM, keyPEM []byte) {
		t.Helper()
		if err := os.WriteFile(site.TLS.CertFile, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(site.TLS.KeyFile, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// A connection opened on a.
	open, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "chat.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()

	t.Run("replaced", func(t *testing.T) {
		write(t, b.CertPEM, b.KeyPEM)
		wantSerial(t, b, 5*time.Second)
		if got := open.ConnectionState().PeerCertificates[0]; !got.Equal(a.X509) {
			t.Errorf("the open connection's certificate changed")
		}
	})
	t.Run("broken replacement", func(t *testing.T) {
		write(t, []byte("not a certificate"), b.KeyPEM)
		time.Sleep(100 * time.Millisecond) // ten checks
		wantSerial(t, b, 0)
		if n := strings.Count(logs(), "cannot be loaded"); n != 1 {
			t.Errorf("logged the broken file %d times, want once:\n%s", n, logs())
		}
		if err := reload(m, cfg); err == nil || !strings.Contains(err.Error(), site.TLS.CertFile) {
			t.Errorf("reload: got %v, want an error naming %s", err, site.TLS.CertFile)
		}
		wantSerial(t, b, 0) // the failed reload changed nothing
	})
	t.Run("explicit reload", func(t *testing.T) {
		write(t, a.CertPEM, a.KeyPEM)
		if err := reload(m, cfg); err != nil {
			t.Fatalf("reload: %v", err)
		}
		wantSerial(t, a, 0)
	})
}

// TestReadOnly checks that a ReadOnly Manager creates nothing: no ACME
// cache, no internal CA, and reports what is missing.
func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	cfg := newConfig("1.2", internalSite("dev.test"))
	cfg.Sites = append(cfg.Sites, acmeSite("acme.example.com"))
	cfg.TLS.ACME.CacheDir = dir + "/acme"
	cfg.TLS.ACME.DirectoryURL = "https://127.0.0.1:1/dir"
	m := newManager(t, cfg, tlsconf.Options{ReadOnly: true, InternalDir: dir + "/internal"})
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("ReadOnly New created %v in the directory", entries)
	}
	certs := m.Certificates()
	if len(certs) != 2 || certs[0].Problem == "" || certs[1].Problem == "" || certs[1].Source != tlsconf.SourceACME {
		t.Errorf("Certificates = %+v, want two entries without certificates", certs)
	}
	if err := m.Run(t.Context()); err == nil {
		t.Errorf("Run on a ReadOnly Manager: got nil, want an error")
	}
}

// syncLog returns a debug logger whose output may be read, through the
// returned function, while the code under test still logs.
func syncLog() (*slog.Logger, func() string) {
	var (
		mu  sync.Mutex
		buf bytes.Buffer
	)
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
