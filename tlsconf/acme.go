package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/hostmatch"
)

// Timings of ACME certificate management.
const (
	// defaultACMEPoll is how often [Manager.Run] looks at every ACME host
	// when Options.ACMEPollInterval is zero: to pick up what autocert
	// renewed, and to retry a failed order once its backoff has passed.
	defaultACMEPoll = time.Minute
	// acmeRetryFirst is the wait after the first failed order for a host;
	// it doubles with each further failure up to acmeRetryMax. Let's
	// Encrypt allows 5 failed validations per host name and hour, and
	// autocert tries two challenges per order, so retrying sooner would
	// only earn a rate-limit error.
	acmeRetryFirst = 2 * time.Minute
	acmeRetryMax   = time.Hour
	// renewalOverdue is how long past autocert's renewal time (a third of
	// the lifetime, at most 30 days, before expiry) a certificate may go
	// unrenewed before a warning is logged, and then how often it is
	// logged again. autocert retries a failed renewal every 30-60 minutes.
	renewalOverdue = time.Hour
)

// acmeIssuer obtains the certificates of every ACME host through one
// autocert.Manager, which also answers tls-alpn-01 and http-01
// challenges and renews what it obtained. Handshakes never make it
// order: they get what [Manager.Run]'s loop stored for their host, so a
// name outside the configuration, or a burst of clients during an
// outage of the CA, costs no request to the CA.
type acmeIssuer struct {
	am       *autocert.Manager
	rec      *caRecorder
	log      *slog.Logger
	now      func() time.Time
	settings config.ACME
	cacheDir string // where autocert keeps its files: a subdirectory of cache_dir per directory URL
	hosts    map[string]*acmeHost
	order    []*acmeHost // in configuration order
	ctx      context.Context
	cancel   context.CancelFunc // ends every ACME request; called when Run returns
}

// acmeHost is one host name with an ACME certificate.
type acmeHost struct {
	name string
	cur  atomic.Pointer[tls.Certificate]
	// problem says why cur is nil or stale; "" when all is well.
	problem atomic.Pointer[string]

	// Used by the Run loop only.
	held     bool // autocert holds a certificate for it, so asking never orders
	failures int
	retryAt  time.Time
	warnedAt time.Time // last "renewal overdue" warning
}

func (h *acmeHost) setProblem(p string) { h.problem.Store(&p) }

func (h *acmeHost) getProblem() string {
	if p := h.problem.Load(); p != nil {
		return *p
	}
	return ""
}

// acmeCert is the certSource of an ACME site: a certificate per host.
type acmeCert struct {
	issuer *acmeIssuer
	hosts  []*acmeHost
}

// GetCertificate answers a tls-alpn-01 challenge through autocert and
// otherwise serves the stored certificate of the host asked for, or of
// the site's first host for another name (a client without SNI reaching
// the first site). It never orders a certificate.
func (a *acmeCert) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto {
		return a.issuer.am.GetCertificate(hello)
	}
	h := a.hosts[0]
	if x, ok := a.issuer.hosts[hostmatch.Normalize(hello.ServerName)]; ok && slices.Contains(a.hosts, x) {
		h = x
	}
	if c := h.cur.Load(); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("tlsconf: no certificate for %q yet: %s", h.name, h.getProblem())
}

func (a *acmeCert) served() []servedCert {
	out := make([]servedCert, len(a.hosts))
	for i, h := range a.hosts {
		out[i] = servedCert{hosts: []string{h.name}, file: filepath.Join(a.issuer.cacheDir, h.name), cert: h.cur.Load(), problem: h.getProblem()}
	}
	return out
}

