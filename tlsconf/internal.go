package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wssgate/wssgate/internal/hostmatch"
)

// Lifetimes and file names of the internal CA.
const (
	// internalRootYears is how long a new internal root is valid.
	internalRootYears = 10
	// internalLeafValidity is how long a new internal leaf is valid.
	// Apple platforms reject leaves valid for more than 825 days even
	// under a user-installed root; a year stays well clear of that.
	internalLeafValidity = 365 * 24 * time.Hour
	// internalRenewBefore is how close to expiry a stored internal
	// certificate (root or leaf) is replaced rather than reused.
	internalRenewBefore = 30 * 24 * time.Hour

	rootCertName = "root.crt"
	rootKeyName  = "root.key"
	sitesDirName = "sites" // leaves, as sites/<first host>.crt and .key
)

// localCA is the internal root: a self-signed ECDSA P-256 certificate and
// key kept in dir, which issues leaves for sites with tls.internal.
type localCA struct {
	dir      string
	certFile string
	cert     *x509.Certificate
	key      crypto.Signer
	log      *slog.Logger
}

// defaultInternalDir returns os.UserConfigDir()/wssgate/internal.
func defaultInternalDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find a directory for internal certificates (set Options.InternalDir): %w", err)
	}
	return filepath.Join(d, "wssgate", "internal"), nil
}

// openLocalCA loads the root kept in dir, creating dir (mode 0700) and a
// new root when there is none or the stored one is about to expire. A
// root that exists but cannot be read or parsed is an error, never
// silently replaced: a user may have trusted it.
func openLocalCA(dir string, now time.Time, log *slog.Logger) (*localCA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("internal CA: %w", err)
	}
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("internal CA directory is accessible to other users; chmod 700 it", "dir", dir, "mode", fi.Mode().Perm())
	}
	ca := &localCA{
		dir:      dir,
		certFile: filepath.Join(dir, rootCertName),
		log:      log,
	}
	keyFile := filepath.Join(dir, rootKeyName)
	chain, err := readChain(ca.certFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ca, ca.create(keyFile, now)
	case err != nil:
		return nil, fmt.Errorf("internal CA: load %s: %w", ca.certFile, err)
	}
	key, err := readKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("internal CA: load %s: %w", keyFile, err)
	}
	if !keyMatches(chain[0], key) {
		return nil, fmt.Errorf("internal CA: load %s: %w in %s", keyFile, ErrKeyMismatch, ca.certFile)
	}
	if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("internal CA key is readable by other users; chmod 600 it", "file", keyFile, "mode", fi.Mode().Perm())
	}
	ca.cert, ca.key = chain[0], key
	if left := ca.cert.NotAfter.Sub(now); left < internalRenewBefore {
		log.Warn("internal CA expires soon or has expired; creating a new one, which must be trusted again",
			"file", ca.certFile, "not_after", ca.cert.NotAfter)
		return ca, ca.create(keyFile, now)
	}
	return ca, nil
}

