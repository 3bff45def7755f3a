package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/gateway/chatpage"
	"github.com/wssgate/wssgate/internal/listeners"
	"github.com/wssgate/wssgate/proxy"
	"github.com/wssgate/wssgate/tlsconf"
)

// Options are what [New] needs besides the configuration. The zero
// value serves with no logs, no signals, no reloads and no upgrades.
type Options struct {
	// Logger is the process log; nil discards.
	Logger *slog.Logger
	// Level is the Logger's level, set from log.level at start and on
	// every reload; nil leaves the level alone.
	Level *slog.LevelVar
	// AccessLog receives one line per request and stream; nil: none.
	AccessLog *slog.Logger
	// InternalDir is where the local CA lives; "" is tlsconf's default
	// under the user's config directory.
	InternalDir string
	// Signals delivers SIGHUP (reload the configuration), SIGUSR1
	// (reopen the access log file) and SIGUSR2 (binary upgrade) to Run;
	// nil delivers none. Certificate files are also reloaded when they
	// change.
	Signals <-chan os.Signal
	// Load reads the configuration again for a reload; nil refuses
	// reloads.
	Load func() (*config.Config, error)
	// ReopenLogs reopens the access log file (SIGUSR1); nil does nothing.
	ReopenLogs func() error
	// Handover opens the listening sockets and starts a new binary with
	// them for a binary upgrade; nil opens them with net.Listen and
	// refuses upgrades.
	Handover Handover
	// Activated are sockets passed by systemd socket activation
	// (listeners.Activated), used for the configured addresses they are
	// bound to.
	Activated []net.Listener
	// CertWatch and ACMEPoll are tlsconf.Options.WatchInterval and
	// ACMEPollInterval; zero means tlsconf's defaults.
	CertWatch, ACMEPoll time.Duration
	// Version is the version status reports; "" reports "devel".
	Version string
}

// Handover opens the process's sockets and starts a new binary with
// them; *listeners.Handoff is the one wssgate uses.
type Handover interface {
	listeners.Source
	// Ready tells the process that started this one, if any, that this
	// one serves.
	Ready() error
	// Start starts the new binary with lns (by socket id) and returns
	// once it serves; it stops the new binary when ctx ends first.
	Start(ctx context.Context, lns map[string]net.Listener) error
}

// Server is a running edge: its sockets, TLS, proxy, gateway and the
// endpoints (HTTP servers and gateway listeners) serving the sockets.
type Server struct {
	log     *slog.Logger
	opts    Options
	certs   *tlsconf.Manager
	proxy   *proxy.Proxy
	sockets *listeners.Set
	gateway *gatewayServer // nil when nothing reaches the gateway
	started time.Time

	cfg      atomic.Pointer[config.Config]
	draining atomic.Bool
	fatal    chan error    // an endpoint whose socket failed
	stop     chan struct{} // closed by Shutdown
	stopOnce sync.Once
	done     chan struct{} // closed when Run has returned
	running  atomic.Bool   // Run was called
	endOnce  sync.Once     // the end of serving runs once

	mu        sync.Mutex // serializes reloads, handovers and the end of serving
	endpoints map[config.Listener]*endpoint
	retiring  retiring // endpoints a reload replaced, finishing their requests
	reloads   reloadState
	handover  handoverState
	handedOff chan struct{} // closed when a new process took the sockets over
	// handoverCtx ends when this process stops, and with it a new binary
	// still starting; handovers is the goroutine waiting for one.
	handoverCtx    context.Context
	cancelHandover context.CancelFunc
	handovers      sync.WaitGroup
}

