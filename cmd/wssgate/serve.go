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
	"strings"
	"sync"
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

// loadConfig reads the configuration named by path; with path empty it
// reads ./config.yaml if that exists, else the built-in default.
func loadConfig(path string) (*config.Config, error) {
	if path != "" {
		return config.Load(path)
	}
	if _, err := os.Stat("config.yaml"); err == nil {
		return config.Load("config.yaml")
	}
	return config.Parse(defaultConfigName, defaultConfig)
}

// configFromFlags parses a subcommand's flags (-config) and loads the
// configuration. On failure it has printed why and returns the exit code.
func configFromFlags(cmd string, args []string, stderr io.Writer) (*config.Config, int) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default ./config.yaml, else the built-in local setup)")
	if err := fs.Parse(args); err != nil {
		return nil, exitUsage
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		printProblems(stderr, err)
		return nil, exitFail
	}
	return cfg, exitOK
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, code := configFromFlags("run", args, stderr)
	if cfg == nil {
		return code
	}
	log := newLogger(cfg.Log, stderr)
	srv, err := start(cfg, serverOptions{Logger: log, AccessLog: accessLogger(cfg.Log, log), Reload: notifyReload()})
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

// serverOptions are what start needs besides the configuration.
type serverOptions struct {
	Logger      *slog.Logger // nil discards
	AccessLog   *slog.Logger // nil: no access log
	InternalDir string       // "" = tlsconf's default under the user's config dir
	// Reload reloads the certificate files each time it delivers (SIGHUP);
	// nil never does. Files are also reloaded when they change.
	Reload <-chan os.Signal
	// CertWatch and ACMEPoll are tlsconf.Options.WatchInterval and
	// ACMEPollInterval; zero means tlsconf's defaults.
	CertWatch, ACMEPoll time.Duration
}

// server is a running edge: its listeners, TLS and proxy.
type server struct {
	cfg     *config.Config
	log     *slog.Logger
	certs   *tlsconf.Manager
	proxy   *proxy.Proxy
	https   *http.Server
	httpSrv *http.Server // nil when listen.http is ""
	lnTLS   net.Listener
	lnHTTP  net.Listener
	reload  <-chan os.Signal
	gateway *gatewayServer // nil when nothing reaches the gateway
}

