package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/wssgate/wssgate/admin"
	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/gateway/pushapi"
	"github.com/wssgate/wssgate/internal/listeners"
	"github.com/wssgate/wssgate/proxy"
)

// An endpoint serves one listener's socket: the https and http servers,
// the admin server and the gateway's listeners. A reload keeps an
// endpoint whose address and settings are unchanged, and replaces the
// others: the new endpoint starts accepting on the socket before the old
// one stops, and the old one finishes its requests. Upgraded WebSocket
// connections belong to the proxy or the gateway, never to an endpoint,
// so replacing one does not touch them.
type endpoint struct {
	name     config.Listener
	addr     string
	settings string // what it was built with: a reload replaces it when they change
	sock     *listeners.Socket
	ln       net.Listener // its share of sock
	serve    func(net.Listener) error
	halt     func(context.Context) // stop accepting, finish requests until ctx ends
	stopping atomic.Bool
	done     chan struct{} // closed when serve has returned
}

// endpointSpec says how to build an endpoint for a configuration.
type endpointSpec struct {
	name     config.Listener
	addr     string
	settings string
	build    func() *endpoint
}

// endpointSpecs lists the endpoints cfg asks for. It reads the secrets
// they need, so that a reload with an unreadable secret changes nothing.
func (s *Server) endpointSpecs(cfg *config.Config) ([]endpointSpec, error) {
	lim := cfg.Limits
	limits := fmt.Sprint(lim.HandshakeTimeout, lim.ReadTimeout, lim.KeepaliveTimeout, lim.MaxHeaderBytes)
	httpServer := func(h http.Handler, component string) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: lim.HandshakeTimeout, // also bounds the TLS handshake
			ReadTimeout:       lim.ReadTimeout,      // cleared when a WebSocket is hijacked
			IdleTimeout:       lim.KeepaliveTimeout,
			MaxHeaderBytes:    lim.MaxHeaderBytes,
			// Failed TLS handshakes from scanners are noise at Info.
			ErrorLog: slog.NewLogLogger(s.log.With("component", component).Handler(), slog.LevelDebug),
		}
	}
	specs := []endpointSpec{{name: config.ListenerHTTPS, addr: cfg.Listen.HTTPS, settings: limits, build: func() *endpoint {
		srv := httpServer(s.proxy, "http")
		srv.TLSConfig = s.certs.TLSConfig()
		return httpEndpoint(srv, func(l net.Listener) error { return srv.ServeTLS(l, "", "") })
	}}}
	if cfg.Listen.HTTP != "" {
		httpsAddr := cfg.Listen.HTTPS
		specs = append(specs, endpointSpec{name: config.ListenerHTTP, addr: cfg.Listen.HTTP, settings: limits + " " + httpsAddr, build: func() *endpoint {
			// ACME http-01 challenges first, then the redirect.
			srv := httpServer(s.certs.HTTPHandler(redirectHandler(s.sockets.Addr(string(config.ListenerHTTPS), httpsAddr))), "http")
			return httpEndpoint(srv, srv.Serve)
		}})
	}
	adm, err := s.adminSpec(cfg)
	if err != nil {
		return nil, err
	}
	if adm != nil {
		specs = append(specs, *adm)
	}
	if g := s.gateway; g != nil {
		gws, err := s.gatewaySpecs(cfg, g, limits, httpServer)
		if err != nil {
			return nil, err
		}
		specs = append(specs, gws...)
		if g.gw != nil {
			specs = append(specs, g.gw.specs(cfg, g.hub)...)
		}
	}
	return specs, nil
}

// gatewaySpecs lists the gateway's endpoints: the text protocol, the
// standalone WebSocket listener and the push API.
func (s *Server) gatewaySpecs(cfg *config.Config, g *gatewayServer, limits string, httpServer func(http.Handler, string) *http.Server) ([]endpointSpec, error) {
	var specs []endpointSpec
	gc := cfg.Gateway
	if gc.TextListen != "" {
		specs = append(specs, endpointSpec{name: config.ListenerGatewayText, addr: gc.TextListen, build: func() *endpoint {
			ctx, cancel := context.WithCancel(context.Background())
			return ctxEndpoint(cancel, func(l net.Listener) error { return g.hub.ServeText(ctx, l) })
		}})
	}
	if gc.WebSocketListen != "" {
		trusted, err := cfg.TrustedPrefixes()
		if err != nil {
			return nil, err
		}
		specs = append(specs, endpointSpec{name: config.ListenerGatewayWebSocket, addr: gc.WebSocketListen, settings: limits + fmt.Sprint(trusted), build: func() *endpoint {
			srv := httpServer(g.hub.WebSocketHandler(proxy.ClientAddrFunc(trusted)), "gateway-ws")
			return httpEndpoint(srv, srv.Serve)
		}})
	}
	if p := gc.PushAPI; p.Listen != "" {
		secret, err := cfg.PushAPISecret()
		if err != nil {
			return nil, err
		}
		if secret == "" {
			s.log.Info("push API off: set gateway.push_api.secret, secret_file or secret_env to turn it on")
			return specs, nil
		}
		api, err := pushapi.New(g.hub, pushapi.Options{Secret: secret, Logger: s.log})
		if err != nil {
			return nil, fmt.Errorf("gateway.push_api: %w", err)
		}
		sum := sha256.Sum256([]byte(secret))
		specs = append(specs, endpointSpec{name: config.ListenerPushAPI, addr: p.Listen, settings: fmt.Sprintf("%x", sum), build: func() *endpoint {
			g.addAPI(api)
			ctx, cancel := context.WithCancel(context.Background())
			return ctxEndpoint(cancel, func(l net.Listener) error { return api.Serve(ctx, l) })
		}})
	}
	return specs, nil
}

