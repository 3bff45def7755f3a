package tlsconf_test

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/testutil"
	"github.com/wssgate/wssgate/tlsconf"
)

// wantSiteErr describes one *tlsconf.SiteError expected from New.
type wantSiteErr struct {
	key      string   // SiteError.Key
	is       error    // wrapped sentinel; nil to skip
	contains []string // substrings of the message ("$CERT"/"$KEY" = file names)
}

// TestLoadErrors proves each way a cert_file/key_file pair can be wrong
// yields a one-line *SiteError naming the file, the key and the problem.
func TestLoadErrors(t *testing.T) {
	root := testutil.NewCA(t, "root")
	inter := root.Intermediate(t, "intermediate")
	leaf := inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.test"}})
	other := inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.test"}})
	write := func(t *testing.T, name string, data []byte) string {
		t.Helper()
		f := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	pemOf := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }

	tests := []struct {
		name    string
		prepare func(t *testing.T) (certFile, keyFile string)
		want    []wantSiteErr
	}{{
		name: "missing cert file",
		prepare: func(t *testing.T) (string, string) {
			return filepath.Join(t.TempDir(), "chat.pem"), write(t, "chat.key", leaf.KeyPEM)
		},
		want: []wantSiteErr{{"tls.cert_file", fs.ErrNotExist, []string{"load $CERT: open $CERT: no such file or directory"}}},
	}, {
		name: "missing key file",
		prepare: func(t *testing.T) (string, string) {
			return write(t, "chat.pem", leaf.CertPEM), filepath.Join(t.TempDir(), "chat.key")
		},
		want: []wantSiteErr{{"tls.key_file", fs.ErrNotExist, []string{"load $KEY: open $KEY: no such file or directory"}}},
	}, {
		name: "both missing",
		prepare: func(t *testing.T) (string, string) {
			return filepath.Join(t.TempDir(), "chat.pem"), filepath.Join(t.TempDir(), "chat.key")
		},
		want: []wantSiteErr{
			{"tls.cert_file", fs.ErrNotExist, []string{"load $CERT"}},
			{"tls.key_file", fs.ErrNotExist, []string{"load $KEY"}},
		},
	}, {
		name: "cert file is a directory",
		prepare: func(t *testing.T) (string, string) {
			return t.TempDir(), write(t, "chat.key", leaf.KeyPEM)
		},
		want: []wantSiteErr{{"tls.cert_file", nil, []string{"load $CERT: read $CERT: is a directory"}}},
	}, {
		name: "cert file is not PEM",
		prepare: func(t *testing.T) (string, string) {
			return write(t, "chat.pem", []byte("hello\n")), write(t, "chat.key", leaf.KeyPEM)
		},
		want: []wantSiteErr{{"tls.cert_file", tlsconf.ErrNoCertificate, []string{"load $CERT: no PEM certificate found"}}},
	}, {
		name: "cert file is DER",
		prepare: func(t *testing.T) (string, string) {
			return write(t, "chat.der", leaf.X509.Raw), write(t, "chat.key", leaf.KeyPEM)
		},
		want: []wantSiteErr{{"tls.cert_file", tlsconf.ErrNoCertificate, []string{"load $CERT: no PEM certificate found", "looks like DER"}}},
	}, {
		name: "cert file holds a broken certificate",
		prepare: func(t *testing.T) (string, string) {
			return write(t, "chat.pem", pemOf("CERTIFICATE", []byte("not DER"))), write(t, "chat.key", leaf.KeyPEM)
		},
		want: []wantSiteErr{{"tls.cert_file", nil, []string{"load $CERT: certificate 1: x509: "}}},
	}, {
		name: "cert and key swapped",
		prepare: func(t *testing.T) (string, string) {
			return write(t, "chat.key", leaf.KeyPEM), write(t, "chat.pem", leaf.CertPEM)
		},
		want: []wantSiteErr{
			{"tls.cert_file", tlsconf.ErrNoCertificate, []string{"load $CERT: no PEM certificate found", "swapped"}},
			{"tls.key_file", tlsconf.ErrNoPrivateKey, []string{"load $KEY: no PEM private key found", "swapped"}},
		},
	}, {
		name: "empty key file",
		prepare: func(t *testing.T) (string, string) {
			return write(t, "chat.pem", leaf.CertPEM), write(t, "chat.key", nil)
		},
		want: []wantSiteErr{{"tls.key_file", tlsconf.ErrNoPrivateKey, []string{"load $KEY: no PEM private key found"}}},
	}, {
		name: "broken key",
		prepare: func(t *testing.T) (string, string) {
			return write(t, "chat.pem", leaf.CertPEM), write(t, "chat.key", pemOf("PRIVATE KEY", []byte("not DER")))
		},
		want: []wantSiteErr{{"tls.key_file", nil, []string{"load $KEY: parse private key: the \"PRIVATE KEY\" block is not valid DER"}}},
	}, {
		name: "encrypted key",
		prepare: func(t *testing.T) (string, string) {
			return write(t, "chat.pem", leaf.CertPEM), write(t, "chat.key", pemOf("ENCRYPTED PRIVATE KEY", []byte{0x30}))
		},
		want: []wantSiteErr{{"tls.key_file", nil, []string{"load $KEY: the private key is encrypted"}}},
	}, {
		name: "key of another certificate",
		prepare: func(t *testing.T) (string, string) {
			return write(t, "chat.pem", leaf.CertPEM), write(t, "chat.key", other.KeyPEM)
		},
		want: []wantSiteErr{{"tls.key_file", tlsconf.ErrKeyMismatch, []string{"load $KEY: private key does not match the certificate in $CERT"}}},
	}, {
		name: "leaf not first",
		prepare: func(t *testing.T) (string, string) {
			reordered := append(pemOf("CERTIFICATE", inter.X509.Raw), pemOf("CERTIFICATE", leaf.X509.Raw)...)
			return write(t, "chat.pem", reordered), write(t, "chat.key", leaf.KeyPEM)
		},
		want: []wantSiteErr{{"tls.cert_file", tlsconf.ErrKeyMismatch, []string{"load $CERT: ", "certificate 2 of the file; put the leaf certificate first"}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certFile, keyFile := tt.prepare(t)
			cfg := newConfig("1.2", config.Site{Hosts: []string{"chat.test"}, TLS: config.SiteTLS{CertFile: certFile, KeyFile: keyFile}})
			m, err := tlsconf.New(cfg, tlsconf.Options{Logger: testutil.Logger(t), InternalDir: t.TempDir()})
			if m != nil || err == nil {
				t.Fatalf("New: got (%v, %v), want (nil, error)", m, err)
			}
			expand := strings.NewReplacer("$CERT", certFile, "$KEY", keyFile).Replace
			checkSiteErrors(t, err, 0, tt.want, expand)
		})
	}
}

// checkSiteErrors checks that err joins exactly the *SiteErrors in want,
// all for site, in order.
func checkSiteErrors(t *testing.T, err error, site int, want []wantSiteErr, expand func(string) string) {
	t.Helper()
	errs := config.Errors(err)
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, e := range errs {
		var se *tlsconf.SiteError
		if !errors.As(e, &se) {
			t.Errorf("error %d: got %T (%v), want *tlsconf.SiteError", i, e, e)
			continue
		}
		msg := e.Error()
		t.Logf("error %d: %s", i, msg)
		if se.Site != site || se.Key != want[i].key {
			t.Errorf("error %d: got site %d key %q, want site %d key %q", i, se.Site, se.Key, site, want[i].key)
		}
		if prefix := fmt.Sprintf("tlsconf: sites[%d]: ", site); !strings.HasPrefix(msg, prefix) {
			t.Errorf("error %d: got %q, want prefix %q", i, msg, prefix)
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("error %d: got several lines, want one: %q", i, msg)
		}
		if want[i].is != nil && !errors.Is(e, want[i].is) {
			t.Errorf("error %d: got %q, want it to wrap %v", i, msg, want[i].is)
		}
		for _, s := range want[i].contains {
			if s = expand(s); !strings.Contains(msg, s) {
				t.Errorf("error %d: got %q, want it to contain %q", i, msg, s)
			}
		}
	}
}

// TestSiteErrorsJoined proves the errors of all sites come back together,
// and that SiteError.Path maps each to its line in the YAML file.
func TestSiteErrorsJoined(t *testing.T) {
	ca := testutil.NewCA(t, "root")
	good := fileSite(t, ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"good.test"}}), "good.test")
	mismatch := fileSite(t, ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"bad.test"}}), "bad.test")
	mismatch.TLS.KeyFile = good.TLS.KeyFile
	missing := filepath.Join(t.TempDir(), "chat.pem")
	yaml := fmt.Sprintf(`sites:
  - hosts: [good.test]
    tls: {cert_file: %q, key_file: %q}
    routes: [{path: /, respond: {body: ok}}]
  - hosts: [missing.test]
    tls:
      cert_file: %q
      key_file: %q
    routes: [{path: /, respond: {body: ok}}]
  - hosts: [bad.test]
    tls:
      cert_file: %q
      key_file: %q
    routes: [{path: /, respond: {body: ok}}]
`, good.TLS.CertFile, good.TLS.KeyFile, missing, good.TLS.KeyFile, mismatch.TLS.CertFile, mismatch.TLS.KeyFile)
	cfg, err := config.Parse("wssgate.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	_, err = tlsconf.New(cfg, tlsconf.Options{Logger: testutil.Logger(t), InternalDir: t.TempDir()})
	errs := config.Errors(err)
	want := []struct {
		path string
		line int
		is   error
	}{
		{"sites[1].tls.cert_file", 7, fs.ErrNotExist},
		{"sites[2].tls.key_file", 13, tlsconf.ErrKeyMismatch},
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		var se *tlsconf.SiteError
		if !errors.As(errs[i], &se) {
			t.Fatalf("error %d: got %T, want *tlsconf.SiteError", i, errs[i])
		}
		if se.Path() != w.path || cfg.Source.Line(se.Path()) != w.line || !errors.Is(se, w.is) {
			t.Errorf("error %d: got %s at line %d (%v), want %s at line %d wrapping %v",
				i, se.Path(), cfg.Source.Line(se.Path()), se, w.path, w.line, w.is)
		}
	}
}

