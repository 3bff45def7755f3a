package testutil

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CA is a test certificate authority: a self-signed root made by [NewCA],
// or an intermediate made by [CA.Intermediate]. Its key is ECDSA P-256.
type CA struct {
	// X509 is the CA's certificate.
	X509 *x509.Certificate
	// Key is the CA's private key.
	Key crypto.Signer

	parent *CA // nil for a root
}

// NewCA returns a new self-signed root CA whose subject common name is
// name, valid from an hour ago for ten years.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t, "ecdsa")
	tmpl := caTemplate(t, name, 10)
	return &CA{X509: create(t, tmpl, tmpl, key.Public(), key), Key: key}
}

// Intermediate returns a sub-CA whose subject common name is name, signed
// by ca. Leaves it issues chain through it up to ca's root.
func (ca *CA) Intermediate(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t, "ecdsa")
	return &CA{X509: create(t, caTemplate(t, name, 5), ca.X509, key.Public(), ca.Key), Key: key, parent: ca}
}

// Root returns the root at the top of ca's chain: ca itself for a root.
func (ca *CA) Root() *CA {
	for ca.parent != nil {
		ca = ca.parent
	}
	return ca
}

// Pool returns a new pool holding only the root of ca's chain, for a
// client's RootCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Root().X509)
	return p
}

// CertPEM returns ca's own certificate, PEM-encoded.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.X509.Raw})
}

// LeafOptions describe a leaf certificate made by [CA.Leaf].
type LeafOptions struct {
	// Hosts are the DNS names ("chat.example.com", "*.example.com") and IP
	// addresses ("127.0.0.1") the certificate is for; IPs go into IP SANs.
	// The first is also the subject common name. Empty means no names.
	Hosts []string
	// Key is the key type: "ecdsa" (P-256, the default when empty), "rsa"
	// (2048 bits), "rsa1024" or "p224" (for weak-key tests) or "ed25519".
	Key string
	// NotBefore is the start of validity; zero means an hour ago.
	NotBefore time.Time
	// NotAfter is the end of validity; zero means 24 hours from now.
	NotAfter time.Time
}

// Leaf is a server certificate and its key.
type Leaf struct {
	// CertPEM is the leaf followed by every intermediate up to, but not
	// including, the root: the full chain a server should send.
	CertPEM []byte
	// KeyPEM is the private key, PKCS #8 in a "PRIVATE KEY" block.
	KeyPEM []byte
	// Cert is the full chain and key, ready for tls.Config.Certificates.
	Cert tls.Certificate
	// X509 is the parsed leaf certificate.
	X509 *x509.Certificate
}

// Leaf issues a server certificate (extended key usage serverAuth) from
// ca as described by o.
func (ca *CA) Leaf(t testing.TB, o LeafOptions) *Leaf {
	t.Helper()
	key := newKey(t, o.Key)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.Add(24 * time.Hour)
	}
	if _, ok := key.(*rsa.PrivateKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if len(o.Hosts) > 0 {
		tmpl.Subject.CommonName = o.Hosts[0]
	}
	for _, h := range o.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	leaf := create(t, tmpl, ca.X509, key.Public(), ca.Key)

	l := &Leaf{X509: leaf, Cert: tls.Certificate{PrivateKey: key, Leaf: leaf}}
	var chain bytes.Buffer
	for c := ca; c.parent != nil; c = c.parent {
		l.Cert.Certificate = append(l.Cert.Certificate, c.X509.Raw)
	}
	l.Cert.Certificate = append([][]byte{leaf.Raw}, l.Cert.Certificate...)
	for _, der := range l.Cert.Certificate {
		pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	l.CertPEM = chain.Bytes()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testutil: marshal key: %v", err)
	}
	l.KeyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return l
}

// WriteFiles writes l.CertPEM and l.KeyPEM (mode 0600) to new files in dir
// and returns their paths. File names start with the leaf's first host,
// so several leaves can share dir.
func (l *Leaf) WriteFiles(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	base := "leaf"
	if cn := l.X509.Subject.CommonName; cn != "" {
		base = strings.NewReplacer("*", "_", ":", "_", "/", "_").Replace(cn)
	}
	certFile = writeTemp(t, dir, base+"-*.pem", l.CertPEM)
	keyFile = writeTemp(t, dir, base+"-*.key", l.KeyPEM)
	return certFile, keyFile
}

func writeTemp(t testing.TB, dir, pattern string, data []byte) string {
	t.Helper()
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		t.Fatalf("testutil: write %s: %v", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("testutil: close %s: %v", f.Name(), err)
	}
	return filepath.Clean(f.Name())
}

func newKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var (
		key crypto.Signer
		err error
	)
	switch kind {
	case "", "ecdsa":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa1024":
		key, err = rsa.GenerateKey(rand.Reader, 1024)
	case "p224":
		key, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("testutil: unknown key type %q (want ecdsa, rsa, rsa1024, p224 or ed25519)", kind)
	}
	if err != nil {
		t.Fatalf("testutil: generate %s key: %v", kind, err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("testutil: serial: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}

func create(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatalf("testutil: create certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testutil: parse certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	return c
}

// caTemplate is a CA certificate template named name, valid from an hour
// ago for years.
func caTemplate(t testing.TB, name string, years int) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"wssgate tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(years, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}
