package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults for the zero fields of Config.
const (
	defaultIdle         = 2000
	defaultClients      = 64
	defaultRounds       = 20000
	defaultDuration     = 10 * time.Second
	defaultMessageSize  = 64
	defaultSettle       = 2 * time.Second
	defaultDialParallel = 32
	defaultPhaseTimeout = 60 * time.Second
)

// fdOverhead is what a process needs in descriptors besides connections:
// listeners, logs, epoll, the runtime's pipes.
const fdOverhead = 64

// teardownTimeout bounds the wait for a proxy to close the idle
// connections' descriptors before the echo phase.
const teardownTimeout = 15 * time.Second

// Config describes one run. Every zero field means the default named
// in its comment.
type Config struct {
	// Wssgate is the wssgate binary to measure; "" builds one with
	// "go build" into the run's temporary directory, which needs the
	// current directory to be inside the wssgate module.
	Wssgate string
	// Nginx is the nginx binary; "" looks for nginx in PATH, then
	// /usr/sbin, and when there is none measures wssgate alone with a
	// warning; "off" skips nginx. A path that does not exist is an error.
	Nginx string
	// NginxWorkers is nginx's worker_processes; 0 means one per CPU
	// (worker_processes auto), the peer of wssgate's default GOMAXPROCS.
	NginxWorkers int
	// Idle is how many idle connections the memory phase opens (2000).
	// Each costs the proxy two descriptors, so it is limited by the
	// process descriptor limit.
	Idle int
	// Clients is how many connections the echo phase drives at once (64).
	Clients int
	// Rounds is the most round trips each echo client makes (20000).
	Rounds int
	// Duration is the most the echo phase lasts (10s).
	Duration time.Duration
	// MessageSize is the echo message size in bytes (64).
	MessageSize int
	// Settle is how long the idle connections sit before the proxy's
	// memory is read (2s).
	Settle time.Duration
	// DialParallel is how many idle connections are being opened at
	// once (32).
	DialParallel int
	// PhaseTimeout bounds opening the idle connections (60s).
	PhaseTimeout time.Duration
	// Sources are the client's source addresses, used in turn; each
	// gives about 28,000 ephemeral ports towards one proxy. All must be
	// in 127.0.0.0/8. Empty means the kernel's choice (127.0.0.1).
	Sources []netip.Addr
	// Self is the executable that serves the echo backend when run as
	// "Self backend"; "" means this program (os.Executable).
	Self string
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setInt(&c.NginxWorkers, runtime.NumCPU())
	setInt(&c.Idle, defaultIdle)
	setInt(&c.Clients, defaultClients)
	setInt(&c.Rounds, defaultRounds)
	setInt(&c.MessageSize, defaultMessageSize)
	setInt(&c.DialParallel, defaultDialParallel)
	setDur(&c.Duration, defaultDuration)
	setDur(&c.Settle, defaultSettle)
	setDur(&c.PhaseTimeout, defaultPhaseTimeout)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate returns every problem with c (after withDefaults), joined.
// nofile is the process descriptor limit, which wssbench, the backend
// and the proxy each get; ports is the number of ephemeral ports per
// source address, or 0 if unknown.
func (c Config) validate(nofile uint64, ports int) error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"idle", c.Idle}, {"clients", c.Clients}, {"rounds", c.Rounds}, {"size", c.MessageSize}, {"dial-parallel", c.DialParallel}, {"nginx-workers", c.NginxWorkers}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("-%s %d: must not be negative", f.name, f.v))
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"duration", c.Duration}, {"settle", c.Settle}, {"timeout", c.PhaseTimeout}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("-%s %v: must not be negative", f.name, f.v))
		}
	}
	if c.MessageSize > backendMaxMessage {
		errs = append(errs, fmt.Errorf("-size %d: the backend takes at most %d bytes", c.MessageSize, backendMaxMessage))
	}
	conns := max(c.Idle, c.Clients)
	if need := uint64(2*conns + fdOverhead); need > nofile {
		errs = append(errs, fmt.Errorf("%d connections need %d descriptors in the proxy (two each); the limit is %d, so use at most %d",
			conns, need, nofile, (nofile-fdOverhead)/2))
	}
	for _, s := range c.Sources {
		if !s.Is4() || !netip.MustParsePrefix("127.0.0.0/8").Contains(s) {
			errs = append(errs, fmt.Errorf("-sources %s: not in 127.0.0.0/8", s))
		}
	}
	if srcs := max(len(c.Sources), 1); ports > 0 && (conns+srcs-1)/srcs > ports {
		errs = append(errs, fmt.Errorf("%d connections from %d source address(es) exceed the %d ephemeral ports each has; add -sources", conns, srcs, ports))
	}
	return errors.Join(errs...)
}

