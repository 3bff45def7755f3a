package tlsconf_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/testutil"
	"github.com/wssgate/wssgate/tlsconf"
)

// internalSite returns a site served by the internal CA.
func internalSite(hosts ...string) config.Site {
	return config.Site{Hosts: hosts, TLS: config.SiteTLS{Internal: true}}
}

// rootPool reads the internal root that m reports into a pool.
func rootPool(t *testing.T, m *tlsconf.Manager) *x509.CertPool {
	t.Helper()
	if m.RootCertFile() == "" {
		t.Fatal("RootCertFile: got \"\", want a file")
	}
	data, err := os.ReadFile(m.RootCertFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("%s holds no certificate", m.RootCertFile())
	}
	return pool
}

// TestInternal proves an internal site is served a certificate for its
// DNS names and IPs that verifies against the root file alone, that the
// chain is the leaf alone, that files get private modes, and that a
// second Manager on the same directory serves the very same leaf.
func TestInternal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "internal") // created by New
	hosts := []string{"localhost", "127.0.0.1", "::1", "*.dev.test"}
	cfg := newConfig("1.2", internalSite(hosts...))
	first := newManager(t, cfg, tlsconf.Options{InternalDir: dir})
	second := newManager(t, cfg, tlsconf.Options{InternalDir: dir})
	if first.RootCertFile() != filepath.Join(dir, "root.crt") || second.RootCertFile() != first.RootCertFile() {
		t.Errorf("RootCertFile: got %q and %q, want %q for both", first.RootCertFile(), second.RootCertFile(), filepath.Join(dir, "root.crt"))
	}
	roots := rootPool(t, first)

	var leaves []*x509.Certificate
	for i, m := range []*tlsconf.Manager{first, second} {
		addr := serve(t, m.TLSConfig())
		for _, name := range []string{"localhost", "127.0.0.1", "::1", "api.dev.test"} {
			st, err := handshake(t, addr, &tls.Config{ServerName: name, RootCAs: roots})
			if err != nil {
				t.Fatalf("manager %d, %s: handshake: got %v, want success", i, name, err)
			}
			if n := len(st.PeerCertificates); n != 1 {
				t.Errorf("manager %d, %s: got %d certificates, want the leaf alone", i, name, n)
			}
			leaves = append(leaves, st.PeerCertificates[0])
		}
	}
	for i, l := range leaves[1:] {
		if !l.Equal(leaves[0]) {
			t.Errorf("handshake %d served serial %x, want %x: the stored leaf was not reused", i+1, l.SerialNumber, leaves[0].SerialNumber)
		}
	}
	leaf := leaves[0]
	if want := []string{"localhost", "*.dev.test"}; !slices.Equal(leaf.DNSNames, want) {
		t.Errorf("DNS SANs: got %q, want %q", leaf.DNSNames, want)
	}
	if len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !leaf.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IP SANs: got %v, want [127.0.0.1 ::1]", leaf.IPAddresses)
	}
	if d := leaf.NotAfter.Sub(time.Now()); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("leaf valid for another %v, want about a year", d)
	}
	root := readCert(t, first.RootCertFile())
	if d := root.NotAfter.Sub(time.Now()); d < 9*365*24*time.Hour || d > 11*365*24*time.Hour {
		t.Errorf("root valid for another %v, want about ten years", d)
	}
	if !root.IsCA || root.CheckSignatureFrom(root) != nil {
		t.Errorf("root is not a self-signed CA")
	}

	for _, f := range []struct {
		path string
		mode fs.FileMode
	}{
		{dir, 0o700},
		{filepath.Join(dir, "root.key"), 0o600},
		{filepath.Join(dir, "sites"), 0o700},
		{filepath.Join(dir, "sites", "localhost.key"), 0o600},
	} {
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Errorf("stat: %v", err)
		} else if fi.Mode().Perm() != f.mode {
			t.Errorf("%s: got mode %v, want %v", f.path, fi.Mode().Perm(), f.mode)
		}
	}

	got := first.Certificates()
	if len(got) != 1 {
		t.Fatalf("Certificates: got %d, want 1", len(got))
	}
	want := tlsconf.CertInfo{
		Site:   0,
		Hosts:  hosts,
		Source: tlsconf.SourceInternal,
		File:   filepath.Join(dir, "sites", "localhost.crt"),
		Names:  []string{"localhost", "*.dev.test", "127.0.0.1", "::1"},
		Issuer: root.Subject.String(),
		Chain:  1,
	}
	c := got[0]
	if c.Site != want.Site || !slices.Equal(c.Hosts, want.Hosts) || c.Source != want.Source || c.File != want.File ||
		!slices.Equal(c.Names, want.Names) || c.Issuer != want.Issuer || c.Chain != want.Chain || !c.NotAfter.Equal(leaf.NotAfter) {
		t.Errorf("Certificates()[0]:\ngot  %+v\nwant %+v (NotAfter %v)", c, want, leaf.NotAfter)
	}
}

