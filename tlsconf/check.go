package tlsconf

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"
	"time"
)

// Thresholds of [Manager.Check].
const (
	// expiryWarning is how close to expiry a certificate gets a warning.
	expiryWarning = 14 * 24 * time.Hour
	// minRSABits and minECDSABits are the weakest keys accepted.
	minRSABits   = 2048
	minECDSABits = 256
)

// Check inspects every cert_file/key_file certificate as a client would
// and returns problems (the certificate will fail clients) and warnings
// (it works, for now or for most clients), each a [*SiteError] naming the
// configuration key:
//
//   - a host of the site not covered by the certificate's names: problem;
//   - expired or not yet valid: problem; expiring within 14 days: warning;
//   - a CA-issued leaf (not self-signed) whose issuing certificate is not
//     in the file: warning, since clients that do not fetch missing
//     intermediates (WeChat on Android, many IoT stacks) fail;
//   - an RSA key under 2048 bits or an ECDSA key under P-256: problem.
//
// A key that does not match its certificate is already an error of
// [New]. Internal and ACME certificates are not checked: wssgate makes
// them.
func (m *Manager) Check() (problems, warnings []error) {
	now := m.now()
	for _, s := range m.state.Load().sites {
		f, ok := s.src.(*fileCert)
		if !ok {
			continue
		}
		cert := f.cur.Load()
		leaf := cert.Leaf
		problem := func(key, format string, args ...any) {
			problems = append(problems, &SiteError{Site: s.index, Key: key, Err: fmt.Errorf(format, args...)})
		}
		warn := func(key, format string, args ...any) {
			warnings = append(warnings, &SiteError{Site: s.index, Key: key, Err: fmt.Errorf(format, args...)})
		}
		for j, h := range s.hosts {
			if !certCovers(leaf, h) {
				problem(fmt.Sprintf("hosts[%d]", j), "the certificate in %s does not cover %q (it is for %s)",
					f.certFile, h, strings.Join(leafNames(leaf), ", "))
			}
		}
		switch left := leaf.NotAfter.Sub(now); {
		case left <= 0:
			problem("tls.cert_file", "the certificate in %s expired on %s", f.certFile, leaf.NotAfter.UTC().Format(time.DateOnly))
		case now.Before(leaf.NotBefore):
			problem("tls.cert_file", "the certificate in %s is not valid before %s", f.certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
		case left < expiryWarning:
			warn("tls.cert_file", "the certificate in %s expires in %d days (%s); renew it", f.certFile,
				int(left.Hours()/24), leaf.NotAfter.UTC().Format(time.DateOnly))
		}
		if !selfSigned(leaf) && !issuerIncluded(leaf, cert.Certificate[1:]) {
			warn("tls.cert_file", "%s holds the certificate without its intermediate (issuer %q): browsers may cope, "+
				"but WeChat on Android and other clients that do not fetch intermediates fail; append the CA's chain (fullchain.pem)",
				f.certFile, leaf.Issuer.String())
		}
		switch k := leaf.PublicKey.(type) {
		case *rsa.PublicKey:
			if bits := k.N.BitLen(); bits < minRSABits {
				problem("tls.key_file", "%s is a %d-bit RSA key; use at least %d bits (or ECDSA P-256)", f.keyFile, bits, minRSABits)
			}
		case *ecdsa.PublicKey:
			if bits := k.Curve.Params().BitSize; bits < minECDSABits {
				problem("tls.key_file", "%s is an ECDSA key on %s; use P-256 or stronger", f.keyFile, k.Curve.Params().Name)
			}
		}
	}
	return problems, warnings
}

// certCovers reports whether leaf is valid for the configured host: a
// name covered by the certificate's names (its wildcards included) or,
// for a wildcard host, the same wildcard.
func certCovers(leaf *x509.Certificate, host string) bool {
	if strings.HasPrefix(host, "*.") {
		return covers(leaf, host)
	}
	return leaf.VerifyHostname(strings.TrimSuffix(host, ".")) == nil
}

func leafNames(leaf *x509.Certificate) []string {
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		names = []string{"no names"}
	}
	return names
}

// selfSigned reports whether c signed itself.
func selfSigned(c *x509.Certificate) bool {
	return c.CheckSignatureFrom(c) == nil
}

// issuerIncluded reports whether one of the DER certificates is the
// issuer of leaf.
func issuerIncluded(leaf *x509.Certificate, rest [][]byte) bool {
	for _, der := range rest {
		c, err := x509.ParseCertificate(der)
		if err == nil && leaf.CheckSignatureFrom(c) == nil {
			return true
		}
	}
	return false
}
