package config

import (
	"encoding/base64"
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
)

// ACME directory URLs of Let's Encrypt.
const (
	// LetsEncryptProduction is the default tls.acme.directory_url.
	LetsEncryptProduction = "https://acme-v02.api.letsencrypt.org/directory"
	// LetsEncryptStaging issues untrusted certificates under much higher
	// rate limits: use it to try a new setup first.
	LetsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// ACME configures the ACME certificate authority used by sites with
// tls.acme: true.
type ACME struct {
	// Email is the contact address registered with the CA, which uses it
	// to warn about expiring certificates and policy changes. Empty
	// registers without one.
	Email string `yaml:"email"`
	// DirectoryURL is the CA's ACME directory. Default
	// [LetsEncryptProduction]; [LetsEncryptStaging] for trying a setup.
	DirectoryURL string `yaml:"directory_url"`
	// CacheDir keeps the ACME account key and the certificates, created
	// with mode 0700. Each directory URL gets its own subdirectory, so a
	// staging certificate is never served once directory_url says
	// production. Empty means the user's config directory:
	// ~/.config/wssgate/acme on Linux (os.UserConfigDir).
	CacheDir string `yaml:"cache_dir"`
	// EABKeyID and EABHMACKey are the External Account Binding that some
	// CAs (ZeroSSL, Google Trust Services, many private CAs) hand out to
	// tie the ACME account to an account with them. Give both or neither;
	// the HMAC key is base64url, as the CA shows it.
	EABKeyID   string `yaml:"eab_kid"`
	EABHMACKey string `yaml:"eab_hmac_key"`
	// CARoot is a PEM file of root certificates to trust, besides the
	// system's, for the ACME server's own HTTPS: for a private CA such as
	// step-ca. Empty trusts the system's roots only.
	CARoot string `yaml:"ca_root"`
}

// UsesACME reports whether any site has tls.acme: true.
func (c *Config) UsesACME() bool {
	for _, s := range c.Sites {
		if s.TLS.ACME {
			return true
		}
	}
	return false
}

// DecodeEABKey returns the External Account Binding HMAC key as bytes. CAs
// show it base64url-encoded, with or without padding.
func (a ACME) DecodeEABKey() ([]byte, error) {
	k := strings.TrimRight(strings.TrimSpace(a.EABHMACKey), "=")
	b, err := base64.RawURLEncoding.DecodeString(k)
	if err != nil {
		// Some CAs show standard base64; accept it too.
		if b2, err2 := base64.RawStdEncoding.DecodeString(k); err2 == nil {
			return b2, nil
		}
		return nil, fmt.Errorf("want the base64url HMAC key the CA gave, got something else (%v)", err)
	}
	return b, nil
}

func (a *ACME) validate(p *problems) {
	const key = "tls.acme"
	if a.Email != "" {
		if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
			p.add(key+".email", "want a plain address such as admin@example.com, got %q", a.Email)
		}
	}
	if u, err := url.Parse(a.DirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" {
		p.add(key+".directory_url", "want the https:// URL of an ACME directory such as %s, got %q", LetsEncryptStaging, a.DirectoryURL)
	}
	switch {
	case a.EABKeyID != "" && a.EABHMACKey == "":
		p.add(key+".eab_kid", "eab_kid needs eab_hmac_key")
	case a.EABKeyID == "" && a.EABHMACKey != "":
		p.add(key+".eab_hmac_key", "eab_hmac_key needs eab_kid")
	case a.EABHMACKey != "":
		if b, err := a.DecodeEABKey(); err != nil {
			p.add(key+".eab_hmac_key", "%v", err)
		} else if len(b) == 0 {
			p.add(key+".eab_hmac_key", "empty key")
		}
	}
}

// validateACME checks that every host of an ACME site can get a
// certificate from a public CA: a DNS name with at least two labels,
// no wildcard, no IP address.
func (s *Site) validateACME(p *problems, key string) {
	for j, h := range s.Hosts {
		hk := fmt.Sprintf("%s.hosts[%d]", key, j)
		switch name := strings.TrimSuffix(h, "."); {
		case checkHost(h) != nil:
			// reported with the other host checks
		case strings.HasPrefix(h, "*."):
			p.add(hk, "acme cannot get a certificate for wildcard host %q: that needs the DNS-01 challenge; list the names, or use cert_file/key_file", h)
		case isIP(h):
			p.add(hk, "acme needs a DNS name, not an IP address (%q)", h)
		case !strings.Contains(name, "."):
			p.add(hk, "acme needs a public DNS name such as chat.example.com, got %q", h)
		}
	}
}

func isIP(h string) bool {
	_, err := netip.ParseAddr(h)
	return err == nil
}
