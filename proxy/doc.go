// Package proxy is wssgate's edge: an http.Handler that picks a site by
// Host, a route by the longest path prefix on segment boundaries, and
// proxies WebSocket streams and plain HTTP requests to the route's
// upstreams, or serves files or a fixed response.
//
// WebSocket upgrades are checked at the edge (method, version, key,
// Origin), then opened toward one upstream of the route, trying the next
// when connecting or the handshake fails. Once both sides switched
// protocols the proxy relays frames unmodified but knows where each frame
// starts, so that it can speak for a side that vanished: a client whose
// upstream died without a close frame gets close 1011, an upstream whose
// client vanished gets close 1001, and [Proxy.Shutdown] sends 1001 to
// both sides of every stream.
//
// Plain HTTP goes through net/http/httputil.ReverseProxy with the same
// forwarding headers (X-Real-IP, X-Forwarded-For, -Proto, -Host), which
// are taken from the client only when it is a trusted proxy.
//
// [Proxy.Prepare] builds a table from a new configuration and
// [Prepared.Commit] swaps it in without disturbing what runs, and
// [Proxy.Stats] reports live connection and traffic counts per site,
// route and upstream, which outlive reloads.
package proxy