// limits returns the process descriptor limit (the hard one: Go raises
// the soft limit to it, and so do wssgate and nginx's workers) and the
// number of ephemeral ports, 0 when unknown.
func limits() (nofile uint64, ports int, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, fmt.Errorf("getrlimit: %w", err)
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			lo, err1 := strconv.Atoi(f[0])
			hi, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && hi >= lo {
				ports = hi - lo + 1
			}
		}
	}
	return rl.Max, ports, nil
}

// Run measures wssgate, then nginx (never both at once), behind the
// same backend with the same client, and returns the report. It stops
// every process it started and removes its temporary directory before
// returning, also when ctx ends early.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	log := cfg.Logger
	nofile, ports, err := limits()
	if err != nil {
		return nil, err
	}
	if err := cfg.validate(nofile, ports); err != nil {
		return nil, err
	}
	nginxBin, nginxSkipped := "", "-nginx off"
	if cfg.Nginx != nginxOff {
		nginxBin, err = findNginx(cfg.Nginx)
		switch {
		case errors.Is(err, errNoNginx):
			nginxSkipped = err.Error()
			log.Warn("measuring wssgate alone: " + err.Error())
		case err != nil:
			return nil, err
		default:
			nginxSkipped = ""
		}
	}
	self := cfg.Self
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("backend: %w", err)
		}
	}

	dir, err := os.MkdirTemp("", "wssbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	pki, err := newCerts(dir)
	if err != nil {
		return nil, err
	}
	wssgateBin := cfg.Wssgate
	if wssgateBin == "" {
		log.Info("building wssgate", "package", wssgatePackage)
		if wssgateBin, err = buildWssgate(ctx, dir); err != nil {
			return nil, err
		}
	}
	backend, backendAddr, err := startBackend(ctx, self, dir)
	if err != nil {
		return nil, err
	}
	defer backend.stop()
	log.Info("backend serving", "addr", backendAddr, "pid", backend.pid())

	rep := &Report{Settings: settingsOf(cfg), NginxSkipped: nginxSkipped}
	runs := []proxyRun{{"wssgate", func(s proxySetup) (*proxyProc, error) { return startWssgate(ctx, wssgateBin, s) }, &rep.Wssgate}}
	if nginxBin != "" {
		runs = append(runs, proxyRun{"nginx", func(s proxySetup) (*proxyProc, error) { return startNginx(ctx, nginxBin, cfg.NginxWorkers, s) }, &rep.Nginx})
	}
	for _, r := range runs {
		sub := filepath.Join(dir, r.name+".d")
		if err := os.Mkdir(sub, 0o755); err != nil {
			return nil, err
		}
		setup := proxySetup{Dir: sub, Backend: backendAddr, Certs: pki, MaxConns: max(cfg.Idle, cfg.Clients) + fdOverhead}
		res, err := measureOne(ctx, cfg, r.start, setup)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.name, err)
		}
		*r.dst = res
	}
	if err := backend.stop(); err != nil {
		log.Warn("backend", "err", err)
	}
	return rep, nil
}

// proxyRun is one proxy to measure: how to start it and where its
// result goes.
type proxyRun struct {
	name  string
	start func(proxySetup) (*proxyProc, error)
	dst   **Result
}

// measureOne starts a proxy, runs the idle and echo phases through it,
// and stops it.
func measureOne(ctx context.Context, cfg Config, start func(proxySetup) (*proxyProc, error), s proxySetup) (res *Result, err error) {
	p, err := start(s)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("proxy", p.Name)
	defer func() {
		if serr := p.proc.stop(); serr != nil {
			err = errors.Join(err, serr)
		}
		reportLogs(log, p.Logs)
	}()
	log.Info("proxy serving", "version", p.Version, "setup", p.Setup, "addr", p.Addr, "pid", p.proc.pid())
	cl, err := newClient(p.Addr, s.Certs.Roots, cfg.Sources)
	if err != nil {
		return nil, err
	}
	res = &Result{Proxy: p.Name, Version: p.Version, Setup: p.Setup}
	if err := idlePhase(ctx, cfg, log, p, cl, res); err != nil {
		return nil, fmt.Errorf("idle: %w", err)
	}
	if err := echoPhase(ctx, cfg, log, p, cl, res); err != nil {
		return nil, fmt.Errorf("echo: %w", err)
	}
	return res, nil
}

// reportLogs passes on what a proxy wrote to its logs, which are set to
// warnings and errors only: anything there may bear on the figures.
func reportLogs(log *slog.Logger, paths []string) {
	const maxLines = 20
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) == 1 && lines[0] == "" {
			continue
		}
		if len(lines) > maxLines {
			lines = append(lines[:maxLines:maxLines], fmt.Sprintf("... and %d more lines", len(lines)-maxLines))
		}
		log.Warn("the proxy logged", "file", filepath.Base(path), "lines", strings.Join(lines, "\n"))
	}
}

