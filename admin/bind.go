package admin

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ErrNeedsToken is wrapped by the error of CheckBind (and Serve) for an
// address that is not loopback-only while no token is set.
var ErrNeedsToken = errors.New("admin: an admin listener off loopback needs a token")

// CheckBind reports whether the admin listener may listen on addr
// ("host:port") with token. Without a token the host must be a loopback
// address (127.0.0.0/8, ::1) or "localhost"; an empty host, 0.0.0.0,
// ::, any other host name or address is refused with an error wrapping
// ErrNeedsToken that says how to fix it. With a token any host is
// accepted. An addr that is not "host:port" is always an error.
func CheckBind(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin: listen address %q: %w", addr, err)
	}
	if token != "" {
		return nil
	}
	if why := notLoopback(host); why != "" {
		return fmt.Errorf("%w: %q %s; listen on 127.0.0.1 or [::1], or set a token", ErrNeedsToken, addr, why)
	}
	return nil
}

// notLoopback returns why host is not a loopback host, or "" if it is.
func notLoopback(host string) string {
	if host == "" {
		return "listens on every interface"
	}
	if strings.EqualFold(host, "localhost") {
		return ""
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "names a host other than localhost"
	}
	ip = ip.Unmap()
	switch {
	case ip.IsUnspecified():
		return "listens on every interface"
	case !ip.IsLoopback():
		return "is not a loopback address"
	}
	return ""
}