// newACMEIssuer sets up autocert for the ACME sites of cfg and loads
// their certificates from the cache. Unless readOnly, it creates the
// cache directory.
func newACMEIssuer(cfg *config.Config, opts Options, log *slog.Logger, now func() time.Time) (*acmeIssuer, error) {
	s := cfg.TLS.ACME
	if s.DirectoryURL == "" {
		s.DirectoryURL = config.LetsEncryptProduction
	}
	base := s.CacheDir
	if base == "" {
		d, err := os.UserConfigDir()
		if err != nil {
			return nil, &KeyError{Key: "tls.acme.cache_dir", Err: fmt.Errorf("no default cache directory; set tls.acme.cache_dir: %w", err)}
		}
		base = filepath.Join(d, "wssgate", "acme")
	}
	a := &acmeIssuer{
		log:      log,
		now:      now,
		settings: cfg.TLS.ACME,
		cacheDir: filepath.Join(base, cacheSubdir(s.DirectoryURL)),
		hosts:    map[string]*acmeHost{},
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(a.cacheDir, 0o700); err != nil {
			return nil, &KeyError{Key: "tls.acme.cache_dir", Err: fmt.Errorf("acme cache: %w", err)}
		}
		if fi, err := os.Stat(base); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("ACME cache directory is accessible to other users; chmod 700 it", "dir", base, "mode", fi.Mode().Perm())
		}
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if s.CARoot != "" {
		pem, err := os.ReadFile(s.CARoot)
		if err != nil {
			return nil, &KeyError{Key: "tls.acme.ca_root", Err: fmt.Errorf("load %s: %w", s.CARoot, err)}
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, &KeyError{Key: "tls.acme.ca_root", Err: fmt.Errorf("load %s: %w", s.CARoot, ErrNoCertificate)}
		}
	}
	var eab *acme.ExternalAccountBinding
	if s.EABKeyID != "" {
		key, err := s.DecodeEABKey()
		if err != nil {
			return nil, &KeyError{Key: "tls.acme.eab_hmac_key", Err: err}
		}
		eab = &acme.ExternalAccountBinding{KID: s.EABKeyID, Key: key}
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.rec = &caRecorder{
		ctx: a.ctx,
		next: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   2,
			ForceAttemptHTTP2:     true,
		},
	}
	a.am = &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(a.cacheDir),
		HostPolicy: a.hostPolicy,
		Client: &acme.Client{
			DirectoryURL: s.DirectoryURL,
			HTTPClient:   &http.Client{Transport: a.rec, Timeout: time.Minute},
			UserAgent:    "wssgate",
		},
		Email:                  s.Email,
		ExternalAccountBinding: eab,
	}
	for _, sc := range cfg.Sites {
		if !sc.TLS.ACME {
			continue
		}
		for _, host := range sc.Hosts {
			name := hostmatch.Normalize(host)
			if _, ok := a.hosts[name]; ok {
				continue
			}
			h := &acmeHost{name: name}
			h.setProblem("not obtained yet")
			a.hosts[name] = h
			a.order = append(a.order, h)
			a.loadCached(h)
		}
	}
	return a, nil
}

// cacheSubdir names the cache subdirectory of a directory URL, such as
// "acme-v02.api.letsencrypt.org-directory", so that certificates of
// different CAs (staging and production) never mix.
func cacheSubdir(dirURL string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(dirURL, "https://"), "http://")
	s = strings.Trim(s, "/")
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		case r == '/':
			return '-'
		}
		return '_'
	}, s)
}

// loadCached serves h's certificate from autocert's cache file, if there
// is one for it. An expired one is served too, until a new one is
// obtained: clients then see a clear expiry error.
func (a *acmeIssuer) loadCached(h *acmeHost) {
	file := filepath.Join(a.cacheDir, h.name) // autocert.DirCache's name for the ECDSA certificate
	cert, err := readCached(file, h.name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return
	case err != nil:
		a.log.Warn("ACME cache file unusable; a new certificate will be ordered", "host", h.name, "file", file, "err", err)
		return
	}
	h.cur.Store(cert)
	h.setProblem("")
	a.log.Info("ACME certificate loaded from cache", "host", h.name, "file", file, "not_after", cert.Leaf.NotAfter)
}

// readCached parses an autocert cache file: the private key, then the
// chain; the leaf must be valid for host.
func readCached(file, host string) (*tls.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	key, err := parseKeyPEM(data)
	if err != nil {
		return nil, err
	}
	chain, err := parseChain(data, file)
	if err != nil {
		return nil, err
	}
	if !keyMatches(chain[0], key) {
		return nil, ErrKeyMismatch
	}
	if err := chain[0].VerifyHostname(host); err != nil {
		return nil, err
	}
	cert := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert, nil
}

// hostPolicy allows exactly the configured ACME hosts. autocert's
// http-01 handler passes the Host header as sent, port included.
func (a *acmeIssuer) hostPolicy(_ context.Context, host string) error {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if _, ok := a.hosts[hostmatch.Normalize(host)]; !ok {
		return fmt.Errorf("tlsconf: acme: %q is not the host of a site with tls.acme", host)
	}
	return nil
}

