package tlsconf

import (
	"errors"
	"fmt"
)

// Sentinel errors wrapped by [*SiteError] for the failures a caller may
// want to tell apart; test for them with errors.Is.
var (
	// ErrNoCertificate means a certificate file holds no PEM
	// "CERTIFICATE" block.
	ErrNoCertificate = errors.New("no PEM certificate found")
	// ErrNoPrivateKey means a key file holds no PEM private key block.
	ErrNoPrivateKey = errors.New("no PEM private key found")
	// ErrKeyMismatch means the private key is not the key of the first
	// (leaf) certificate in the certificate file.
	ErrKeyMismatch = errors.New("private key does not match the certificate")
	// ErrRestartRequired is returned by [Manager.Prepare] for a change that
	// running listeners cannot pick up (tls.min_version). Nothing is
	// reloaded; the change needs new listeners, for example a restart.
	ErrRestartRequired = errors.New("needs a restart")
)

// SiteError is a problem with one site's certificate. Its text is
// "tlsconf: sites[N]: what is wrong", where what is wrong names the file
// involved, such as
//
//	tlsconf: sites[0]: load /etc/wssgate/chat.pem: open /etc/wssgate/chat.pem: no such file or directory
type SiteError struct {
	// Site is the index of the site in config.Config.Sites.
	Site int
	// Key is the configuration key within the site that the problem is
	// about: "tls.cert_file", "tls.key_file", "tls.internal", "tls" or
	// "hosts".
	Key string
	// Err is what went wrong.
	Err error
}

func (e *SiteError) Error() string { return fmt.Sprintf("tlsconf: sites[%d]: %v", e.Site, e.Err) }

// Unwrap returns e.Err.
func (e *SiteError) Unwrap() error { return e.Err }

// Path returns the full key path, such as "sites[0].tls.cert_file", for
// config.Source.Line.
func (e *SiteError) Path() string { return fmt.Sprintf("sites[%d].%s", e.Site, e.Key) }

// KeyError is a problem with a configuration key outside the sites, such
// as "tls.acme.ca_root". Its text is "tlsconf: KEY: what is wrong".
type KeyError struct {
	// Key is the full key path.
	Key string
	// Err is what went wrong.
	Err error
}

func (e *KeyError) Error() string { return fmt.Sprintf("tlsconf: %s: %v", e.Key, e.Err) }

// Unwrap returns e.Err.
func (e *KeyError) Unwrap() error { return e.Err }

// Path returns e.Key, for config.Source.Line.
func (e *KeyError) Path() string { return e.Key }
