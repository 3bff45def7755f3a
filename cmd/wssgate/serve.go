package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/gateway/chatpage"
	"github.com/wssgate/wssgate/proxy"
	"github.com/wssgate/wssgate/tlsconf"
)

// defaultConfig is served when there is no -config and no ./config.yaml:
// https://localhost:8443 with a local certificate.
//
//go:embed default.yaml
var defaultConfig []byte

// defaultConfigName names the built-in configuration in messages.
const defaultConfigName = "(built-in default)"

// configFlags parses a subcommand's flags: -config, and those extra
// adds. It returns the function that reads the configuration (again, on
// a reload) and what it read. On failure it has printed why and
// returns the exit code.
func configFlags(cmd string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (load func() (*config.Config, error), cfg *config.Config, code int) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default ./config.yaml, else the built-in local setup)")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, exitUsage
	}
	load = configLoader(*path)
	cfg, err := load()
	if err != nil {
		printProblems(stderr, err)
		return nil, nil, exitFail
	}
	return load, cfg, exitOK
}

// configFromFlags is configFlags for a subcommand with only -config.
func configFromFlags(cmd string, args []string, stderr io.Writer) (*config.Config, int) {
	_, cfg, code := configFlags(cmd, args, stderr, nil)
	return cfg, code
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	load, cfg, code := configFlags("run", args, stderr, nil)
	if cfg == nil {
		return code
	}
	level := new(slog.LevelVar)
	log := newLogger(cfg.Log, stderr, level)
	access, closeAccess, err := openAccessLog(cfg.Log, log, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "wssgate: %v\n", err)
		return exitFail
	}
	defer closeAccess()
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sig)
	upg, systemd := processSockets(log)
	srv, err := start(cfg, serverOptions{Logger: log, Level: level, AccessLog: access.logger, ReopenLogs: access.reopen,
		Signals: sig, Load: load, Upgrader: upg, Systemd: systemd})
	if err != nil {
		fmt.Fprintf(stderr, "wssgate: %s\n", oneLine(err))
		return exitFail
	}
	srv.announce(stdout)
	if err := srv.serve(ctx); err != nil {
		fmt.Fprintf(stderr, "wssgate: %v\n", err)
		return exitFail
	}
	return exitOK
}

// configLoader returns the function that reads the configuration named
// by path, as loadConfig does; a reload calls it again. The choice among
// -config, ./config.yaml and the built-in default is made once, here.
func configLoader(path string) func() (*config.Config, error) {
	if path == "" {
		if _, err := os.Stat("config.yaml"); err == nil {
			path = "config.yaml"
		}
	}
	if path == "" {
		return func() (*config.Config, error) { return config.Parse(defaultConfigName, defaultConfig) }
	}
	return func() (*config.Config, error) { return config.Load(path) }
}

// serverOptions are what start needs besides the configuration.
type serverOptions struct {
	Logger *slog.Logger // nil discards
	// Level is the Logger's level, set from log.level at start and on
	// every reload; nil leaves the level alone.
	Level       *slog.LevelVar
	AccessLog   *slog.Logger // nil: no access log
	InternalDir string       // "" = tlsconf's default under the user's config dir
	// Signals delivers SIGHUP (reload the configuration), SIGUSR1
	// (reopen the access log file) and SIGUSR2 (binary upgrade); nil
	// never does. Certificate files are also reloaded when they change.
	Signals <-chan os.Signal
	// Load reads the configuration again for a reload; nil refuses
	// reloads.
	Load func() (*config.Config, error)
	// ReopenLogs reopens the access log file (SIGUSR1); nil does nothing.
	ReopenLogs func() error
	// Upgrader opens the listening sockets and carries out binary
	// upgrades; nil opens them with net.Listen and refuses upgrades.
	Upgrader upgrader
	// Systemd are listeners passed by socket activation (LISTEN_FDS),
	// used for the configured addresses they are bound to.
	Systemd []net.Listener
	// CertWatch and ACMEPoll are tlsconf.Options.WatchInterval and
	// ACMEPollInterval; zero means tlsconf's defaults.
	CertWatch, ACMEPoll time.Duration
}

// upgrader opens the process's sockets and carries out binary
// upgrades; *handoff is the one wssgate uses.
type upgrader interface {
	listenSource
	// Ready tells the process that started this one, if any, that this
	// one serves.
	Ready() error
	// Upgrade starts the new binary with lns and returns once it
	// serves; it stops the new binary when ctx ends first.
	Upgrade(ctx context.Context, lns map[string]net.Listener) error
}

// server is a running edge: its sockets, TLS, proxy, gateway and the
// fronts (HTTP servers and gateway listeners) serving the sockets.
type server struct {
	log     *slog.Logger
	opts    serverOptions
	certs   *tlsconf.Manager
	proxy   *proxy.Proxy
	sockets *sockets
	gateway *gatewayServer // nil when nothing reaches the gateway
	started time.Time

	cfg      atomic.Pointer[config.Config]
	draining atomic.Bool
	fatal    chan error // a front whose socket failed

	mu       sync.Mutex // serializes reloads and the end of serving
	fronts   map[string]*front
	retiring retiring // fronts a reload replaced, finishing their requests
	reloads  reloadState
	upgrade  upgradeState
	upgraded chan struct{} // closed when a new process took the sockets over
	// upgradeCtx ends when this process stops, and with it a new binary
	// still starting; upgrades is the goroutine waiting for one.
	upgradeCtx    context.Context
	cancelUpgrade context.CancelFunc
	upgrades      sync.WaitGroup
}