// TestConfigErrors covers configurations New rejects before any file is
// read, and sites without a usable certificate source.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  *config.Config
		want string
	}{
		{"nil config", nil, "tlsconf: nil config"},
		{"bad min_version", newConfig("1.1", config.Site{Hosts: []string{"a.test"}, TLS: config.SiteTLS{Internal: true}}),
			`tlsconf: tls.min_version: want "1.2" or "1.3", got "1.1"`},
		{"no sites", newConfig("1.2"), "tlsconf: no sites; at least one is required"},
		{"no certificate", newConfig("1.2", config.Site{Hosts: []string{"a.test"}}),
			"tlsconf: sites[0]: no certificate: set cert_file and key_file, internal: true or acme: true"},
		{"internal and files", newConfig("1.2", config.Site{Hosts: []string{"a.test"}, TLS: config.SiteTLS{Internal: true, CertFile: "x"}}),
			"tlsconf: sites[0]: internal and cert_file/key_file exclude each other"},
		{"internal without hosts", newConfig("1.2", config.Site{TLS: config.SiteTLS{Internal: true}}),
			"tlsconf: sites[0]: an internal certificate needs at least one host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tlsconf.New(tt.cfg, tlsconf.Options{Logger: testutil.Logger(t), InternalDir: t.TempDir()})
			if err == nil || err.Error() != tt.want {
				t.Errorf("New: got %v, want %s", err, tt.want)
			}
		})
	}
}

