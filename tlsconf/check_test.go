package tlsconf_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wssgate/wssgate/internal/testutil"
	"github.com/wssgate/wssgate/tlsconf"
)

// TestCheck runs Manager.Check on one certificate per kind of problem.
func TestCheck(t *testing.T) {
	root := testutil.NewCA(t, "root")
	inter := root.Intermediate(t, "intermediate")
	months := time.Now().AddDate(0, 3, 0)
	good := inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.test", "*.chat.test"}, NotAfter: months})
	// The leaf alone, without the intermediate the file should carry.
	bare := *good
	bare.CertPEM = good.CertPEM[:pemEnd(good.CertPEM)]
	selfSigned := root.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.test"}, NotAfter: months})
	selfSigned.CertPEM = append(selfSigned.CertPEM, root.CertPEM()...) // leaf + its (root) issuer

	tests := []struct {
		name         string
		leaf         *testutil.Leaf
		hosts        []string
		wantProblems []string // substrings, with the key they must carry
		wantWarnings []string
	}{
		{"good", good, []string{"chat.test", "a.chat.test", "*.chat.test"}, nil, nil},
		{"host not covered", good, []string{"chat.test", "other.test"}, []string{`hosts[1]: the certificate in`}, nil},
		{"wildcard host needs a wildcard name", selfSigned, []string{"chat.test", "*.chat.test"}, []string{`hosts[1]:`}, nil},
		{"expired", inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.test"}, NotBefore: time.Now().AddDate(0, -3, 0), NotAfter: time.Now().Add(-time.Hour)}),
			[]string{"chat.test"}, []string{"tls.cert_file: the certificate in"}, nil},
		{"expires soon", inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.test"}, NotAfter: time.Now().AddDate(0, 0, 10)}),
			[]string{"chat.test"}, nil, []string{"tls.cert_file: the certificate in"}},
		{"missing intermediate", &bare, []string{"chat.test"}, nil, []string{"without its intermediate"}},
		{"weak RSA", inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.test"}, Key: "rsa1024", NotAfter: months}),
			[]string{"chat.test"}, []string{"tls.key_file: "}, nil},
		{"weak ECDSA", inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.test"}, Key: "p224", NotAfter: months}),
			[]string{"chat.test"}, []string{"tls.key_file: "}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newManager(t, newConfig("1.2", fileSite(t, tt.leaf, tt.hosts...)), tlsconf.Options{ReadOnly: true})
			problems, warnings := m.Check()
			match(t, "problems", problems, tt.wantProblems)
			match(t, "warnings", warnings, tt.wantWarnings)
		})
	}
}

// match checks that errs are exactly one per want, each a *SiteError
// whose "path: message" contains it.
func match(t *testing.T, what string, errs []error, want []string) {
	t.Helper()
	if len(errs) != len(want) {
		t.Fatalf("%s: got %d %v, want %d %q", what, len(errs), errs, len(want), want)
	}
	for i, w := range want {
		se, ok := errs[i].(*tlsconf.SiteError)
		if !ok {
			t.Fatalf("%s[%d] is %T, want *tlsconf.SiteError", what, i, errs[i])
		}
		if got := se.Key + ": " + se.Err.Error(); !strings.Contains(got, w) {
			t.Errorf("%s[%d] = %q, want it to contain %q", what, i, got, w)
		}
	}
}

// TestCheckSkipsOwnCertificates: internal certificates are wssgate's own.
func TestCheckSkipsOwnCertificates(t *testing.T) {
	dir := t.TempDir()
	m := newManager(t, newConfig("1.2", internalSite("dev.test")), tlsconf.Options{InternalDir: filepath.Join(dir, "i")})
	if p, w := m.Check(); p != nil || w != nil {
		t.Errorf("Check of an internal site = %v, %v; want nothing", p, w)
	}
}