// run keeps every ACME host's certificate current until ctx ends: at once
// and then every poll interval.
func (a *acmeIssuer) run(ctx context.Context, poll time.Duration) {
	defer a.rec.closeIdle()
	defer a.cancel()
	stop := context.AfterFunc(ctx, a.cancel) // abort requests in flight
	defer stop()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		for _, h := range a.order {
			if ctx.Err() != nil {
				return
			}
			a.check(h)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check asks autocert for h's certificate: from its memory, from the
// cache, or, if it has none, by ordering one. An order is not attempted
// again before the backoff after a failed one has passed.
func (a *acmeIssuer) check(h *acmeHost) {
	now := a.now()
	if !h.held && now.Before(h.retryAt) {
		return
	}
	mark := a.rec.mark()
	// autocert picks the key type from the hello: offer ECDSA, so that
	// each host has exactly one certificate, ECDSA P-256.
	cert, err := a.am.GetCertificate(&tls.ClientHelloInfo{
		ServerName:   h.name,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
	})
	if err != nil {
		a.failed(h, err, mark, now)
		return
	}
	h.held, h.failures, h.retryAt = true, 0, time.Time{}
	h.setProblem("")
	old := h.cur.Swap(cert)
	switch {
	case old == nil:
		a.log.Info("ACME certificate obtained", "host", h.name, "issuer", cert.Leaf.Issuer.String(),
			"serial", cert.Leaf.SerialNumber.Text(16), "not_after", cert.Leaf.NotAfter)
	case !bytes.Equal(old.Certificate[0], cert.Certificate[0]):
		a.log.Info("ACME certificate renewed", "host", h.name, "issuer", cert.Leaf.Issuer.String(),
			"serial", cert.Leaf.SerialNumber.Text(16), "not_after", cert.Leaf.NotAfter)
	}
	a.checkRenewal(h, cert.Leaf, now)
}

// failed records a failed order for h and logs it once, with what the CA
// said and when the next try is.
func (a *acmeIssuer) failed(h *acmeHost, err error, mark uint64, now time.Time) {
	h.failures++
	delay := retryDelay(h.failures)
	h.retryAt = now.Add(delay)
	serving := "nothing: handshakes for this host fail until an order succeeds"
	if c := h.cur.Load(); c != nil {
		serving = fmt.Sprintf("the cached certificate, valid until %s", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	args := []any{"host", h.name, "err", err}
	if ca := a.rec.since(h.name, mark); ca != "" {
		args = append(args, "ca_error", ca)
	}
	args = append(args, "retry_in", delay, "serving", serving)
	a.log.Error("ACME order failed", args...)
	h.setProblem(fmt.Sprintf("last order failed (%v); next try at %s", err, h.retryAt.Format(time.RFC3339)))
}

// retryDelay is the wait before the next order after failures failed ones.
func retryDelay(failures int) time.Duration {
	d := acmeRetryFirst
	for i := 1; i < failures && d < acmeRetryMax; i++ {
		d *= 2
	}
	d = min(d, acmeRetryMax)
	return d + rand.N(d/10+1) // jitter, so that hosts drift apart
}

// checkRenewal warns, at most once per renewalOverdue, when autocert
// should have renewed leaf well before now but has not.
func (a *acmeIssuer) checkRenewal(h *acmeHost, leaf *x509.Certificate, now time.Time) {
	threshold := min(leaf.NotAfter.Sub(leaf.NotBefore)/3, 30*24*time.Hour)
	due := leaf.NotAfter.Add(-threshold)
	if now.Sub(due) < renewalOverdue || now.Sub(h.warnedAt) < renewalOverdue {
		return
	}
	h.warnedAt = now
	args := []any{"host", h.name, "not_after", leaf.NotAfter, "due", due}
	if ca := a.rec.since(h.name, 0); ca != "" {
		args = append(args, "ca_error", ca)
	}
	a.log.Warn("ACME certificate is overdue for renewal; still serving it, autocert retries every 30 to 60 minutes", args...)
	h.setProblem(fmt.Sprintf("renewal overdue since %s", due.UTC().Format(time.RFC3339)))
}
