package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/hostmatch"
)

// Options configures a [Manager] beyond what config.Config holds.
type Options struct {
	// InternalDir is where the internal CA and the certificates it issues
	// (sites with tls.internal) are kept: root.crt and root.key (mode
	// 0600) for the CA, sites/HOST.crt and sites/HOST.key for each site,
	// named by its first host. Empty means
	// os.UserConfigDir()/wssgate/internal. It is created, mode 0700, only
	// when some site is internal.
	InternalDir string
	// Logger receives warnings (an expired certificate) and notices (a new
	// internal CA). Nil discards them.
	Logger *slog.Logger
	// Now is the clock for validity checks, new internal certificates and
	// ACME retry times. Nil means time.Now.
	Now func() time.Time
	// WatchInterval is how often [Manager.Run] checks cert_file/key_file
	// pairs for changes; a change is loaded once the files have read the
	// same on two checks in a row. Zero means 2s.
	WatchInterval time.Duration
	// ACMEPollInterval is how often [Manager.Run] looks at every ACME
	// host: to pick up renewed certificates and to retry failed orders
	// once their backoff (2 minutes, doubling to an hour) has passed.
	// Zero means one minute.
	ACMEPollInterval time.Duration
	// ReadOnly makes a Manager for inspection (wssgate validate and
	// certs): New writes nothing. The ACME cache directory is not
	// created, and internal certificates are only read from InternalDir:
	// a site whose certificate was never issued has none, and
	// [CertInfo.Problem] says so. Such a Manager must not serve.
	ReadOnly bool
}

// Manager holds the certificates of every site and builds the server's
// *tls.Config. It is safe for concurrent use; handshakes read the current
// certificates without locking.
type Manager struct {
	log         *slog.Logger
	now         func() time.Time
	internalDir string
	readOnly    bool
	minVersion  string
	base        *tls.Config
	watchEvery  time.Duration
	acmePoll    time.Duration
	acme        *acmeIssuer // nil when no site uses ACME
	running     atomic.Bool

	reload sync.Mutex // serializes Prepare, its commit and the file watcher; handshakes never take it
	state  atomic.Pointer[table]
}

// New loads the certificate of every site in cfg and returns a Manager
// serving them. cfg should have passed config.Validate; an empty
// cfg.TLS.MinVersion means "1.2". All problems with the sites'
// certificates are returned together, joined, one [*SiteError] each.
func New(cfg *config.Config, opts Options) (*Manager, error) {
	if cfg == nil {
		return nil, errors.New("tlsconf: nil config")
	}
	minVer, version, err := parseMinVersion(cfg.TLS.MinVersion)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		log:         opts.Logger,
		now:         opts.Now,
		internalDir: opts.InternalDir,
		readOnly:    opts.ReadOnly,
		minVersion:  minVer,
		watchEvery:  opts.WatchInterval,
		acmePoll:    opts.ACMEPollInterval,
	}
	if m.watchEvery <= 0 {
		m.watchEvery = defaultWatchInterval
	}
	if m.acmePoll <= 0 {
		m.acmePoll = defaultACMEPoll
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.log = m.log.With("component", "tlsconf")
	if m.now == nil {
		m.now = time.Now
	}
	if cfg.UsesACME() {
		if m.acme, err = newACMEIssuer(cfg, opts, m.log, m.now); err != nil {
			return nil, err
		}
	}
	m.base = &tls.Config{
		MinVersion:   version,
		CipherSuites: cipherSuites(),
		// "h2" lets browsers multiplex plain HTTPS requests. WebSocket
		// still always arrives over HTTP/1.1: Go's HTTP/2 server does not
		// advertise extended CONNECT (RFC 8441; only GODEBUG=http2xconnect=1
		// turns it on), so browsers never try WebSocket over h2 and open an
		// HTTP/1.1 connection for it.
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: m.getCertificate,
	}
	if m.acme != nil {
		// The tls-alpn-01 challenge: the CA's validation handshake offers
		// only this protocol, and the acmeCert source answers it.
		m.base.NextProtos = append(m.base.NextProtos, acme.ALPNProto)
	}
	t, err := m.build(cfg)
	if err != nil {
		return nil, err
	}
	m.state.Store(t)
	return m, nil
}