// New builds TLS, the proxy and the gateway from cfg and opens the
// listeners. Any failure is returned as the problems found, each naming
// file, line and key where it can.
func New(cfg *config.Config, opts Options) (_ *Server, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	setLevel(opts.Level, cfg.Log)
	if warn := cfg.ApplyOpenFileLimit(config.OpenFileLimit()); warn != nil {
		log.Warn(warn.Error())
	}
	certs, err := tlsconf.New(cfg, tlsconf.Options{InternalDir: opts.InternalDir, Logger: log,
		WatchInterval: opts.CertWatch, ACMEPollInterval: opts.ACMEPoll})
	if err != nil {
		return nil, cfg.Positioned(err)
	}
	s := &Server{log: log, opts: opts, certs: certs, started: time.Now(),
		fatal: make(chan error, 8), stop: make(chan struct{}), done: make(chan struct{}),
		endpoints: map[config.Listener]*endpoint{}, handedOff: make(chan struct{})}
	s.handoverCtx, s.cancelHandover = context.WithCancel(context.Background())
	var src listeners.Source
	if opts.Handover != nil {
		src = opts.Handover
	}
	s.sockets = listeners.NewSet(listeners.Options{Source: src, Activated: opts.Activated, Failed: s.socketFailed, Logger: log.With("component", "listeners")})
	defer func() {
		if err != nil {
			s.sockets.CloseAll()
		}
	}()
	popts := proxy.Options{Logger: log, AccessLog: opts.AccessLog, ChatPage: chatpage.Handler()}
	if cfg.UsesGateway() {
		node, err := s.gatewayNode(cfg)
		if err != nil {
			return nil, err
		}
		if s.gateway, err = newGateway(cfg, node, log); err != nil {
			return nil, err
		}
		popts.Gateway = s.gateway.handler
	}
	if s.proxy, err = proxy.New(cfg, popts); err != nil {
		return nil, cfg.Positioned(err)
	}
	specs, err := s.endpointSpecs(cfg)
	if err != nil {
		return nil, err
	}
	if _, err = s.openSockets(cfg, specs); err != nil {
		return nil, err
	}
	s.applyCaps(cfg, specs)
	for _, sp := range specs {
		s.startEndpoint(sp)
	}
	s.cfg.Store(cfg)
	return s, nil
}

// gatewayNode is the address the gateway's client ids carry. With
// gateway.gatewayworker it is the inner address, whose socket is opened
// here when its port is 0, to learn the port.
func (s *Server) gatewayNode(cfg *config.Config) (netip.AddrPort, error) {
	if cfg.Gateway.GatewayWorker == nil {
		return cfg.GatewayNode()
	}
	return innerAddress(cfg, func(name config.Listener, addr string) (net.Addr, error) {
		sock, _, err := s.sockets.Open(string(name), addr)
		if err != nil {
			return nil, err
		}
		return sock.Addr(), nil
	})
}

// applyCaps sets the connection budget from the open-file limit and
// every listener's cap (limits.listener_connections), for cfg's
// listeners, whose sockets are open.
func (s *Server) applyCaps(cfg *config.Config, specs []endpointSpec) {
	budget := cfg.ConnectionBudget(config.OpenFileLimit())
	s.sockets.SetBudget(budget)
	for _, sp := range specs {
		if sock := s.sockets.Lookup(string(sp.name), sp.addr); sock != nil {
			sock.SetCap(cfg.ListenerCap(sp.name, budget))
		}
	}
}

// Config returns the configuration being served: the last one a reload
// applied.
func (s *Server) Config() *config.Config { return s.cfg.Load() }

// RootCertFile is the local CA's root certificate, for users to trust,
// or "" when no site uses the internal CA.
func (s *Server) RootCertFile() string { return s.certs.RootCertFile() }

// setLevel sets level from the log section.
func setLevel(level *slog.LevelVar, c config.Log) {
	if level == nil {
		return
	}
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.Level))
	level.Set(l)
}

// Run serves until ctx is done or Shutdown is called, then shuts down
// gracefully: listeners close, every WebSocket client gets close 1001,
// and what has not ended within shutdown_timeout is closed. After a
// binary upgrade handed the listeners to a new process, it drains
// instead: open connections are served until they end or drain_timeout
// passes, then shut down alike. It returns an error when a listener
// failed for good.
func (s *Server) Run(ctx context.Context) error {
	defer close(s.done)
	s.running.Store(true)
	select {
	case <-s.stop:
		s.endOnce.Do(s.shutdown)
		return nil
	default:
	}
	// Certificates: file changes, ACME orders and renewals. They stop
	// once the listeners have.
	certCtx, stopCerts := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Go(func() {
		if err := s.certs.Run(certCtx); err != nil {
			s.log.Error("certificate manager stopped", "err", err)
		}
	})
	defer func() {
		stopCerts()
		bg.Wait()
	}()
	gwCtx, stopGateway := context.WithCancel(context.Background())
	defer stopGateway()
	if s.gateway != nil {
		bg.Go(func() { s.gateway.run(gwCtx) })
	}
	if err := s.ready(); err != nil {
		s.log.Warn("could not report readiness", "err", err)
	}
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-s.stop:
			break loop
		case err := <-s.fatal:
			runErr = fmt.Errorf("serve: %w", err)
			break loop
		case <-s.handedOff:
			s.drain(ctx)
			break loop
		case sig := <-s.opts.Signals:
			s.onSignal(sig)
		}
	}
	s.endOnce.Do(s.shutdown)
	stopGateway()
	s.log.Info("stopped")
	return runErr
}

