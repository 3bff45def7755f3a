package tlsconf

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"os"
	"sync/atomic"
	"time"
)

// defaultWatchInterval is how often certificate files are checked for
// changes when Options.WatchInterval is zero.
const defaultWatchInterval = 2 * time.Second

// fileCert is the certSource of a cert_file/key_file site. It serves the
// pair as last loaded successfully; the file watcher of [Manager.Run]
// replaces it when the files change, and a pair that no longer loads
// leaves the old certificate in place.
type fileCert struct {
	site              int
	hosts             []string
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]

	// Guarded by Manager.reload: the contents loaded (or last tried and
	// failed, already logged) and the contents seen on the previous check,
	// which must stay the same for one interval before they are loaded,
	// so that a file being written is not read half-way.
	loaded, failed, seen [sha256.Size]byte
}

func (f *fileCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cur.Load(), nil
}

func (f *fileCert) served() []servedCert {
	return []servedCert{{hosts: f.hosts, file: f.certFile, cert: f.cur.Load()}}
}

// fileContents reads a certificate and key file pair and returns their
// contents, the errors reading them and a digest of all that.
type fileContents struct {
	certPEM, keyPEM []byte
	certErr, keyErr error
	sum             [sha256.Size]byte
}

func readPair(certFile, keyFile string) fileContents {
	var c fileContents
	c.certPEM, c.certErr = os.ReadFile(certFile)
	c.keyPEM, c.keyErr = os.ReadFile(keyFile)
	h := sha256.New()
	for _, part := range [][]byte{c.certPEM, {0}, c.keyPEM, {0}} {
		h.Write(part)
	}
	for _, err := range []error{c.certErr, c.keyErr} {
		if err != nil {
			h.Write([]byte(err.Error()))
		}
		h.Write([]byte{0})
	}
	copy(c.sum[:], h.Sum(nil))
	return c
}

// reload loads the files again if their contents changed since they were
// last loaded, once the files have read the same on two consecutive
// calls. It returns whether the certificate changed, and why the new
// contents cannot be used; the old certificate stays in use then. A
// failure is reported once per distinct contents.
func (f *fileCert) reload() (changed bool, err error) {
	c := readPair(f.certFile, f.keyFile)
	prev := f.seen
	f.seen = c.sum
	switch {
	case c.sum == f.loaded:
		return false, nil
	case c.sum != prev:
		return false, nil // changed since the last look: wait for it to settle
	case c.sum == f.failed:
		return false, nil // already reported
	}
	cert, errs := parseKeyPair(f.site, f.certFile, c.certPEM, c.certErr, f.keyFile, c.keyPEM, c.keyErr)
	if errs != nil {
		f.failed = c.sum
		return false, errors.Join(errs...)
	}
	f.loaded, f.failed = c.sum, [sha256.Size]byte{}
	f.cur.Store(cert)
	return true, nil
}

// reloadFiles reloads the file sites of the current table whose files
// changed, and logs what happened; the caller holds m.reload. A pair
// that does not load keeps serving its previous certificate. Open
// connections are not affected.
func (m *Manager) reloadFiles() {
	now := m.now()
	for _, s := range m.state.Load().sites {
		f, ok := s.src.(*fileCert)
		if !ok {
			continue
		}
		changed, err := f.reload()
		switch {
		case err != nil:
			m.log.Error("certificate files changed but cannot be loaded; still serving the previous certificate",
				"site", s.index, "hosts", s.hosts, "err", err)
		case changed:
			info := newCertInfo(s.index, s.source, f.served()[0])
			m.log.Info("certificate reloaded", "site", s.index, "hosts", s.hosts, "file", f.certFile,
				"serial", info.Serial, "not_after", info.NotAfter)
			m.warnValidity(info, now)
		}
	}
}

// watchFiles checks the certificate files every interval until ctx ends.
func (m *Manager) watchFiles(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.reload.Lock()
		m.reloadFiles()
		m.reload.Unlock()
	}
}