// TestInternalReuse proves when a stored internal leaf is reused and
// when a new one is issued: after 30 days or fewer are left, when the
// hosts change, when the stored files are damaged, when the root changes.
func TestInternalReuse(t *testing.T) {
	hosts := []string{"localhost", "127.0.0.1"}
	tests := []struct {
		name      string
		prepare   func(t *testing.T, dir string)
		hosts     []string
		later     time.Duration
		wantSame  bool
		wantRoot  bool // the root is unchanged
		wantInLog string
	}{
		{name: "next run", hosts: hosts, wantSame: true, wantRoot: true},
		{name: "hosts in another case", hosts: []string{"LOCALHOST.", "127.0.0.1"}, wantSame: true, wantRoot: true},
		{name: "300 days later, 65 left", hosts: hosts, later: 300 * 24 * time.Hour, wantSame: true, wantRoot: true},
		{name: "340 days later, 25 left", hosts: hosts, later: 340 * 24 * time.Hour, wantRoot: true, wantInLog: "reason=\"expires soon\""},
		{name: "a host added", hosts: append(slices.Clone(hosts), "dev.test"), wantRoot: true, wantInLog: `reason="does not cover \"dev.test\""`},
		{name: "a host removed", hosts: hosts[:1], wantSame: true, wantRoot: true},
		{
			name:      "leaf file damaged",
			prepare:   func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "sites", "localhost.crt"), "junk") },
			hosts:     hosts,
			wantRoot:  true,
			wantInLog: "reason=\"unreadable: no PEM certificate found\"",
		},
		{
			name:      "leaf files deleted",
			prepare:   func(t *testing.T, dir string) { os.RemoveAll(filepath.Join(dir, "sites")) },
			hosts:     hosts,
			wantRoot:  true,
			wantInLog: `reason="none stored"`,
		},
		{
			name: "root deleted",
			prepare: func(t *testing.T, dir string) {
				os.Remove(filepath.Join(dir, "root.crt"))
				os.Remove(filepath.Join(dir, "root.key"))
			},
			hosts:     hosts,
			wantInLog: `reason="issued by another CA"`,
		},
		{name: "root expires in 20 days", hosts: hosts, later: (10*365 - 20) * 24 * time.Hour, wantInLog: "internal CA expires soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			m1 := newManager(t, newConfig("1.2", internalSite(hosts...)), tlsconf.Options{InternalDir: dir})
			root1 := readCert(t, m1.RootCertFile())
			if tt.prepare != nil {
				tt.prepare(t, dir)
			}
			log, buf := logBuffer()
			now := time.Now().Add(tt.later)
			m2 := newManager(t, newConfig("1.2", internalSite(tt.hosts...)), tlsconf.Options{
				InternalDir: dir, Logger: log, Now: func() time.Time { return now },
			})
			leaf1, leaf2 := currentLeaf(t, m1), currentLeaf(t, m2)
			if same := leaf2.Equal(leaf1); same != tt.wantSame {
				t.Errorf("leaf reused: got %v, want %v", same, tt.wantSame)
			}
			if same := readCert(t, m2.RootCertFile()).Equal(root1); same != tt.wantRoot {
				t.Errorf("root kept: got %v, want %v", same, tt.wantRoot)
			}
			if d := leaf2.NotAfter.Sub(now); !tt.wantSame && (d < 364*24*time.Hour || d > 366*24*time.Hour) {
				t.Errorf("new leaf valid for another %v by the injected clock, want about a year", d)
			}
			if !strings.Contains(buf.String(), tt.wantInLog) {
				t.Errorf("log: got\n%s\nwant it to contain %s", buf, tt.wantInLog)
			}
		})
	}
}