// idlePhase opens cfg.Idle connections, lets them settle, and records
// the proxy's memory growth and the CPU the handshakes cost it. It closes
// the connections and waits for the proxy to release them.
func idlePhase(ctx context.Context, cfg Config, log *slog.Logger, p *proxyProc, cl *client, res *Result) error {
	pid := p.proc.pid()
	base, err := sampleTree(pid)
	if err != nil {
		return err
	}
	log.Info("opening idle connections", "n", cfg.Idle)
	pctx, cancel := context.WithTimeout(ctx, cfg.PhaseTimeout)
	defer cancel()
	t0 := time.Now()
	conns, err := openIdle(pctx, cl, cfg.Idle, cfg.DialParallel, cfg.MessageSize)
	if err != nil {
		return err
	}
	opened := time.Since(t0)
	defer func() { closeAll(conns) }()
	afterOpen, err := sampleTree(pid)
	if err != nil {
		return err
	}
	res.TLS = tlsSummary(conns[0])
	log.Info("idle connections open; settling", "took", opened.Round(time.Millisecond), "settle", cfg.Settle)
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(cfg.Settle):
	}
	loaded, err := sampleTree(pid)
	if err != nil {
		return err
	}
	n := float64(cfg.Idle)
	res.Processes = loaded.Procs
	res.Idle = IdleResult{
		Conns:        cfg.Idle,
		OpenSeconds:  opened.Seconds(),
		RSSBefore:    base.RSS,
		RSSAfter:     loaded.RSS,
		BytesPerConn: float64(loaded.RSS-base.RSS) / n,
		FDsPerConn:   float64(loaded.FDs-base.FDs) / n,
		CPUPerConnUS: micros(afterOpen.CPU-base.CPU) / n,
	}
	closeAll(conns)
	conns = nil
	return waitReleased(ctx, pid, base.FDs, log)
}

// waitReleased waits, up to teardownTimeout, until the proxy is back to
// about the descriptors it had before the idle phase, so that the echo
// phase does not pay for the teardown. Running out of time is logged,
// not an error.
func waitReleased(ctx context.Context, pid, fds int, log *slog.Logger) error {
	deadline := time.Now().Add(teardownTimeout)
	for {
		u, err := sampleTree(pid)
		if err != nil {
			return err
		}
		if u.FDs <= fds+8 {
			return nil
		}
		if time.Now().After(deadline) {
			log.Warn("proxy still holds descriptors after closing the idle connections", "fds", u.FDs, "before", fds)
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// echoPhase connects cfg.Clients clients, then runs the round trips and
// records throughput, latency and the proxy's CPU per round trip.
func echoPhase(ctx context.Context, cfg Config, log *slog.Logger, p *proxyProc, cl *client, res *Result) error {
	pid := p.proc.pid()
	l := echoLoad{Clients: cfg.Clients, Rounds: cfg.Rounds, Duration: cfg.Duration, Size: cfg.MessageSize}
	pctx, cancel := context.WithTimeout(ctx, cfg.PhaseTimeout)
	conns, err := connectEcho(pctx, cl, l)
	cancel()
	if err != nil {
		return err
	}
	defer closeAll(conns)
	log.Info("echo round trips", "clients", l.Clients, "rounds", l.Rounds, "max", l.Duration)
	var before usage
	var beforeErr error
	er, err := runEcho(ctx, conns, l, func() { before, beforeErr = sampleTree(pid) })
	if err != nil {
		return err
	}
	after, err := sampleTree(pid)
	if err != nil {
		return err
	}
	if beforeErr != nil {
		return beforeErr
	}
	cpu := after.CPU - before.CPU
	res.Echo = EchoResult{
		Clients:    l.Clients,
		RoundTrips: er.RoundTrips,
		Seconds:    er.Elapsed.Seconds(),
		P50US:      micros(percentile(er.Latencies, 50)),
		P99US:      micros(percentile(er.Latencies, 99)),
		CPUSeconds: cpu.Seconds(),
	}
	if er.RoundTrips > 0 {
		res.Echo.PerSecond = float64(er.RoundTrips) / er.Elapsed.Seconds()
		res.Echo.CPUPerRoundTripUS = micros(cpu) / float64(er.RoundTrips)
	}
	if er.Elapsed > 0 {
		res.Echo.CPUCores = cpu.Seconds() / er.Elapsed.Seconds()
	}
	log.Info("echo done", "round_trips", er.RoundTrips, "per_second", int(res.Echo.PerSecond))
	return nil
}

// micros converts d to microseconds.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