// start builds TLS, the proxy and the gateway from cfg and opens the
// listeners. Any failure is returned as one line that says what and
// where.
func start(cfg *config.Config, opts serverOptions) (*server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	setLevel(opts.Level, cfg.Log)
	setMaxConnections(cfg, openFileLimit(), log)
	certs, err := tlsconf.New(cfg, tlsconf.Options{InternalDir: opts.InternalDir, Logger: log,
		WatchInterval: opts.CertWatch, ACMEPollInterval: opts.ACMEPoll})
	if err != nil {
		return nil, positioned(cfg, err)
	}
	s := &server{log: log, opts: opts, certs: certs,
		started: time.Now(), fatal: make(chan error, 8), fronts: map[string]*front{}, upgraded: make(chan struct{})}
	s.upgradeCtx, s.cancelUpgrade = context.WithCancel(context.Background())
	s.sockets = newSockets(opts.Upgrader, opts.Systemd, s.socketFailed)
	popts := proxy.Options{Logger: log, AccessLog: opts.AccessLog, ChatPage: chatpage.Handler()}
	if cfg.UsesGateway() {
		if s.gateway, err = newGateway(cfg, log); err != nil {
			return nil, err
		}
		popts.Gateway = s.gateway.handler
	}
	if s.proxy, err = proxy.New(cfg, popts); err != nil {
		return nil, positioned(cfg, err)
	}
	specs, err := s.frontSpecs(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := s.openSockets(cfg, specs); err != nil {
		s.sockets.closeAll()
		return nil, err
	}
	for _, sp := range specs {
		s.startFront(sp)
	}
	s.cfg.Store(cfg)
	return s, nil
}

// setLevel sets level from the log section.
func setLevel(level *slog.LevelVar, c config.Log) {
	if level == nil {
		return
	}
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.Level))
	level.Set(l)
}

// setMaxConnections fills in limits.max_connections when it is 0 (as many
// as limit open files allow), and warns when a configured value needs
// more descriptors than limit: past it, accepts fail and clients time out
// instead of getting a 503.
func setMaxConnections(cfg *config.Config, limit uint64, log *slog.Logger) {
	const reserve = 100 // listeners, logs, certificates, upstream pools
	lim := &cfg.Limits
	if lim.MaxConnections == 0 {
		lim.MaxConnections = 10000
		if limit > 2*reserve {
			lim.MaxConnections = int(min((limit-reserve)/2, 1<<30))
		}
		return
	}
	if need := 2*uint64(lim.MaxConnections) + reserve; limit > 0 && need > limit {
		log.Warn("limits.max_connections needs more open files than the process may have; raise the limit (systemd LimitNOFILE, ulimit -n) or lower max_connections",
			"max_connections", lim.MaxConnections, "open_files_needed", need, "open_files_limit", limit)
	}
}

// serve runs until ctx is done, then shuts down gracefully: listeners
// close, every WebSocket client gets close 1001, and what has not ended
// within shutdown_timeout is closed. After a binary upgrade handed the
// listeners to a new process, it drains instead: open connections are
// served until they end or drain_timeout passes, then shut down alike.
func (s *server) serve(ctx context.Context) error {
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
	gwDone := make(chan struct{})
	if s.gateway != nil {
		go func() {
			defer close(gwDone)
			s.gateway.run(gwCtx)
		}()
	} else {
		close(gwDone)
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
		case err := <-s.fatal:
			runErr = fmt.Errorf("serve: %w", err)
			break loop
		case <-s.upgraded:
			s.drain(ctx)
			break loop
		case sig := <-s.opts.Signals:
			s.onSignal(sig)
		}
	}
	s.shutdown()
	stopGateway()
	<-gwDone
	s.log.Info("stopped")
	return runErr
}

