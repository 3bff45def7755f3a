package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/gateway/pushapi"
	"github.com/wssgate/wssgate/proxy"
)

// A front serves one socket: the https and http servers, the admin
// server and the gateway's listeners. A reload keeps a front whose
// address and settings are unchanged, and replaces the others: the new
// front starts accepting on the socket before the old one stops, and the
// old one finishes its requests. Upgraded WebSocket connections belong
// to the proxy or the gateway, never to a front, so replacing a front
// does not touch them.
type front struct {
	name, addr string
	key        string // the settings it was built with
	sock       *socket
	view       *view
	serve      func(net.Listener) error
	stop       func(context.Context) // stop accepting, finish requests until ctx ends
	stopping   atomic.Bool
	done       chan struct{}
}

// frontSpec says how to build a front for a configuration.
type frontSpec struct {
	name, addr, key string
	build           func() *front
}

// frontSpecs lists the fronts cfg asks for. It reads the secrets they
// need, so that a reload with an unreadable secret changes nothing.
func (s *server) frontSpecs(cfg *config.Config) ([]frontSpec, error) {
	lim := cfg.Limits
	limKey := fmt.Sprint(lim.HandshakeTimeout, lim.ReadTimeout, lim.KeepaliveTimeout, lim.MaxHeaderBytes)
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
	specs := []frontSpec{{name: "https", addr: cfg.Listen.HTTPS, key: limKey, build: func() *front {
		srv := httpServer(s.proxy, "http")
		srv.TLSConfig = s.certs.TLSConfig()
		return httpFront(srv, func(l net.Listener) error { return srv.ServeTLS(l, "", "") })
	}}}
	if cfg.Listen.HTTP != "" {
		httpsAddr := cfg.Listen.HTTPS
		specs = append(specs, frontSpec{name: "http", addr: cfg.Listen.HTTP, key: limKey + " " + httpsAddr, build: func() *front {
			// ACME http-01 challenges first, then the redirect.
			srv := httpServer(s.certs.HTTPHandler(redirectHandler(s.sockets.addr("https", httpsAddr))), "http")
			return httpFront(srv, srv.Serve)
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
		gc := cfg.Gateway
		if gc.TextListen != "" {
			specs = append(specs, frontSpec{name: "gateway_text", addr: gc.TextListen, build: func() *front {
				ctx, cancel := context.WithCancel(context.Background())
				return ctxFront(cancel, func(l net.Listener) error { return g.hub.ServeText(ctx, l) })
			}})
		}
		if gc.WebSocketListen != "" {
			trusted, err := parseTrusted(cfg.TrustedProxies)
			if err != nil {
				return nil, err
			}
			specs = append(specs, frontSpec{name: "gateway_websocket", addr: gc.WebSocketListen, key: limKey + fmt.Sprint(trusted), build: func() *front {
				srv := httpServer(g.hub.WebSocketHandler(proxy.ClientAddrFunc(trusted)), "gateway-ws")
				return httpFront(srv, srv.Serve)
			}})
		}
		if p := gc.PushAPI; p.Listen != "" {
			secret, err := readSecret("gateway.push_api", p.Secret, p.SecretFile, p.SecretEnv)
			if err != nil {
				return nil, err
			}
			if secret == "" {
				s.log.Info("push API off: set gateway.push_api.secret, secret_file or secret_env to turn it on")
			} else {
				api, err := pushapi.New(g.hub, pushapi.Options{Secret: secret, Logger: s.log})
				if err != nil {
					return nil, fmt.Errorf("gateway.push_api: %w", err)
				}
				sum := sha256.Sum256([]byte(secret))
				specs = append(specs, frontSpec{name: "push_api", addr: p.Listen, key: fmt.Sprintf("%x", sum), build: func() *front {
					g.addAPI(api)
					ctx, cancel := context.WithCancel(context.Background())
					return ctxFront(cancel, func(l net.Listener) error { return api.Serve(ctx, l) })
				}})
			}
		}
	}
	return specs, nil
}

// httpFront is a front run by an http.Server.
func httpFront(srv *http.Server, serve func(net.Listener) error) *front {
	return &front{serve: serve, stop: func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
	}}
}

// ctxFront is a front whose serve returns once cancel is called.
func ctxFront(cancel context.CancelFunc, serve func(net.Listener) error) *front {
	f := &front{serve: serve}
	f.stop = func(ctx context.Context) {
		cancel()
		f.view.Close()
		select {
		case <-f.done:
		case <-ctx.Done():
		}
	}
	return f
}

// openSockets opens the sockets specs need that are not open yet. On
// failure it closes those it opened and changes nothing else.
func (s *server) openSockets(cfg *config.Config, specs []frontSpec) (opened []*socket, err error) {
	for _, sp := range specs {
		sock, isNew, err := s.sockets.get(sp.name, sp.addr)
		if err != nil {
			for _, o := range opened {
				s.sockets.remove(o)
			}
			e := &config.Error{Key: listenKey(sp.name), Msg: err.Error()}
			if cfg.Source != nil {
				e.File, e.Line = cfg.Source.File, cfg.Source.Line(e.Key)
			}
			return nil, e
		}
		if isNew {
			opened = append(opened, sock)
		}
	}
	return opened, nil
}

// listenKey is the configuration key of a front's address.
func listenKey(name string) string {
	switch name {
	case "https", "http":
		return "listen." + name
	case "admin":
		return "admin.listen"
	case "gateway_text":
		return "gateway.text_listen"
	case "gateway_websocket":
		return "gateway.websocket_listen"
	case "push_api":
		return "gateway.push_api.listen"
	}
	return name
}

// startFront builds the front sp describes on its (open) socket and
// starts it serving.
func (s *server) startFront(sp frontSpec) *front {
	sock := s.sockets.lookup(sp.name, sp.addr)
	f := sp.build()
	f.name, f.addr, f.key, f.sock = sp.name, sp.addr, sp.key, sock
	f.view = sock.view()
	f.done = make(chan struct{})
	go func() {
		defer close(f.done)
		err := f.serve(f.view)
		if err == nil || errors.Is(err, http.ErrServerClosed) || f.stopping.Load() {
			return
		}
		select {
		case s.fatal <- fmt.Errorf("%s %s: %w", listenKey(f.name), f.addr, err):
		default:
		}
	}()
	s.fronts[sp.name] = f
	return f
}

// stopFront stops f accepting and waits for its requests until ctx ends.
func (f *front) stopFront(ctx context.Context) {
	f.stopping.Store(true)
	f.stop(ctx)
}

// addr returns the address the front called name listens on, or "" when
// there is none.
func (s *server) addr(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.fronts[name]; f != nil {
		return f.sock.ln.Addr().String()
	}
	return ""
}