// TestKeyEncodings proves keys in the traditional OpenSSL encodings and a
// single file holding both chain and key load.
func TestKeyEncodings(t *testing.T) {
	ca := testutil.NewCA(t, "root")
	rsaLeaf := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"a.test"}, Key: "rsa"})
	ecLeaf := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"a.test"}})
	// traditional returns l's key as openssl's older commands write it.
	traditional := func(l *testutil.Leaf) []byte {
		switch k := l.Cert.PrivateKey.(type) {
		case *rsa.PrivateKey:
			return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
		case *ecdsa.PrivateKey:
			der, err := x509.MarshalECPrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			// openssl ecparam -genkey writes the curve (P-256) first.
			params := "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
			return append([]byte(params), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})...)
		}
		t.Fatalf("unexpected key type %T", l.Cert.PrivateKey)
		return nil
	}
	tests := []struct {
		name          string
		leaf          *testutil.Leaf
		cert, keyData []byte
		sameFile      bool
	}{
		{"PKCS #1 RSA key", rsaLeaf, rsaLeaf.CertPEM, traditional(rsaLeaf), false},
		{"SEC 1 EC key after EC PARAMETERS", ecLeaf, ecLeaf.CertPEM, traditional(ecLeaf), false},
		{"chain and key in one file", ecLeaf, append(append([]byte(nil), ecLeaf.CertPEM...), ecLeaf.KeyPEM...), nil, true},
		{"key before chain in one file", ecLeaf, append(append([]byte(nil), ecLeaf.KeyPEM...), ecLeaf.CertPEM...), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			if tt.sameFile {
				keyFile = certFile
			}
			if err := os.WriteFile(certFile, tt.cert, 0o600); err != nil {
				t.Fatal(err)
			}
			if !tt.sameFile {
				if err := os.WriteFile(keyFile, tt.keyData, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			m := newManager(t, newConfig("1.2", config.Site{Hosts: []string{"a.test"}, TLS: config.SiteTLS{CertFile: certFile, KeyFile: keyFile}}), tlsconf.Options{})
			st, err := handshake(t, serve(t, m.TLSConfig()), &tls.Config{ServerName: "a.test", RootCAs: ca.Pool()})
			if err != nil {
				t.Fatalf("handshake: got %v, want success", err)
			}
			if !st.PeerCertificates[0].Equal(tt.leaf.X509) {
				t.Errorf("got certificate %q, want the leaf", st.PeerCertificates[0].Subject)
			}
		})
	}
}