// create makes a new root and stores it, key first.
func (ca *localCA) create(keyFile string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("internal CA: %w", err)
	}
	sn, err := serialNumber()
	if err != nil {
		return fmt.Errorf("internal CA: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject: pkix.Name{
			// A distinct name per root keeps trust stores from confusing
			// the roots of different machines or directories.
			CommonName:   fmt.Sprintf("wssgate internal CA %x", sn.Bytes()[:4]),
			Organization: []string{"wssgate internal (local development only)"},
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(internalRootYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	cert, err := createCert(tmpl, tmpl, key, key)
	if err != nil {
		return fmt.Errorf("internal CA: %w", err)
	}
	if err := writeKeyPair(ca.certFile, keyFile, cert, key); err != nil {
		return fmt.Errorf("internal CA: %w", err)
	}
	ca.cert, ca.key = cert, key
	ca.log.Info("created internal CA; trust its certificate to silence browser warnings", "file", ca.certFile)
	return nil
}

// leaf returns a certificate for hosts, reusing the one stored for them
// when it was issued by ca, covers every host and has more than
// internalRenewBefore left; otherwise it issues and stores a new one.
// The chain served is the leaf alone: clients trust the root itself.
func (ca *localCA) leaf(hosts []string, now time.Time) (cert *tls.Certificate, certFile string, err error) {
	dir := filepath.Join(ca.dir, sitesDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	name := fileName(hosts[0])
	certFile = filepath.Join(dir, name+".crt")
	keyFile := filepath.Join(dir, name+".key")

	reason := "none stored"
	chain, cerr := readChain(certFile)
	key, kerr := readKey(keyFile)
	switch {
	case errors.Is(cerr, fs.ErrNotExist) || errors.Is(kerr, fs.ErrNotExist):
	case cerr != nil:
		reason = fmt.Sprintf("unreadable: %v", cerr)
	case kerr != nil:
		reason = fmt.Sprintf("unreadable: %v", kerr)
	default:
		reason = ca.reusable(chain[0], key, hosts, now)
		if reason == "" {
			return &tls.Certificate{Certificate: [][]byte{chain[0].Raw}, PrivateKey: key, Leaf: chain[0]}, certFile, nil
		}
	}

	newKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	sn, err := serialNumber()
	if err != nil {
		return nil, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject: pkix.Name{
			CommonName:   hostmatch.Normalize(hosts[0]),
			Organization: []string{"wssgate internal (local development only)"},
		},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(internalLeafValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	for _, h := range hosts {
		if ip, err := netip.ParseAddr(h); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, hostmatch.Normalize(h))
		}
	}
	leaf, err := createCert(tmpl, ca.cert, newKey, ca.key)
	if err != nil {
		return nil, "", err
	}
	if err := writeKeyPair(certFile, keyFile, leaf, newKey); err != nil {
		return nil, "", err
	}
	ca.log.Info("issued internal certificate", "hosts", hosts, "file", certFile, "not_after", leaf.NotAfter, "reason", reason)
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: newKey, Leaf: leaf}, certFile, nil
}

// reusable returns why a stored leaf cannot be reused, or "" if it can.
func (ca *localCA) reusable(c *x509.Certificate, key crypto.Signer, hosts []string, now time.Time) string {
	switch {
	case !keyMatches(c, key):
		return "key does not match"
	case c.CheckSignatureFrom(ca.cert) != nil:
		return "issued by another CA"
	case now.Before(c.NotBefore):
		return "not valid yet"
	case c.NotAfter.Sub(now) < internalRenewBefore:
		return "expires soon"
	}
	for _, h := range hosts {
		if !covers(c, h) {
			return fmt.Sprintf("does not cover %q", h)
		}
	}
	return ""
}

// covers reports whether c names host literally, as an IP SAN or a DNS
// SAN ("*.example.com" must appear as such).
func covers(c *x509.Certificate, host string) bool {
	if ip, err := netip.ParseAddr(host); err == nil {
		return slices.ContainsFunc(c.IPAddresses, func(x net.IP) bool {
			a, ok := netip.AddrFromSlice(x)
			return ok && a.Unmap() == ip.Unmap()
		})
	}
	return slices.ContainsFunc(c.DNSNames, func(n string) bool { return hostmatch.Normalize(n) == hostmatch.Normalize(host) })
}

// fileName turns a host into a file name: lower case, "*" as "_".
func fileName(host string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '_'
	}, hostmatch.Normalize(host))
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1<<32)), nil // at least 5 bytes, never zero
}

func createCert(tmpl, parent *x509.Certificate, key crypto.Signer, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// writeKeyPair stores key (mode 0600) and then cert (mode 0644), each
// written to a temporary file and renamed into place so that a reader
// never sees half a file.
func writeKeyPair(certFile, keyFile string, cert *x509.Certificate, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
}

func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly once renamed
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// noCert is the certSource of a site without a certificate, in a
// ReadOnly Manager: handshakes fail, and problem says why.
type noCert struct {
	hosts   []string
	file    string
	problem string
}

func (n noCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return nil, fmt.Errorf("tlsconf: no certificate for %v: %s", n.hosts, n.problem)
}

func (n noCert) served() []servedCert {
	return []servedCert{{hosts: n.hosts, file: n.file, problem: n.problem}}
}

// storedInternal returns the internal certificate stored for hosts,
// without creating or issuing anything (for a ReadOnly Manager).
func (m *Manager) storedInternal(hosts []string) certSource {
	dir := m.internalDir
	if dir == "" {
		d, err := defaultInternalDir()
		if err != nil {
			return noCert{hosts: hosts, problem: err.Error()}
		}
		dir = d
	}
	name := fileName(hosts[0])
	certFile := filepath.Join(dir, sitesDirName, name+".crt")
	cert, errs := loadKeyPair(0, certFile, filepath.Join(dir, sitesDirName, name+".key"))
	switch {
	case errs != nil && errors.Is(errs[0], fs.ErrNotExist):
		return noCert{hosts: hosts, file: certFile, problem: "not issued yet: wssgate run issues it"}
	case errs != nil:
		return noCert{hosts: hosts, file: certFile, problem: errors.Join(errs...).Error()}
	}
	return fixedCert{cert: cert, hosts: hosts, file: certFile}
}
