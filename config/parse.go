package config

// This file holds the parsers and checks of single values: addresses,
// upstream URLs, prefixes, hosts, origins and header names.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// IsLoopback reports whether the listen address addr binds only the
// loopback interface: an IP in 127.0.0.0/8 or ::1, or "localhost". An
// empty host (":9180") binds every interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// cleanPrefix is path.Clean keeping a trailing slash.
func cleanPrefix(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// ParseUpstream parses and checks an upstream URL: scheme ws, wss, http or
// https, a host, and no query, fragment or user info.
func ParseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %q", s)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return nil, fmt.Errorf("scheme must be ws, wss, http or https, got %q", s)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("no host in %q", s)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("bad port in %q", s)
		}
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("no user info, query or fragment allowed in %q", s)
	}
	return u, nil
}

// TrustedPrefixes returns trusted_proxies parsed by [ParsePrefix], in
// order; nil when the list is empty. Each entry that does not parse is
// an [*Error] at its key ("trusted_proxies[1]"), all of them joined, and
// the prefixes are then nil.
func (c *Config) TrustedPrefixes() ([]netip.Prefix, error) {
	var (
		out  []netip.Prefix
		errs []error
	)
	for i, s := range c.TrustedProxies {
		pfx, err := ParsePrefix(s)
		if err != nil {
			errs = append(errs, c.Errorf(fmt.Sprintf("trusted_proxies[%d]", i), "%v", err))
			continue
		}
		out = append(out, pfx)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ParsePrefix parses a CIDR ("10.0.0.0/8") or a single address ("10.0.0.1").
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not a CIDR: %q", s)
		}
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an IP address or CIDR: %q", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func checkAddr(p *problems, key, addr string, mayBeEmpty bool) {
	if addr == "" {
		if !mayBeEmpty {
			p.add(key, "required")
		}
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(key, "want host:port such as \":443\" or \"127.0.0.1:8443\", got %q", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add(key, "bad port in %q", addr)
	}
}

func checkHost(h string) error {
	if _, err := netip.ParseAddr(h); err == nil {
		return nil // an IP literal, as clients send in Host and (for IPv4) SNI
	}
	name := strings.TrimPrefix(h, "*.")
	if name == "" || strings.ContainsAny(name, "/:*@ ") {
		return fmt.Errorf("want a host name such as chat.example.com or *.example.com (no scheme, port or path), got %q", h)
	}
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("bad host name %q", h)
		}
	}
	return nil
}

func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return fmt.Errorf("want an origin such as https://chat.example.com, got %q", o)
	}
	return nil
}

func hasScheme(u, prefix string) bool {
	return len(u) >= len(prefix) && strings.EqualFold(u[:len(prefix)], prefix)
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

func hopByHop(name string) bool {
	switch strings.ToLower(name) {
	case "connection", "upgrade", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
		"content-length":
		return true
	}
	return false
}
