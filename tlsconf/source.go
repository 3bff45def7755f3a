package tlsconf

import (
	"crypto/tls"
	"slices"
	"time"

	"github.com/wssgate/wssgate/internal/hostmatch"
)

// certSource supplies a site's certificate during a handshake. Every kind
// of certificate sits behind it: internal certificates ([fixedCert]),
// cert_file/key_file pairs ([*fileCert], replaced when the files change)
// and ACME ([*acmeCert], whose GetCertificate passes tls-alpn-01
// challenge hellos to golang.org/x/crypto/acme/autocert.Manager).
// Implementations must be safe for concurrent use.
type certSource interface {
	// GetCertificate returns the certificate for a handshake.
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// served returns the certificates served now, for display: one per
	// certificate, each with the hosts it is served for.
	served() []servedCert
}

// servedCert is one certificate a source serves. cert is nil when the
// source has none yet (an ACME order still pending or failed); problem
// then says why. problem may be set with a cert too (renewal overdue).
type servedCert struct {
	hosts   []string
	file    string
	cert    *tls.Certificate
	problem string
}

// fixedCert is a certSource that always returns one certificate, loaded
// before the table it sits in was published.
type fixedCert struct {
	cert  *tls.Certificate
	hosts []string
	file  string
}

func (f fixedCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cert, nil
}

func (f fixedCert) served() []servedCert {
	return []servedCert{{hosts: f.hosts, file: f.file, cert: f.cert}}
}

// site is one configured site as the handshake sees it.
type site struct {
	index  int
	hosts  []string
	source string // SourceFile, SourceInternal or SourceACME
	src    certSource
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
	for _, h := range s.hosts {
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
	// SourceACME is a certificate obtained from the ACME CA (tls.acme).
	SourceACME = "acme"
)

// CertInfo describes a certificate a site serves, for display.
type CertInfo struct {
	// Site is the index of the site in config.Config.Sites.
	Site int
	// Hosts are the configured hosts this certificate is served for: all
	// the site's hosts, except for ACME, which has a certificate per host.
	Hosts []string
	// Source is where the certificate comes from: [SourceFile],
	// [SourceInternal] or [SourceACME].
	Source string
	// File is the PEM file the certificate was read from or stored in.
	File string
	// Problem is why there is no certificate yet (an ACME order pending or
	// failed, an internal certificate not issued), or what is wrong with
	// the one served (an ACME renewal overdue); "" when all is well.
	// Without a certificate the fields below are zero.
	Problem string
	// Names are the DNS names and IP addresses the leaf certificate is
	// valid for.
	Names []string
	// Subject and Issuer are the leaf's subject and issuer names.
	Subject, Issuer string
	// Serial is the leaf's serial number, in hex.
	Serial string
	// NotBefore and NotAfter bound the leaf's validity.
	NotBefore, NotAfter time.Time
	// Chain is the number of certificates served: the leaf plus the
	// intermediates sent with it.
	Chain int
}

// newCertInfo describes what s serves for site i.
func newCertInfo(i int, source string, s servedCert) CertInfo {
	info := CertInfo{
		Site:    i,
		Hosts:   slices.Clone(s.hosts),
		Source:  source,
		File:    s.file,
		Problem: s.problem,
	}
	if s.cert == nil || s.cert.Leaf == nil {
		if info.Problem == "" {
			info.Problem = "no certificate"
		}
		return info
	}
	leaf := s.cert.Leaf
	info.Names = slices.Clone(leaf.DNSNames)
	info.Subject = leaf.Subject.String()
	info.Issuer = leaf.Issuer.String()
	info.Serial = leaf.SerialNumber.Text(16)
	info.NotBefore = leaf.NotBefore
	info.NotAfter = leaf.NotAfter
	info.Chain = len(s.cert.Certificate)
	for _, ip := range leaf.IPAddresses {
		info.Names = append(info.Names, ip.String())
	}
	return info
}