// TLSConfig returns a new server *tls.Config: MinVersion from
// tls.min_version, TLS 1.2 cipher suites limited to ECDHE with AEAD,
// ALPN "h2" and "http/1.1" (and "acme-tls/1" when a site uses ACME, for
// the tls-alpn-01 challenge), and GetCertificate choosing the site by SNI.
// The caller may adjust the copy it gets, slices included. Every copy
// reads m's current certificates, so a reload (see [Manager.Prepare])
// reaches all listeners.
func (m *Manager) TLSConfig() *tls.Config {
	c := m.base.Clone()
	c.CipherSuites = slices.Clone(c.CipherSuites)
	c.NextProtos = slices.Clone(c.NextProtos)
	return c
}

// getCertificate is the tls.Config.GetCertificate of every TLSConfig:
// one atomic load and two map lookups, no locks.
func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.state.Load().lookup(hello.ServerName).src.GetCertificate(hello)
}

// Prepare loads every certificate of cfg and returns the function that
// switches all handshakes to them. Until it is called nothing changes, so
// that a caller can check other parts of a configuration before it
// applies any. On error (one [*SiteError] per problem, joined) the old
// certificates stay in use. A changed tls.min_version, tls.acme block or
// set of ACME hosts cannot reach running listeners and the running ACME
// client: Prepare then returns an error wrapping [ErrRestartRequired].
// Certificate files are read afresh, so preparing and committing the
// running configuration reloads them.
func (m *Manager) Prepare(cfg *config.Config) (commit func(), err error) {
	if cfg == nil {
		return nil, errors.New("tlsconf: nil config")
	}
	minVer, _, err := parseMinVersion(cfg.TLS.MinVersion)
	if err != nil {
		return nil, err
	}
	if minVer != m.minVersion {
		return nil, fmt.Errorf("tlsconf: tls.min_version changed from %q to %q: %w", m.minVersion, minVer, ErrRestartRequired)
	}
	if err := m.sameACME(cfg); err != nil {
		return nil, err
	}
	m.reload.Lock()
	t, err := m.build(cfg)
	m.reload.Unlock()
	if err != nil {
		return nil, err
	}
	return func() {
		m.reload.Lock()
		defer m.reload.Unlock()
		m.state.Store(t)
		m.log.Info("certificates reloaded", "sites", len(t.sites))
	}, nil
}

// Certificates describes every certificate the sites serve, in site
// order: one per site, except ACME sites, which have one per host. The
// result is the caller's to keep.
func (m *Manager) Certificates() []CertInfo {
	var out []CertInfo
	for _, s := range m.state.Load().sites {
		for _, sc := range s.src.served() {
			out = append(out, newCertInfo(s.index, s.source, sc))
		}
	}
	return out
}

// RootCertFile returns the PEM file of the internal CA's root
// certificate, which users may add to their trust store to silence
// browser warnings for internal sites. It is "" when no site is internal.
func (m *Manager) RootCertFile() string { return m.state.Load().rootFile }

