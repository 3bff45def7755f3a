package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
)

// Sentinel errors for the failures callers branch on. Each maps to one
// HTTP status in [StatusFor].
var (
	// ErrUnknownHost: the Host header names no configured site (421).
	ErrUnknownHost = errors.New("proxy: unknown host")
	// ErrNoRoute: no route prefix matches the path (404).
	ErrNoRoute = errors.New("proxy: no route")
	// ErrNotWebSocket: a plain request reached a ws:// or wss:// route (426).
	ErrNotWebSocket = errors.New("proxy: route accepts only WebSocket upgrades")
	// ErrBadHandshake: a malformed WebSocket upgrade request (400).
	ErrBadHandshake = errors.New("proxy: bad websocket handshake")
	// ErrBadVersion: a WebSocket version other than 13 (426).
	ErrBadVersion = errors.New("proxy: unsupported websocket version")
	// ErrMethod: a WebSocket upgrade with a method other than GET (405).
	ErrMethod = errors.New("proxy: websocket upgrade needs GET")
	// ErrOriginNotAllowed: the Origin is not in allowed_origins (403).
	ErrOriginNotAllowed = errors.New("proxy: origin not allowed")
	// ErrTooManyConnections: max_connections reached (503).
	ErrTooManyConnections = errors.New("proxy: too many connections")
	// ErrShuttingDown: the proxy is stopping and takes no new streams (503).
	ErrShuttingDown = errors.New("proxy: shutting down")
	// ErrNoUpstream: every upstream of the route is down or failed (502).
	ErrNoUpstream = errors.New("proxy: no upstream available")
	// ErrUpstreamHandshake: an upstream answered the upgrade wrongly (502).
	ErrUpstreamHandshake = errors.New("proxy: bad upstream handshake")
)

// RouteError is a problem building one route from the configuration,
// such as an unreadable upstream_tls.ca_file.
type RouteError struct {
	Site, Route int    // indexes into the configuration's sites and routes
	Key         string // the key below the route, such as "upstream_tls.ca_file"
	Err         error
}

func (e *RouteError) Error() string { return "proxy: " + e.Path() + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *RouteError) Unwrap() error { return e.Err }

// Path is the configuration key path, such as
// "sites[0].routes[1].upstream_tls.ca_file", for [config.Source.Line].
func (e *RouteError) Path() string {
	p := fmt.Sprintf("sites[%d].routes[%d]", e.Site, e.Route)
	if e.Key != "" {
		p += "." + e.Key
	}
	return p
}

// statusClientClosed is logged (never sent) when the client went away
// before the response, as nginx and Caddy do.
const statusClientClosed = 499

// StatusFor maps an error from the proxy to the HTTP status sent to the
// client: the one place where failures become statuses.
func StatusFor(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrUnknownHost):
		return http.StatusMisdirectedRequest
	case errors.Is(err, ErrNoRoute):
		return http.StatusNotFound
	case errors.Is(err, ErrNotWebSocket), errors.Is(err, ErrBadVersion):
		return http.StatusUpgradeRequired
	case errors.Is(err, ErrBadHandshake):
		return http.StatusBadRequest
	case errors.Is(err, ErrMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, ErrOriginNotAllowed):
		return http.StatusForbidden
	case errors.Is(err, ErrTooManyConnections), errors.Is(err, ErrShuttingDown):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		return statusClientClosed
	case isTimeout(err):
		return http.StatusGatewayTimeout
	default:
		return http.StatusBadGateway
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