// Shutdown has Run stop gracefully, as when its context ends, and waits
// until it has returned or ctx ends. A Server that was never run is
// shut down here. Calling it again only waits.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	if !s.running.Load() {
		s.endOnce.Do(s.shutdown)
		return nil
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onSignal carries out SIGHUP, SIGUSR1 and SIGUSR2.
func (s *Server) onSignal(sig os.Signal) {
	switch sig {
	case syscall.SIGHUP:
		s.log.Info("reloading the configuration", "signal", "SIGHUP")
		if err := s.Reload(); err != nil {
			for _, e := range config.Errors(err) {
				s.log.Error("reload refused; still serving the previous configuration", "problem", e.Error())
			}
		}
	case syscall.SIGUSR1:
		if s.opts.ReopenLogs != nil {
			if err := s.opts.ReopenLogs(); err != nil {
				s.log.Error("reopening the access log failed; still writing to the old file", "err", err)
			} else {
				s.log.Info("access log reopened", "signal", "SIGUSR1")
			}
		}
	case syscall.SIGUSR2:
		s.log.Info("upgrading: starting the new binary with the listening sockets", "signal", "SIGUSR2")
		if err := s.Upgrade(); err != nil {
			s.log.Error("upgrade refused", "err", err)
		}
	}
}

// shutdown stops accepting, sends every WebSocket client close 1001 and
// waits up to shutdown_timeout for them. Endpoints a reload replaced get
// the same deadline, however long drain_timeout gave them.
func (s *Server) shutdown() {
	s.mu.Lock()
	s.cancelHandover() // a new binary still starting stops too; Upgrade starts no other
	s.mu.Unlock()
	s.handovers.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg.Load()
	s.draining.Store(true)
	s.log.Info("shutting down", "streams", s.proxy.Streams(), "gateway_clients", s.gatewayClients(), "timeout", cfg.ShutdownTimeout)
	s.sockets.Quiesce(time.Second)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, e := range s.allEndpoints() {
		wg.Go(func() { e.stop(sctx) })
	}
	if s.gateway != nil {
		wg.Go(func() {
			if err := s.gateway.shutdown(sctx); err != nil {
				s.log.Warn("shutdown timeout: closed gateway clients that were still open", "err", err)
			}
		})
	}
	if err := s.proxy.Shutdown(sctx); err != nil {
		s.log.Warn("shutdown timeout: closed streams that were still open", "err", err)
	}
	wg.Wait()
	s.retiring.wait()
	s.sockets.CloseAll()
	removePIDFile(cfg.PIDFile)
}

// socketFailed stops the server when a socket fails for good: a
// listener that accepts nothing any more must not go unnoticed.
func (s *Server) socketFailed(name, addr string, err error) {
	s.failed(fmt.Errorf("%s %s: accept: %w", config.Listener(name).Key(), addr, err))
}

// failed has Run stop with err, unless another failure did already.
func (s *Server) failed(err error) {
	select {
	case s.fatal <- err:
	default:
	}
}

// allEndpoints returns the endpoints serving now and those a reload
// replaced that are still finishing requests. The caller holds s.mu.
func (s *Server) allEndpoints() []*endpoint {
	out := s.retiring.list()
	for _, e := range s.endpoints {
		out = append(out, e)
	}
	return out
}

// gatewayClients is how many clients the gateway has.
func (s *Server) gatewayClients() int {
	if s.gateway == nil {
		return 0
	}
	return s.gateway.hub.Stats().Clients
}

// ErrNotServing is returned by Reload and Upgrade while the server stops
// or drains after an upgrade.
var ErrNotServing = errors.New("the server is stopping, or draining after an upgrade")

// Certificates describes every certificate the server serves now.
func (s *Server) Certificates() []tlsconf.CertInfo { return s.certs.Certificates() }