// adminSpec is the admin listener's endpoint, or nil when admin.listen
// is "". A reload that changes the token or pprof replaces it.
func (s *Server) adminSpec(cfg *config.Config) (*endpointSpec, error) {
	a := cfg.Admin
	if a.Listen == "" {
		return nil, nil
	}
	token, err := cfg.AdminToken()
	if err != nil {
		return nil, err
	}
	if err := admin.CheckBind(a.Listen, token); err != nil {
		return nil, fmt.Errorf("admin.listen: %w", err)
	}
	srv, err := admin.New(admin.Options{Snapshot: s.Snapshot, Ready: s.isReady, Token: token, Pprof: a.Pprof, Logger: s.log})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(token))
	return &endpointSpec{name: config.ListenerAdmin, addr: a.Listen, settings: fmt.Sprintf("%x %v", sum, a.Pprof), build: func() *endpoint {
		ctx, cancel := context.WithCancel(context.Background())
		return ctxEndpoint(cancel, func(l net.Listener) error { return srv.Serve(ctx, l) })
	}}, nil
}

// isReady reports whether the server wants new connections: not while
// it drains after an upgrade or shuts down.
func (s *Server) isReady() bool { return !s.draining.Load() }

// httpEndpoint is an endpoint run by an http.Server.
func httpEndpoint(srv *http.Server, serve func(net.Listener) error) *endpoint {
	return &endpoint{serve: serve, halt: func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
	}}
}

// ctxEndpoint is an endpoint whose serve returns once cancel is called.
func ctxEndpoint(cancel context.CancelFunc, serve func(net.Listener) error) *endpoint {
	e := &endpoint{serve: serve}
	e.halt = func(context.Context) {
		cancel()
		e.ln.Close()
	}
	return e
}

// openSockets opens the sockets specs need that are not open yet. On
// failure it closes those it opened and changes nothing else.
func (s *Server) openSockets(cfg *config.Config, specs []endpointSpec) (opened []*listeners.Socket, err error) {
	for _, sp := range specs {
		sock, isNew, err := s.sockets.Open(string(sp.name), sp.addr)
		if err != nil {
			for _, o := range opened {
				s.sockets.Remove(o)
			}
			return nil, cfg.Errorf(sp.name.Key(), "%v", err)
		}
		if isNew {
			opened = append(opened, sock)
		}
	}
	return opened, nil
}

// startEndpoint builds the endpoint sp describes on its (open) socket
// and starts it serving. The caller holds s.mu, or is New.
func (s *Server) startEndpoint(sp endpointSpec) *endpoint {
	e := sp.build()
	e.name, e.addr, e.settings = sp.name, sp.addr, sp.settings
	e.sock = s.sockets.Lookup(string(sp.name), sp.addr)
	e.ln = e.sock.Listener()
	e.done = make(chan struct{})
	go func() { // owned by e: stop waits for done, or for its deadline
		defer close(e.done)
		err := e.serve(e.ln)
		if err == nil || errors.Is(err, http.ErrServerClosed) || e.stopping.Load() {
			return
		}
		s.failed(fmt.Errorf("%s %s: %w", e.name.Key(), e.addr, err))
	}()
	s.endpoints[sp.name] = e
	return e
}

// stop stops e accepting and waits for its requests, and for its serve
// goroutine to return, until ctx ends.
func (e *endpoint) stop(ctx context.Context) {
	e.stopping.Store(true)
	e.halt(ctx)
	select {
	case <-e.done:
	case <-ctx.Done():
	}
}

// Addr returns the address the listener l is bound to, or "" when it is
// not served.
func (s *Server) Addr(l config.Listener) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.endpoints[l]; e != nil {
		return e.sock.Addr().String()
	}
	return ""
}
