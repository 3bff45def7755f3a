package tlsconf

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/hostmatch"
)

// Run keeps certificates current until ctx ends, then returns nil. It
// watches every cert_file/key_file pair and loads a changed pair (see
// Options.WatchInterval; a pair that no longer loads keeps its old
// certificate and the problem is logged), and it obtains, from the cache
// or by ordering, the certificate of every ACME host, picks up what
// autocert renews, and retries failed orders with backoff.
//
// Start the https listener (and the http one, with [Manager.HTTPHandler])
// before or with Run: the CA validates through them. When Run returns,
// requests to the CA in flight have been cancelled, and no certificate is
// ordered or renewed any more. Run may be called once.
func (m *Manager) Run(ctx context.Context) error {
	if m.readOnly {
		return errors.New("tlsconf: Run on a ReadOnly Manager")
	}
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("tlsconf: Run called twice")
	}
	var wg sync.WaitGroup
	wg.Go(func() { m.watchFiles(ctx, m.watchEvery) })
	if m.acme != nil {
		wg.Go(func() { m.acme.run(ctx, m.acmePoll) })
	}
	wg.Wait()
	return nil
}

// HTTPHandler returns the handler for the plain http listener: it answers
// the CA's http-01 challenges for ACME hosts (the port in the Host header
// is ignored) and passes every other request to fallback. Without ACME
// sites it returns fallback. Calling it is what lets autocert use http-01
// after tls-alpn-01.
func (m *Manager) HTTPHandler(fallback http.Handler) http.Handler {
	if m.acme == nil {
		return fallback
	}
	return m.acme.am.HTTPHandler(fallback)
}

// sameACME returns an error wrapping ErrRestartRequired when cfg's ACME
// settings or hosts differ from those m was made with.
func (m *Manager) sameACME(cfg *config.Config) error {
	hosts := map[string]bool{}
	for _, s := range cfg.Sites {
		if s.TLS.ACME {
			for _, h := range s.Hosts {
				hosts[hostmatch.Normalize(h)] = true
			}
		}
	}
	var have map[string]bool
	var settings config.ACME
	if m.acme != nil {
		have = map[string]bool{}
		for h := range m.acme.hosts {
			have[h] = true
		}
		settings = m.acme.settings
	}
	if len(hosts) > 0 && settings != cfg.TLS.ACME || !maps.Equal(hosts, have) && (len(hosts) > 0 || len(have) > 0) {
		return fmt.Errorf("tlsconf: ACME settings or hosts changed (now %v, were %v): %w",
			slices.Sorted(maps.Keys(hosts)), slices.Sorted(maps.Keys(have)), ErrRestartRequired)
	}
	return nil
}
