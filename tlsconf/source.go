package tlsconf

import (
	"crypto/tls"
	"time"

	"github.com/wssgate/wssgate/internal/hostmatch"
)

// certSource supplies a site's certificate during a handshake. Every kind
// of certificate sits behind it: cert_file/key_file pairs and internal
// certificates ([fixedCert]) today, ACME later, since
// golang.org/x/crypto/acme/autocert.Manager's GetCertificate method
// already has this signature. Implementations must be safe for
// concurrent use.
type certSource interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// fixedCert is a certSource that always returns one certificate, loaded
// before the table it sits in was published.
type fixedCert struct{ cert *tls.Certificate }

func (f fixedCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cert, nil
}

// site is one configured site as the handshake sees it.
type site struct {
	src  certSource
	info CertInfo
}

// table is an immutable snapshot of every site's certificate, built by
// Manager.build and published through an atomic.Pointer, so a handshake
// reads it without locks.
type table struct {
	sites    []*site // in configuration order; sites[0] is the fallback
	hosts    hostmatch.Table[*site]
	rootFile string // internal root certificate file; "" if no site is internal
}

// add registers s under every host of its site. A host already taken by
// an earlier site stays with that site (config.Validate rejects such
// configurations anyway).
func (t *table) add(s *site) {
	t.sites = append(t.sites, s)
	for _, h := range s.info.Hosts {
		t.hosts.Add(h, s)
	}
}

// lookup returns the site for a ClientHello's server name: an exact host
// match, else a wildcard matching exactly one more label, else the first
// site (also for an empty name, a client that sent no SNI).
func (t *table) lookup(serverName string) *site {
	if s, ok := t.hosts.Lookup(serverName); ok {
		return s
	}
	return t.sites[0]
}

// Sources of a [CertInfo].
const (
	// SourceFile is a certificate loaded from tls.cert_file/tls.key_file.
	SourceFile = "file"
	// SourceInternal is a certificate issued by the internal CA.
	SourceInternal = "internal"
)

// CertInfo describes the certificate a site serves, for display.
type CertInfo struct {
	// Site is the index of the site in config.Config.Sites.
	Site int
	// Hosts are the site's configured hosts.
	Hosts []string
	// Source is where the certificate comes from: [SourceFile] or
	// [SourceInternal].
	Source string
	// File is the PEM file the certificate was read from or stored in.
	File string
	// Names are the DNS names and IP addresses the leaf certificate is
	// valid for.
	Names []string
	// Subject and Issuer are the leaf's subject and issuer names.
	Subject, Issuer string
	// NotBefore and NotAfter bound the leaf's validity.
	NotBefore, NotAfter time.Time
	// Chain is the number of certificates served: the leaf plus the
	// intermediates sent with it.
	Chain int
}

// newCertInfo describes cert, served for site i of hosts.
func newCertInfo(i int, hosts []string, source, file string, cert *tls.Certificate) CertInfo {
	leaf := cert.Leaf
	info := CertInfo{
		Site:      i,
		Hosts:     append([]string(nil), hosts...),
		Source:    source,
		File:      file,
		Names:     append([]string(nil), leaf.DNSNames...),
		Subject:   leaf.Subject.String(),
		Issuer:    leaf.Issuer.String(),
		NotBefore: leaf.NotBefore,
		NotAfter:  leaf.NotAfter,
		Chain:     len(cert.Certificate),
	}
	for _, ip := range leaf.IPAddresses {
		info.Names = append(info.Names, ip.String())
	}
	return info
}
