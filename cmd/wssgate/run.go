package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/wssgate/wssgate/cmd/wssgate/internal/server"
	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/listeners"
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

// configLoader returns the function that reads the configuration named
// by path; a reload calls it again. The choice among -config,
// ./config.yaml and the built-in default is made once, here.
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

// cmdRun serves the configuration until a signal stops it.
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
	activated, err := listeners.Activated()
	if err != nil {
		log.Warn("socket activation: could not use the sockets systemd passed", "err", err)
	}
	handoff, err := listeners.NewHandoff(log)
	if err != nil {
		log.Warn("upgrade: some sockets of the previous process could not be taken over; their addresses are opened anew", "err", err)
	}
	srv, err := server.New(cfg, server.Options{Logger: log, Level: level, AccessLog: access.logger,
		ReopenLogs: access.reopen, Signals: sig, Load: load, Handover: handoff, Activated: activated,
		Version: versionString()})
	if err != nil {
		fmt.Fprintf(stderr, "wssgate: %s\n", oneLine(err))
		return exitFail
	}
	announce(stdout, srv)
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "wssgate: %v\n", err)
		return exitFail
	}
	return exitOK
}

// announce tells the user what srv serves: the start banner.
func announce(w io.Writer, srv *server.Server) {
	cfg := srv.Config()
	httpsAddr := srv.Addr(config.ListenerHTTPS)
	suffix := server.PortSuffix(httpsAddr)
	fmt.Fprintf(w, "wssgate %s serving https://%s (pid %d)\n", versionString(), displayAddr(httpsAddr), os.Getpid())
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
			fmt.Fprintf(w, "  %s://%s%s%s -> %s\n", scheme, site.Hosts[0], suffix, rt.Path, target)
		}
	}
	if a := srv.Addr(config.ListenerHTTP); a != "" {
		fmt.Fprintf(w, "  http://%s redirects to https\n", displayAddr(a))
	}
	if a := srv.Addr(config.ListenerGatewayText); a != "" {
		host, port, _ := net.SplitHostPort(a)
		fmt.Fprintf(w, "  gateway text protocol on %s (try: telnet %s %s)\n", a, host, port)
	}
	if a := srv.Addr(config.ListenerGatewayWebSocket); a != "" {
		fmt.Fprintf(w, "  gateway WebSocket on ws://%s\n", a)
	}
	if a := srv.Addr(config.ListenerGWRegister); a != "" {
		fmt.Fprintf(w, "  GatewayWorker Register on %s (BusinessWorker and GatewayClient: registerAddress = '%s')\n", a, a)
	}
	if a := srv.Addr(config.ListenerGWInner); a != "" {
		fmt.Fprintf(w, "  GatewayWorker inner port on %s\n", a)
	}
	if a := srv.Addr(config.ListenerPushAPI); a != "" {
		fmt.Fprintf(w, "  push API on http://%s/api/<method> (Authorization: Bearer <secret>)\n", a)
	}
	if a := srv.Addr(config.ListenerAdmin); a != "" {
		fmt.Fprintf(w, "  admin on http://%s (/status, /metrics, /healthz, /readyz; try: wssgate status)\n", a)
	}
	if root := srv.RootCertFile(); root != "" {
		fmt.Fprintf(w, "  local certificate authority: %s (trust it to silence browser warnings)\n", root)
	}
	if cfg.Source != nil && cfg.Source.File == defaultConfigName {
		fmt.Fprintln(w, "  no config.yaml here: this is the built-in default; see config.example.yaml to route /wss to your gateway")
	}
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
// (set from log.level by the server).
func newLogger(c config.Log, w io.Writer, level *slog.LevelVar) *slog.Logger {
	if level == nil {
		level = new(slog.LevelVar)
		var l slog.Level
		_ = l.UnmarshalText([]byte(c.Level))
		level.Set(l)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// oneLine joins the problems in err with "; ", for a failure to start.
func oneLine(err error) string {
	var parts []string
	for _, e := range config.Errors(err) {
		parts = append(parts, e.Error())
	}
	return strings.Join(parts, "; ")
}