// onSignal carries out SIGHUP, SIGUSR1 and SIGUSR2.
func (s *server) onSignal(sig os.Signal) {
	switch sig {
	case syscall.SIGHUP:
		s.log.Info("reloading the configuration", "signal", "SIGHUP")
		if err := s.reload(); err != nil {
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
		s.startUpgrade()
	}
}

// shutdown stops accepting, sends every WebSocket client close 1001 and
// waits up to shutdown_timeout for them. Servers a reload replaced get
// the same deadline, however long drain_timeout gave them.
func (s *server) shutdown() {
	s.cancelUpgrade() // a new binary still starting stops too
	s.upgrades.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg.Load()
	s.draining.Store(true)
	s.log.Info("shutting down", "streams", s.proxy.Streams(), "timeout", cfg.ShutdownTimeout)
	s.sockets.quiesce(time.Second)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range s.allFronts() {
		wg.Go(func() { f.stopFront(sctx) })
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
	s.sockets.closeAll()
	s.removePIDFile(cfg)
}

// socketFailed stops the server when a socket fails for good: a
// listener that accepts nothing any more must not go unnoticed.
func (s *server) socketFailed(name, addr string, err error) {
	select {
	case s.fatal <- fmt.Errorf("%s %s: accept: %w", listenKey(name), addr, err):
	default:
	}
}

// allFronts returns the fronts serving now and those a reload replaced
// that are still finishing requests. The caller holds s.mu.
func (s *server) allFronts() []*front {
	out := s.retiring.list()
	for _, f := range s.fronts {
		out = append(out, f)
	}
	return out
}

// announce tells the user what is being served.
func (s *server) announce(w io.Writer) {
	cfg := s.cfg.Load()
	httpsAddr := s.sockets.addr("https", cfg.Listen.HTTPS)
	base := "https://" + displayAddr(httpsAddr.String())
	fmt.Fprintf(w, "wssgate %s serving %s (pid %d)\n", versionString(), base, os.Getpid())
	for _, site := range cfg.Sites {
		for _, rt := range site.Routes {
			target := rt.Root
			switch {
			case len(rt.Upstreams) > 0:
				target = strings.Join(rt.Upstreams, ", ")
			case rt.Respond != nil:
				target = fmt.Sprintf("fixed response %d", rt.Respond.Status)
			case rt.Gateway:
				target = "bundled gateway"
			case rt.ChatPage:
				target = "chat page"
			}
			scheme := "https"
			if rt.IsWebSocketOnly() || rt.Gateway {
				scheme = "wss"
			}
			fmt.Fprintf(w, "  %s://%s%s%s -> %s\n", scheme, site.Hosts[0], portSuffix(httpsAddr), rt.Path, target)
		}
	}
	if a := s.addr("http"); a != "" {
		fmt.Fprintf(w, "  http://%s redirects to https\n", displayAddr(a))
	}
	if a := s.addr("gateway_text"); a != "" {
		host, port, _ := net.SplitHostPort(a)
		fmt.Fprintf(w, "  gateway text protocol on %s (try: telnet %s %s)\n", a, host, port)
	}
	if a := s.addr("gateway_websocket"); a != "" {
		fmt.Fprintf(w, "  gateway WebSocket on ws://%s\n", a)
	}
	if a := s.addr("push_api"); a != "" {
		fmt.Fprintf(w, "  push API on http://%s/api/<method> (Authorization: Bearer <secret>)\n", a)
	}
	if a := s.addr("admin"); a != "" {
		fmt.Fprintf(w, "  admin on http://%s (/status, /metrics, /healthz, /readyz; try: wssgate status)\n", a)
	}
	if root := s.certs.RootCertFile(); root != "" {
		fmt.Fprintf(w, "  local certificate authority: %s (trust it to silence browser warnings)\n", root)
	}
	if cfg.Source != nil && cfg.Source.File == defaultConfigName {
		fmt.Fprintln(w, "  no config.yaml here: this is the built-in default; see config.example.yaml to route /wss to your gateway")
	}
}

// redirectHandler sends every plain HTTP request to the same host and
// path over https, on the https listener's port.
func redirectHandler(httpsAddr net.Addr) http.Handler {
	port := portSuffix(httpsAddr)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" {
			http.Error(w, "400 Bad Request: no Host header", http.StatusBadRequest)
			return
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		code := http.StatusMovedPermanently
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			code = http.StatusPermanentRedirect
		}
		http.Redirect(w, r, "https://"+host+port+r.URL.RequestURI(), code)
	})
}

// portSuffix is ":port" for addr's port, or "" for 443.
func portSuffix(addr net.Addr) string {
	_, port, err := net.SplitHostPort(addr.String())
	if err != nil || port == "443" {
		return ""
	}
	return ":" + port
}

// displayAddr turns a listen address into something a browser can open.
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch host {
	case "", "0.0.0.0", "::", "127.0.0.1", "::1":
		host = "localhost"
	}
	if port == "443" {
		return host
	}
	return net.JoinHostPort(host, port)
}

// newLogger builds the process logger from the log section, at level
// (set from log.level by start).
func newLogger(c config.Log, w io.Writer, level *slog.LevelVar) *slog.Logger {
	if level == nil {
		level = new(slog.LevelVar)
		setLevel(level, c)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// positioned returns the problems joined in err, one error each, with the
// configuration file and line added to those that name a configuration
// key (tlsconf.SiteError, proxy.RouteError).
func positioned(cfg *config.Config, err error) error {
	var out []error
	for _, e := range config.Errors(err) {
		var ke interface {
			Path() string
			Unwrap() error
		}
		if errors.As(e, &ke) {
			ce := &config.Error{Key: ke.Path(), Msg: ke.Unwrap().Error()}
			if cfg.Source != nil {
				ce.File, ce.Line = cfg.Source.File, cfg.Source.Line(ce.Key)
			}
			e = ce
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// oneLine joins the problems in err with "; ", for a failure to start.
func oneLine(err error) string {
	var parts []string
	for _, e := range config.Errors(err) {
		parts = append(parts, e.Error())
	}
	return strings.Join(parts, "; ")
}