// start builds TLS and the proxy from cfg and opens the listeners. Any
// failure is returned as one line that says what and where.
func start(cfg *config.Config, opts serverOptions) (*server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	setMaxConnections(cfg, openFileLimit(), log)
	certs, err := tlsconf.New(cfg, tlsconf.Options{InternalDir: opts.InternalDir, Logger: log,
		WatchInterval: opts.CertWatch, ACMEPollInterval: opts.ACMEPoll})
	if err != nil {
		return nil, positioned(cfg, err)
	}
	var gw *gatewayServer
	popts := proxy.Options{Logger: log, AccessLog: opts.AccessLog, ChatPage: chatpage.Handler()}
	if cfg.UsesGateway() {
		if gw, err = newGateway(cfg, log); err != nil {
			return nil, err
		}
		popts.Gateway = gw.handler
	}
	px, err := proxy.New(cfg, popts)
	if err != nil {
		gw.closeListeners()
		return nil, positioned(cfg, err)
	}
	s := &server{cfg: cfg, log: log, certs: certs, proxy: px, reload: opts.Reload, gateway: gw}
	lim := cfg.Limits
	s.https = &http.Server{
		Handler:           px,
		TLSConfig:         certs.TLSConfig(),
		ReadHeaderTimeout: lim.HandshakeTimeout, // also bounds the TLS handshake
		ReadTimeout:       lim.ReadTimeout,      // cleared when a WebSocket is hijacked
		IdleTimeout:       lim.KeepaliveTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		// Failed TLS handshakes from scanners are noise at Info.
		ErrorLog: slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelDebug),
	}
	if s.lnTLS, err = net.Listen("tcp", cfg.Listen.HTTPS); err != nil {
		gw.closeListeners()
		return nil, fmt.Errorf("listen.https %s: %w", cfg.Listen.HTTPS, err)
	}
	if cfg.Listen.HTTP != "" {
		if s.lnHTTP, err = net.Listen("tcp", cfg.Listen.HTTP); err != nil {
			s.lnTLS.Close()
			gw.closeListeners()
			return nil, fmt.Errorf("listen.http %s: %w", cfg.Listen.HTTP, err)
		}
		s.httpSrv = &http.Server{
			// ACME http-01 challenges first, then the redirect.
			Handler:           certs.HTTPHandler(redirectHandler(s.lnTLS.Addr())),
			ReadHeaderTimeout: lim.HandshakeTimeout,
			ReadTimeout:       lim.ReadTimeout,
			IdleTimeout:       lim.KeepaliveTimeout,
			MaxHeaderBytes:    lim.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelDebug),
		}
	}
	return s, nil
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
// within shutdown_timeout is closed.
func (s *server) serve(ctx context.Context) error {
	errc := make(chan error, 3)
	go func() { errc <- s.https.ServeTLS(s.lnTLS, "", "") }()
	if s.httpSrv != nil {
		go func() { errc <- s.httpSrv.Serve(s.lnHTTP) }()
	}
	// Certificates: file changes, ACME orders and renewals, SIGHUP. They
	// stop once the listeners have.
	certCtx, stopCerts := context.WithCancel(context.Background())
	var certWG sync.WaitGroup
	certWG.Go(func() {
		if err := s.certs.Run(certCtx); err != nil {
			s.log.Error("certificate manager stopped", "err", err)
		}
	})
	if s.reload != nil {
		certWG.Go(func() { reloadOnSignal(certCtx, s.reload, s.certs, s.log) })
	}
	defer func() {
		stopCerts()
		certWG.Wait()
	}()
	gwCtx, stopGateway := context.WithCancel(context.Background())
	defer stopGateway()
	gwDone := make(chan struct{})
	if s.gateway != nil {
		go func() {
			defer close(gwDone)
			if err := s.gateway.run(gwCtx); err != nil {
				errc <- err
			}
		}()
	} else {
		close(gwDone)
	}
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		runErr = fmt.Errorf("serve: %w", err)
	}
	s.log.Info("shutting down", "streams", s.proxy.Streams(), "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.https.Shutdown(sctx) })
	if s.httpSrv != nil {
		wg.Go(func() { _ = s.httpSrv.Shutdown(sctx) })
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
	stopGateway()
	<-gwDone
	s.log.Info("stopped")
	return runErr
}

// announce tells the user what is being served.
func (s *server) announce(w io.Writer) {
	base := "https://" + displayAddr(s.lnTLS.Addr().String())
	fmt.Fprintf(w, "wssgate %s serving %s\n", versionString(), base)
	for _, site := range s.cfg.Sites {
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
			fmt.Fprintf(w, "  %s://%s%s%s -> %s\n", scheme, site.Hosts[0], portSuffix(s.lnTLS.Addr()), rt.Path, target)
		}
	}
	if s.lnHTTP != nil {
		fmt.Fprintf(w, "  http://%s redirects to https\n", displayAddr(s.lnHTTP.Addr().String()))
	}
	if g := s.gateway; g != nil {
		if g.textLn != nil {
			host, port, _ := net.SplitHostPort(g.textLn.Addr().String())
			fmt.Fprintf(w, "  gateway text protocol on %s (try: telnet %s %s)\n", g.textLn.Addr(), host, port)
		}
		if g.wsLn != nil {
			fmt.Fprintf(w, "  gateway WebSocket on ws://%s\n", g.wsLn.Addr())
		}
		if g.apiLn != nil {
			fmt.Fprintf(w, "  push API on http://%s/api/<method> (Authorization: Bearer <secret>)\n", g.apiLn.Addr())
		}
	}
	if root := s.certs.RootCertFile(); root != "" {
		fmt.Fprintf(w, "  local certificate authority: %s (trust it to silence browser warnings)\n", root)
	}
	if s.cfg.Source != nil && s.cfg.Source.File == defaultConfigName {
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

// newLogger builds the process logger from the log section.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// accessLogger returns the access log, or nil when it is off.
func accessLogger(c config.Log, log *slog.Logger) *slog.Logger {
	if !c.AccessEnabled() {
		return nil
	}
	return log.With("component", "access")
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
