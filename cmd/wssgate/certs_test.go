package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wssgate/wssgate/cmd/wssgate/internal/server/servertest"
	"github.com/wssgate/wssgate/internal/testutil"
)

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
			f := servertest.WriteFile(t, dir, "c.yaml", fmt.Sprintf("sites:\n  - hosts: %s\n    tls:\n      cert_file: %q\n      # the key\n      key_file: %q\n    routes: [{path: /, root: .}]\n", tt.hosts, certFile, keyFile))
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
	servertest.WriteFile(t, filepath.Join(cache, "ca.example-dir"), "acme.example.com", string(acmeLeaf.KeyPEM)+string(acmeLeaf.CertPEM))
	cfg := servertest.WriteFile(t, dir, "c.yaml", fmt.Sprintf(`
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
