package browser

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"testing"
)

// SPKIHash returns the base64 SHA-256 of cert's SubjectPublicKeyInfo:
// the form of an entry of Chromium's --ignore-certificate-errors-spki-list,
// which [Options.Trust] fills.
func SPKIHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Leaf returns the leaf of c, parsing it when c.Leaf is nil, for
// [Options.Trust]. It fails t if c holds no parsable certificate.
func Leaf(t testing.TB, c tls.Certificate) *x509.Certificate {
	t.Helper()
	if c.Leaf != nil {
		return c.Leaf
	}
	if len(c.Certificate) == 0 {
		t.Fatal("browser: Leaf: tls.Certificate has no certificate")
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatalf("browser: Leaf: %v", err)
	}
	return leaf
}