// TestValidityWarnings proves a certificate outside its validity period
// is served, not refused, and that a warning is logged, using the real
// clock or an injected one.
func TestValidityWarnings(t *testing.T) {
	ca := testutil.NewCA(t, "root")
	now := time.Now()
	expired := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"a.test"}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	current := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"a.test"}})
	tests := []struct {
		name     string
		leaf     *testutil.Leaf
		now      func() time.Time
		wantWarn string // "" means no warning
	}{
		{"expired", expired, nil, "certificate has expired; serving it anyway"},
		{"current", current, nil, ""},
		{"current, clock two days ahead", current, func() time.Time { return now.Add(48 * time.Hour) }, "certificate has expired; serving it anyway"},
		{"current, clock two days behind", current, func() time.Time { return now.Add(-48 * time.Hour) }, "certificate is not valid yet; serving it anyway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, buf := logBuffer()
			m := newManager(t, newConfig("1.2", fileSite(t, tt.leaf, "a.test")), tlsconf.Options{Logger: log, Now: tt.now})
			st, err := handshake(t, serve(t, m.TLSConfig()), &tls.Config{ServerName: "a.test", InsecureSkipVerify: true})
			if err != nil {
				t.Fatalf("handshake: got %v, want success", err)
			}
			if !st.PeerCertificates[0].Equal(tt.leaf.X509) {
				t.Errorf("got certificate %q, want the configured one", st.PeerCertificates[0].Subject)
			}
			logged := buf.String()
			if tt.wantWarn == "" {
				if strings.Contains(logged, "level=WARN") {
					t.Errorf("got a warning, want none:\n%s", logged)
				}
				return
			}
			if !strings.Contains(logged, "level=WARN") || !strings.Contains(logged, tt.wantWarn) || !strings.Contains(logged, "site=0") {
				t.Errorf("log: got\n%s\nwant a WARN line for site=0 with %q", logged, tt.wantWarn)
			}
		})
	}
}
