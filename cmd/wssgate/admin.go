package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"

	"github.com/wssgate/wssgate/admin"
	"github.com/wssgate/wssgate/config"
)

// adminSpec is the admin listener's front, or nil when admin.listen is
// "". A reload that changes the token or pprof replaces the front.
func (s *server) adminSpec(cfg *config.Config) (*frontSpec, error) {
	a := cfg.Admin
	if a.Listen == "" {
		return nil, nil
	}
	token, err := adminToken(a)
	if err != nil {
		return nil, err
	}
	if err := admin.CheckBind(a.Listen, token); err != nil {
		return nil, fmt.Errorf("admin.listen: %w", err)
	}
	srv, err := admin.New(admin.Options{Snapshot: s.snapshot, Ready: s.isReady, Token: token, Pprof: a.Pprof, Logger: s.log})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(token))
	return &frontSpec{name: "admin", addr: a.Listen, key: fmt.Sprintf("%x %v", sum, a.Pprof), build: func() *front {
		ctx, cancel := context.WithCancel(context.Background())
		return ctxFront(cancel, func(l net.Listener) error { return srv.Serve(ctx, l) })
	}}, nil
}

// isReady reports whether the server wants new connections: not while it
// drains after an upgrade or shuts down.
func (s *server) isReady() bool { return !s.draining.Load() }
