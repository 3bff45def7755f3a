package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Backend timings and limits.
const (
	backendHandshakeTimeout = 10 * time.Second
	backendMaxMessage       = 1 << 20
)

// backendReadyPrefix starts the backend's first line on stdout; the
// listening address follows it.
const backendReadyPrefix = "wssbench backend listening "

// cmdBackend is the hidden "backend" subcommand: a WebSocket echo gateway
// that both proxies forward to. wssbench runs it as a child process of
// its own so that the backend's CPU and memory stay out of the tool's
// client and out of the proxy being measured. It serves until ctx ends
// (SIGTERM).
func cmdBackend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if err := serveBackend(ctx, *addr, stdout); err != nil {
		fmt.Fprintf(stderr, "wssbench backend: %v\n", err)
		return exitFail
	}
	return exitOK
}

// serveBackend listens on addr, prints backendReadyPrefix and the
// address to stdout, and echoes every WebSocket message back until ctx
// ends.
func serveBackend(ctx context.Context, addr string, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	up := &websocket.Upgrader{HandshakeTimeout: backendHandshakeTimeout}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { echo(up, w, r) }),
		ReadHeaderTimeout: backendHandshakeTimeout,
		IdleTimeout:       time.Minute,
	}
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	fmt.Fprintf(stdout, "%s%s\n", backendReadyPrefix, ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// echo upgrades the request and sends every message back with the same
// type, streaming it without a per-message buffer.
func echo(up *websocket.Upgrader, w http.ResponseWriter, r *http.Request) {
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered with an HTTP error
	}
	defer c.Close()
	c.SetReadLimit(backendMaxMessage)
	for {
		mt, rd, err := c.NextReader()
		if err != nil {
			return
		}
		wr, err := c.NextWriter(mt)
		if err != nil {
			return
		}
		if _, err := io.Copy(wr, rd); err != nil {
			return
		}
		if err := wr.Close(); err != nil {
			return
		}
	}
}

// startBackend runs self's backend subcommand on a free loopback port and
// returns the child and its address.
func startBackend(ctx context.Context, self, dir string) (*child, string, error) {
	cmd := exec.Command(self, "backend", "-addr", "127.0.0.1:0")
	c, lines, err := startChild(ctx, "backend", cmd, filepath.Join(dir, "backend.log"), firstLine)
	if err != nil {
		return nil, "", err
	}
	line := lines[0]
	addr, ok := strings.CutPrefix(line, backendReadyPrefix)
	if !ok {
		_ = c.stop()
		return nil, "", fmt.Errorf("backend: first line %q, want %q and an address", line, backendReadyPrefix)
	}
	return c, addr, nil
}