// build loads every site of cfg into a new table. It touches nothing
// that handshakes read.
func (m *Manager) build(cfg *config.Config) (*table, error) {
	if len(cfg.Sites) == 0 {
		return nil, errors.New("tlsconf: no sites; at least one is required")
	}
	now := m.now()
	t := &table{}
	var (
		errs   []error
		ca     *localCA
		caDone bool // ca opened, or its failure reported once
	)
	for i, sc := range cfg.Sites {
		s := &site{index: i, hosts: slices.Clone(sc.Hosts)}
		switch tc := sc.TLS; {
		case tc.ACME && (tc.Internal || tc.CertFile != "" || tc.KeyFile != ""):
			errs = append(errs, &SiteError{Site: i, Key: "tls", Err: errors.New("acme excludes internal and cert_file/key_file")})
			continue
		case tc.ACME:
			if m.acme == nil {
				errs = append(errs, &SiteError{Site: i, Key: "tls.acme", Err: fmt.Errorf("the first site with tls.acme %w", ErrRestartRequired)})
				continue
			}
			src := &acmeCert{issuer: m.acme}
			for _, h := range sc.Hosts {
				src.hosts = append(src.hosts, m.acme.hosts[hostmatch.Normalize(h)])
			}
			if len(src.hosts) == 0 || slices.Contains(src.hosts, nil) {
				errs = append(errs, &SiteError{Site: i, Key: "hosts", Err: fmt.Errorf("ACME hosts %v %w", sc.Hosts, ErrRestartRequired)})
				continue
			}
			s.source, s.src = SourceACME, src
		case tc.Internal && (tc.CertFile != "" || tc.KeyFile != ""):
			errs = append(errs, &SiteError{Site: i, Key: "tls", Err: errors.New("internal and cert_file/key_file exclude each other")})
			continue
		case tc.Internal:
			if len(sc.Hosts) == 0 {
				errs = append(errs, &SiteError{Site: i, Key: "hosts", Err: errors.New("an internal certificate needs at least one host")})
				continue
			}
			s.source = SourceInternal
			if m.readOnly {
				s.src = m.storedInternal(sc.Hosts)
				break
			}
			if !caDone {
				caDone = true
				var err error
				if ca, err = m.openCA(now); err != nil {
					errs = append(errs, &SiteError{Site: i, Key: "tls.internal", Err: err})
				}
			}
			if ca == nil {
				continue
			}
			cert, file, err := ca.leaf(sc.Hosts, now)
			if err != nil {
				errs = append(errs, &SiteError{Site: i, Key: "tls.internal", Err: fmt.Errorf("internal certificate for %v: %w", sc.Hosts, err)})
				continue
			}
			s.src = fixedCert{cert: cert, hosts: s.hosts, file: file}
			t.rootFile = ca.certFile
		case tc.CertFile != "" || tc.KeyFile != "":
			f := &fileCert{site: i, hosts: s.hosts, certFile: tc.CertFile, keyFile: tc.KeyFile}
			c := readPair(tc.CertFile, tc.KeyFile)
			cert, loadErrs := parseKeyPair(i, tc.CertFile, c.certPEM, c.certErr, tc.KeyFile, c.keyPEM, c.keyErr)
			if loadErrs != nil {
				errs = append(errs, loadErrs...)
				continue
			}
			f.cur.Store(cert)
			f.loaded, f.seen = c.sum, c.sum
			s.source, s.src = SourceFile, f
		default:
			errs = append(errs, &SiteError{Site: i, Key: "tls", Err: errors.New("no certificate: set cert_file and key_file, internal: true or acme: true")})
			continue
		}
		for _, sc := range s.src.served() {
			if sc.cert != nil {
				m.warnValidity(newCertInfo(i, s.source, sc), now)
			}
		}
		t.add(s)
	}
	if errs != nil {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// openCA opens the internal CA in the configured directory.
func (m *Manager) openCA(now time.Time) (*localCA, error) {
	dir := m.internalDir
	if dir == "" {
		var err error
		if dir, err = defaultInternalDir(); err != nil {
			return nil, err
		}
	}
	return openLocalCA(dir, now, m.log)
}

// warnValidity logs a certificate served outside its validity period.
// Serving it anyway keeps a site reachable for clients that ignore dates
// and makes the problem visible instead of failing to start.
func (m *Manager) warnValidity(info CertInfo, now time.Time) {
	switch {
	case now.After(info.NotAfter):
		m.log.Warn("certificate has expired; serving it anyway", "site", info.Site, "hosts", info.Hosts,
			"file", info.File, "not_after", info.NotAfter)
	case now.Before(info.NotBefore):
		m.log.Warn("certificate is not valid yet; serving it anyway", "site", info.Site, "hosts", info.Hosts,
			"file", info.File, "not_before", info.NotBefore)
	default:
		m.log.Debug("certificate loaded", "site", info.Site, "hosts", info.Hosts, "source", info.Source,
			"file", info.File, "not_after", info.NotAfter)
	}
}

// parseMinVersion maps tls.min_version to its normalized name and the
// crypto/tls constant. TLS 1.0 and 1.1 are never accepted.
func parseMinVersion(v string) (string, uint16, error) {
	switch v {
	case "", "1.2":
		return "1.2", tls.VersionTLS12, nil
	case "1.3":
		return "1.3", tls.VersionTLS13, nil
	}
	return "", 0, fmt.Errorf("tlsconf: tls.min_version: want \"1.2\" or \"1.3\", got %q", v)
}

// cipherSuites returns the TLS 1.2 suites offered: ECDHE key exchange
// with AEAD ciphers only, Mozilla's "intermediate" profile minus the DHE
// suites crypto/tls does not implement. TLS 1.3 suites are not
// configurable and all AEAD.
func cipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}
