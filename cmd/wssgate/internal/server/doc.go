// Package server runs wssgate: it builds TLS, the proxy and the bundled
// gateway from a configuration, serves them on the process's listening
// sockets, and carries out reloads, binary upgrades, the drain that
// follows one, and the graceful stop.
//
// A [Server] is built by [New] and served by [Server.Run] until its
// context ends. [Server.Reload] applies a changed configuration all or
// nothing: the new routes, certificates and endpoints are prepared
// before anything switches, and a bad file leaves the running one
// untouched. [Server.Upgrade] hands the sockets to a new binary
// (wssgate upgrade), after which this process drains.
//
// Each configured listener is served by an endpoint: the https server,
// the http redirect, the admin server, the gateway's text protocol, its
// standalone WebSocket listener and the push API. An endpoint accepts
// through a share of a socket of the listeners package, so a reload can
// replace it (new limits, a new token) on the same socket with no
// moment in which nobody accepts. Upgraded WebSocket connections belong
// to the proxy or the gateway, never to an endpoint.
//
// The package lives under cmd/wssgate, not at the top level, because it
// is the one place that puts the four product packages (config,
// tlsconf, proxy, gateway) together, and its API is the process's:
// signals, the PID file, sd_notify and the handoff to a new binary are
// not a library for other programs. package main keeps the command
// line: flags, the control commands, validate, certs and the banner.
package server