// TestInternalRootErrors proves a root that exists but cannot be used is
// reported, naming the file, and never overwritten.
func TestInternalRootErrors(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		want    string // in the message; $DIR is the directory
	}{
		{
			name:    "root certificate damaged",
			prepare: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "root.crt"), "junk") },
			want:    "tlsconf: sites[1]: internal CA: load $DIR/root.crt: no PEM certificate found",
		},
		{
			name:    "root key missing",
			prepare: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "root.key")) },
			want:    "tlsconf: sites[1]: internal CA: load $DIR/root.key: open $DIR/root.key: no such file or directory",
		},
		{
			name: "root key of another CA",
			prepare: func(t *testing.T, dir string) {
				other := t.TempDir()
				newManager(t, newConfig("1.2", internalSite("localhost")), tlsconf.Options{InternalDir: other})
				data, err := os.ReadFile(filepath.Join(other, "root.key"))
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "root.key"), string(data))
			},
			want: "tlsconf: sites[1]: internal CA: load $DIR/root.key: private key does not match the certificate in $DIR/root.crt",
		},
	}
	ca := testutil.NewCA(t, "root")
	files := fileSite(t, ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"file.test"}}), "file.test")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := newConfig("1.2", files, internalSite("localhost"), internalSite("other.localhost"))
			newManager(t, cfg, tlsconf.Options{InternalDir: dir})
			tt.prepare(t, dir)
			before := snapshot(t, dir)

			_, err := tlsconf.New(cfg, tlsconf.Options{InternalDir: dir, Logger: testutil.Logger(t)})
			errs := config.Errors(err)
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1 (reported once, for the first internal site): %v", len(errs), err)
			}
			var se *tlsconf.SiteError
			if !errors.As(errs[0], &se) || se.Path() != "sites[1].tls.internal" {
				t.Errorf("got %v, want a *SiteError for sites[1].tls.internal", errs[0])
			}
			if want := strings.ReplaceAll(tt.want, "$DIR", dir); errs[0].Error() != want {
				t.Errorf("got  %s\nwant %s", errs[0], want)
			}
			if after := snapshot(t, dir); !maps.EqualFunc(before, after, bytes.Equal) {
				t.Errorf("the internal directory changed after a failed New")
			}
		})
	}
}

// TestInternalDefaultDir proves an empty InternalDir means
// os.UserConfigDir()/wssgate/internal, and that a configuration without
// internal sites creates no directory at all.
func TestInternalDefaultDir(t *testing.T) {
	home := t.TempDir()
	for _, v := range []string{"XDG_CONFIG_HOME", "HOME", "AppData", "home"} {
		t.Setenv(v, home)
	}
	base, err := os.UserConfigDir()
	if err != nil || !strings.HasPrefix(base, home) {
		t.Skipf("os.UserConfigDir() = %q, %v: not redirected into the test directory on this system", base, err)
	}
	want := filepath.Join(base, "wssgate", "internal")

	ca := testutil.NewCA(t, "root")
	m, err := tlsconf.New(newConfig("1.2", fileSite(t, ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"a.test"}}), "a.test")),
		tlsconf.Options{Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(want); !errors.Is(err, fs.ErrNotExist) || m.RootCertFile() != "" {
		t.Errorf("file-only config: got stat error %v and RootCertFile %q, want no directory and \"\"", err, m.RootCertFile())
	}

	m, err = tlsconf.New(newConfig("1.2", internalSite("localhost")), tlsconf.Options{Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.RootCertFile(); got != filepath.Join(want, "root.crt") {
		t.Errorf("RootCertFile: got %q, want %q", got, filepath.Join(want, "root.crt"))
	}
}

// readCert returns the first certificate in a PEM file.
func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			t.Fatalf("%s holds no certificate", file)
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			return c
		}
	}
}

// currentLeaf returns the leaf m serves to a client without SNI.
func currentLeaf(t *testing.T, m *tlsconf.Manager) *x509.Certificate {
	t.Helper()
	c, err := m.TLSConfig().GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	return c.Leaf
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// snapshot returns the contents of every file under dir.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		out[p] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
