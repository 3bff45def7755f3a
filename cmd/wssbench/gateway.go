package main

// This file is one concern, the gateway benchmark's run: its units in
// alternating order, the measurements and the report, kept together so
// that what is measured and what is printed cannot drift apart.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults for the zero fields of GatewayConfig.
const (
	defaultGWBroadcasts   = 20
	defaultGWInterval     = 200 * time.Millisecond
	defaultGWWarmup       = 20
	defaultGWSize         = 64
	defaultGWRuns         = 3
	defaultGWEdge         = 2000
	defaultGWEchoClients  = 64
	defaultGWEchoSize     = 32
	defaultGWEchoRounds   = 200000
	defaultGWEchoDuration = 5 * time.Second
)

// defaultGWClients are the broadcast audiences when none are given: the
// issue's two.
var defaultGWClients = []int{5000, 9000}

// GatewayConfig describes a run of "wssbench gateway". Every zero field
// means the default in its comment.
type GatewayConfig struct {
	// Wssgate is the wssgate binary; "" builds one (see Config.Wssgate).
	Wssgate string
	// Clients are the broadcast audiences, one unit of each system per
	// run for each (5000 and 9000).
	Clients []int
	// Broadcasts is how many broadcasts each trigger sends per unit (20).
	Broadcasts int
	// Interval is the time between broadcasts' triggers (200ms).
	Interval time.Duration
	// Warmup is how many unmeasured broadcasts each unit sends first,
	// through its first trigger, a quarter of Interval apart (20);
	// negative sends none.
	Warmup int
	// Size is a broadcast's payload in bytes (64).
	Size int
	// Runs is how many times every unit runs; systems alternate within a
	// run, and the report gives medians over runs (3).
	Runs int
	// Text is how many idle connections the text-port unit opens; 0
	// means the largest of Clients, negative skips the unit.
	Text int
	// Edge is how many idle connections the edge TLS unit opens (2000);
	// negative skips the unit.
	Edge int
	// EchoClients is how many connections the echo units drive (64);
	// negative skips them.
	EchoClients int
	// EchoSize is the echo message size in bytes (32).
	EchoSize int
	// EchoRounds is the most round trips per echo client (200000).
	EchoRounds int
	// EchoDuration is the most an echo unit lasts (5s).
	EchoDuration time.Duration
	// Settle is how long idle connections sit before memory is read (2s).
	Settle time.Duration
	// DialParallel is how many connections are being opened at once (32).
	DialParallel int
	// PhaseTimeout bounds opening one unit's connections (60s).
	PhaseTimeout time.Duration
	// Sources are the client's source addresses, used in turn; empty
	// means 127.0.0.2 to 127.0.0.9.
	Sources []netip.Addr
	// Profile, if not "", is a directory that receives a CPU profile of
	// each broadcast and echo phase and a heap profile of each idle ws
	// unit (also as text, with the runtime's MemStats), taken from the
	// servers' /debug/pprof/.
	Profile string
	// Systems are the servers measured, of "wssgate", "hub" and "floor";
	// empty means all three.
	Systems []string
	// Self is the executable that serves the hub host and the floor as
	// hidden subcommands; "" means this program.
	Self string
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

func (c GatewayConfig) withDefaults() GatewayConfig {
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
	if len(c.Clients) == 0 {
		c.Clients = defaultGWClients
	}
	setInt(&c.Broadcasts, defaultGWBroadcasts)
	setDur(&c.Interval, defaultGWInterval)
	setInt(&c.Warmup, defaultGWWarmup)
	setInt(&c.Size, defaultGWSize)
	setInt(&c.Runs, defaultGWRuns)
	setInt(&c.Text, slices.Max(c.Clients))
	setInt(&c.Edge, defaultGWEdge)
	setInt(&c.EchoClients, defaultGWEchoClients)
	setInt(&c.EchoSize, defaultGWEchoSize)
	setInt(&c.EchoRounds, defaultGWEchoRounds)
	setDur(&c.EchoDuration, defaultGWEchoDuration)
	setDur(&c.Settle, defaultSettle)
	setInt(&c.DialParallel, defaultDialParallel)
	setDur(&c.PhaseTimeout, defaultPhaseTimeout)
	if len(c.Systems) == 0 {
		c.Systems = []string{"wssgate", "floor", "hub"}
	}
	if len(c.Sources) == 0 {
		for i := range 8 {
			c.Sources = append(c.Sources, netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)}))
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate returns every problem with c (after withDefaults). nofile
// is the descriptor limit of each process, ports the ephemeral ports
// per source address (0 if unknown).
func (c GatewayConfig) validate(nofile uint64, ports int) error {
	var errs []error
	for _, n := range c.Clients {
		if n < 1 {
			errs = append(errs, fmt.Errorf("-clients %d: must be at least 1", n))
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"broadcasts", c.Broadcasts}, {"size", c.Size}, {"runs", c.Runs}, {"echo-size", c.EchoSize}, {"echo-rounds", c.EchoRounds}, {"dial-parallel", c.DialParallel}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("-%s %d: must be at least 1", f.name, f.v))
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"interval", c.Interval}, {"echo-duration", c.EchoDuration}, {"settle", c.Settle}, {"timeout", c.PhaseTimeout}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("-%s %v: must not be negative", f.name, f.v))
		}
	}
	for _, s := range c.Systems {
		if s != "wssgate" && s != "hub" && s != "floor" {
			errs = append(errs, fmt.Errorf("-systems %s: want wssgate, hub or floor", s))
		}
	}
	if c.Size < 12 {
		errs = append(errs, fmt.Errorf("-size %d: a broadcast needs at least 12 bytes for its number", c.Size))
	}
	// Each process holds one descriptor per connection of a unit.
	conns := max(slices.Max(c.Clients), c.Text, c.Edge, c.EchoClients)
	if need := uint64(conns + fdOverhead); need > nofile {
		errs = append(errs, fmt.Errorf("%d connections need %d descriptors in the server and in the client; the limit is %d, so use at most %d",
			conns, need, nofile, nofile-fdOverhead))
	}
	for _, s := range c.Sources {
		if !s.Is4() || !netip.MustParsePrefix("127.0.0.0/8").Contains(s) {
			errs = append(errs, fmt.Errorf("-sources %s: not in 127.0.0.0/8", s))
		}
	}
	if ports > 0 && (conns+len(c.Sources)-1)/len(c.Sources) > ports {
		errs = append(errs, fmt.Errorf("%d connections from %d source address(es) exceed the %d ephemeral ports each has; add -sources", conns, len(c.Sources), ports))
	}
	return errors.Join(errs...)
}

// gwBench is one "wssbench gateway" run in progress.
type gwBench struct {
	cfg     GatewayConfig
	log     *slog.Logger
	dir     string
	self    string
	wssgate string
	certs   *certs
	pinned  bool
	http    *http.Client
	started int // servers started so far, for their directories
}

// RunGateway measures the bundled gateway side by side with the
// bare-write floor: broadcasts through the push API and through a
// client message, idle memory per connection on each listener, and
// echo through an in-process Handler. Systems alternate within each
// run. It stops every process it started and removes its temporary
// directory before returning, also when ctx ends early.
func RunGateway(ctx context.Context, cfg GatewayConfig) (*GatewayReport, error) {
	cfg = cfg.withDefaults()
	nofile, ports, err := limits()
	if err != nil {
		return nil, err
	}
	if err := cfg.validate(nofile, ports); err != nil {
		return nil, err
	}
	b := &gwBench{cfg: cfg, log: cfg.Logger, self: cfg.Self}
	if b.self == "" {
		if b.self, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	if cfg.Profile != "" {
		if err := os.MkdirAll(cfg.Profile, 0o755); err != nil {
			return nil, err
		}
	}
	if b.dir, err = os.MkdirTemp("", "wssbench-gateway-"); err != nil {
		return nil, err
	}
	defer os.RemoveAll(b.dir)
	if b.certs, err = newCerts(b.dir); err != nil {
		return nil, err
	}
	b.wssgate = cfg.Wssgate
	if b.wssgate == "" {
		b.log.Info("building wssgate", "package", wssgatePackage)
		if b.wssgate, err = buildWssgate(ctx, b.dir); err != nil {
			return nil, err
		}
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	b.http = &http.Client{Transport: tr, Timeout: 30 * time.Second}

	// The client runs on CPU 0 with one P, the servers on CPU 1.
	if runtime.NumCPU() >= 2 {
		if _, err := exec.LookPath("taskset"); err == nil {
			undo, err := pinSelf(0)
			if err != nil {
				b.log.Warn("could not pin the client to CPU 0; running unpinned", "err", err)
			} else {
				defer undo()
				b.pinned = true
			}
		} else {
			b.log.Warn("taskset not found; running unpinned")
		}
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)

	rep := &GatewayReport{Settings: gatewaySettingsOf(cfg, b.pinned), Machine: machineInfo()}
	has := func(s string) bool { return slices.Contains(cfg.Systems, s) }
	for run := 1; run <= cfg.Runs; run++ {
		order := rotate(cfg.Systems, run-1)
		for _, n := range cfg.Clients {
			for _, sys := range order {
				u, err := b.broadcastUnit(ctx, sys, n, run)
				if err != nil {
					return nil, fmt.Errorf("run %d, %s, %d clients: %w", run, sys, n, err)
				}
				rep.Units = append(rep.Units, u)
			}
		}
		if cfg.Text > 0 && has("wssgate") {
			u, err := b.idleUnit(ctx, "text", cfg.Text, run)
			if err != nil {
				return nil, fmt.Errorf("run %d, text port: %w", run, err)
			}
			rep.Units = append(rep.Units, u)
		}
		if cfg.Edge > 0 && has("wssgate") {
			u, err := b.idleUnit(ctx, "edge", cfg.Edge, run)
			if err != nil {
				return nil, fmt.Errorf("run %d, edge: %w", run, err)
			}
			rep.Units = append(rep.Units, u)
		}
		if cfg.EchoClients > 0 {
			for _, sys := range rotate([]string{"hub", "floor"}, run-1) {
				if !has(sys) {
					continue
				}
				u, err := b.echoUnit(ctx, sys, run)
				if err != nil {
					return nil, fmt.Errorf("run %d, %s echo: %w", run, sys, err)
				}
				rep.Units = append(rep.Units, u)
			}
		}
	}
	for _, u := range rep.Units {
		if u.System == "wssgate" && rep.Machine.Wssgate == "" {
			rep.Machine.Wssgate = u.Version
		}
	}
	rep.Rows = rep.summarize()
	return rep, nil
}

// rotate returns s rotated left by k.
func rotate(s []string, k int) []string {
	k %= len(s)
	return append(slices.Clone(s[k:]), s[:k]...)
}

// pinSelf pins every thread of this process to cpu, so that threads
// made later (cloned from them) are pinned too, and returns a function
// that restores each thread's previous set.
func pinSelf(cpu int) (undo func(), err error) {
	var set unix.CPUSet
	set.Set(cpu)
	prev := map[int]unix.CPUSet{}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		var old unix.CPUSet
		if unix.SchedGetaffinity(tid, &old) != nil {
			continue // exited
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			continue
		}
		prev[tid] = old
	}
	if len(prev) == 0 {
		return nil, errors.New("no thread could be pinned")
	}
	return func() {
		// Threads made since inherited the pin: give them the first
		// thread's old set.
		var all unix.CPUSet
		for _, s := range prev {
			all = s
			break
		}
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			s, ok := prev[tid]
			if !ok {
				s = all
			}
			_ = unix.SchedSetaffinity(tid, &s)
		}
	}, nil
}

// startServer starts system sys ("wssgate", "hub" or "floor") in a
// directory of its own.
func (b *gwBench) startServer(ctx context.Context, sys string, maxConns int) (*gwServer, error) {
	b.started++
	dir := filepath.Join(b.dir, fmt.Sprintf("%s-%d", sys, b.started))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	o := gwServerOptions{Dir: dir, Pin: b.pinned, MaxConns: maxConns + fdOverhead, Certs: b.certs, PProf: b.cfg.Profile != ""}
	if sys == "wssgate" {
		return startGatewayWssgate(ctx, b.wssgate, o)
	}
	return startGatewayHost(ctx, b.self, sys, o)
}

// stopServer stops s and passes on what it logged.
func (b *gwBench) stopServer(s *gwServer, err *error) {
	if serr := s.proc.stop(); serr != nil {
		*err = errors.Join(*err, serr)
	}
	reportLogs(b.log.With("server", s.Name), s.Logs)
}

// baseline waits a moment for a fresh server to settle and samples it.
func (b *gwBench) baseline(ctx context.Context, pid int) (usage, error) {
	if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
		return usage{}, err
	}
	return sampleTree(pid)
}

// waitConns waits, within the phase timeout, until the server holds n
// more descriptors than at base: it has accepted every connection.
func (b *gwBench) waitConns(ctx context.Context, pid, base, n int) error {
	deadline := time.Now().Add(b.cfg.PhaseTimeout)
	for {
		fds, err := countFDs(pid)
		if err != nil {
			return err
		}
		if fds >= base+n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server holds %d descriptors, %d fewer than the connections opened", fds, base+n-fds)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// settleAndSample lets idle connections sit, then records the server's
// memory in u against base.
func (b *gwBench) settleAndSample(ctx context.Context, pid int, base usage, u *GatewayUnit) error {
	if err := sleepCtx(ctx, b.cfg.Settle); err != nil {
		return err
	}
	loaded, err := sampleTree(pid)
	if err != nil {
		return err
	}
	u.RSSBefore, u.RSSAfter = base.RSS, loaded.RSS
	u.RSSPerConn = float64(loaded.RSS-base.RSS) / float64(u.Conns)
	return nil
}

// broadcastUnit runs n ws clients of system sys: their idle memory, then
// the broadcasts of each trigger the system has (wssgate: push API; hub:
// a client message; floor: both).
func (b *gwBench) broadcastUnit(ctx context.Context, sys string, n, run int) (u *GatewayUnit, err error) {
	cfg := b.cfg
	s, err := b.startServer(ctx, sys, n)
	if err != nil {
		return nil, err
	}
	defer b.stopServer(s, &err)
	pid := s.proc.pid()
	log := b.log.With("run", run, "server", sys, "clients", n)
	u = &GatewayUnit{Run: run, System: sys, Listener: "ws", Conns: n, Version: s.Version}
	base, err := b.baseline(ctx, pid)
	if err != nil {
		return nil, err
	}

	// The triggers this system has; the floor's two alternate in order
	// from run to run.
	triggers := map[string][]string{"wssgate": {"push"}, "hub": {"message"}, "floor": {"push", "message"}}[sys]
	triggers = rotate(triggers, run-1)
	rcv := newReceiver(n, max(cfg.Warmup, 0)+len(triggers)*cfg.Broadcasts)
	d := &gwDialer{addr: s.WS, host: s.WS, sources: cfg.Sources}
	log.Info("opening connections")
	pctx, cancel := context.WithTimeout(ctx, cfg.PhaseTimeout)
	t0 := time.Now()
	conns, err := dialMany(pctx, n, cfg.DialParallel, func(ctx context.Context, i int) (net.Conn, error) {
		path := "/ws"
		if i == 0 {
			path = "/trigger" // the floor reads this one; the hub reads every connection
		}
		nc, rest, err := d.dialWS(ctx, path)
		if err == nil {
			rcv.start(i, nc, rest)
		}
		return nc, err
	}, func(nc net.Conn) { nc.Close() })
	cancel()
	if err != nil {
		rcv.wg.Wait()
		return nil, err
	}
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
		rcv.wg.Wait()
	}()
	if err := b.waitConns(ctx, pid, base.FDs, n); err != nil {
		return nil, err
	}
	u.OpenSeconds = time.Since(t0).Seconds()
	if err := b.settleAndSample(ctx, pid, base, u); err != nil {
		return nil, err
	}
	b.profile(ctx, s, fmt.Sprintf("%s-%d-run%d.heap.pprof", sys, n, run), "heap", 0)
	b.profile(ctx, s, fmt.Sprintf("%s-%d-run%d.heap.txt", sys, n, run), "heap?debug=1", 0) // with the runtime's MemStats
	log.Info("idle", "rss_per_conn_kib", fmt.Sprintf("%.2f", u.RSSPerConn/1024))

	phase := func(trigger string, seqs []int, fire func(seq int) error) error {
		if len(seqs) == 0 {
			return nil
		}
		prof := b.profileAsync(ctx, s, fmt.Sprintf("%s-%d-run%d-%s.cpu.pprof", sys, n, run, trigger), time.Duration(len(seqs))*cfg.Interval)
		cpu0, err := readCPU(pid)
		if err != nil {
			return err
		}
		st, err := rcv.runBroadcasts(ctx, seqs, cfg.Interval, fire)
		if err != nil {
			return err
		}
		cpu1, err := readCPU(pid)
		if err != nil {
			return err
		}
		prof()
		r := GatewayBroadcast{Trigger: trigger, Count: len(seqs), Deliveries: st.Deliveries, Lost: st.Lost}
		if st.Deliveries > 0 {
			r.CPUPerDeliveryUS = micros(cpu1-cpu0) / float64(st.Deliveries)
		}
		r.FirstMS, r.LastMS = millisAll(st.First), millisAll(st.Last)
		r.FirstP50MS, r.LastP50MS, r.LastP99MS = pct(r.FirstMS, 50), pct(r.LastMS, 50), pct(r.LastMS, 99)
		u.Broadcasts = append(u.Broadcasts, r)
		log.Info("broadcasts", "trigger", trigger, "cpu_per_delivery_us", fmt.Sprintf("%.2f", r.CPUPerDeliveryUS),
			"first_p50_ms", fmt.Sprintf("%.2f", r.FirstP50MS), "last_p50_ms", fmt.Sprintf("%.1f", r.LastP50MS), "lost", r.Lost)
		return nil
	}
	fire := map[string]func(seq int) error{
		"push": func(seq int) error { return b.push(ctx, s, broadcastPayload(seq, cfg.Size)) },
		"message": func(seq int) error {
			_, err := conns[0].Write(maskedFrame(broadcastPayload(seq, cfg.Size)))
			return err
		},
	}
	next := 0
	if cfg.Warmup > 0 {
		// Unmeasured: a connection's first messages cost the sender more
		// than later ones (TCP's quick ACKs at the start), and every
		// measured phase, the floor's second one too, should find the
		// connections past that.
		if _, err := rcv.runBroadcasts(ctx, seqRange(0, cfg.Warmup), cfg.Interval/4, fire[triggers[0]]); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
		next = cfg.Warmup
	}
	for _, tr := range triggers {
		if err := phase(tr, seqRange(next, cfg.Broadcasts), fire[tr]); err != nil {
			return nil, fmt.Errorf("%s: %w", tr, err)
		}
		next += cfg.Broadcasts
	}
	u.Stray = rcv.stray.Load()
	return u, nil
}

func seqRange(from, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = from + i
	}
	return s
}

// push calls sendToAll on s's push API.
func (b *gwBench) push(ctx context.Context, s *gwServer, payload []byte) error {
	body := fmt.Sprintf(`{"data":%q}`, payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Push+"/api/sendToAll", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Secret)
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	ans, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("push API: %s: %s", resp.Status, strings.TrimSpace(string(ans)))
	}
	return nil
}

// idleUnit opens n idle connections to wssgate's text port ("text") or
// its edge TLS route with gateway: true ("edge") and records the memory
// they cost.
func (b *gwBench) idleUnit(ctx context.Context, listener string, n, run int) (u *GatewayUnit, err error) {
	cfg := b.cfg
	s, err := b.startServer(ctx, "wssgate", n)
	if err != nil {
		return nil, err
	}
	defer b.stopServer(s, &err)
	pid := s.proc.pid()
	u = &GatewayUnit{Run: run, System: "wssgate", Listener: listener, Conns: n, Version: s.Version}
	base, err := b.baseline(ctx, pid)
	if err != nil {
		return nil, err
	}
	b.log.Info("opening idle connections", "run", run, "listener", listener, "n", n)
	var dial func(ctx context.Context, i int) (net.Conn, error)
	switch listener {
	case "text":
		d := &gwDialer{addr: s.Text, sources: cfg.Sources}
		dial = func(ctx context.Context, _ int) (net.Conn, error) { return d.dialTCP(ctx) }
	case "edge":
		d := &gwDialer{addr: s.Edge, host: "localhost", sources: cfg.Sources, tls: &tls.Config{
			RootCAs: b.certs.Roots, ServerName: "localhost", MinVersion: tls.VersionTLS12,
			CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
		}}
		dial = func(ctx context.Context, _ int) (net.Conn, error) {
			nc, _, err := d.dialWS(ctx, "/wss")
			return nc, err
		}
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.PhaseTimeout)
	t0 := time.Now()
	conns, err := dialMany(pctx, n, cfg.DialParallel, dial, func(nc net.Conn) { nc.Close() })
	cancel()
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	if err := b.waitConns(ctx, pid, base.FDs, n); err != nil {
		return nil, err
	}
	u.OpenSeconds = time.Since(t0).Seconds()
	if err := b.settleAndSample(ctx, pid, base, u); err != nil {
		return nil, err
	}
	b.log.Info("idle", "run", run, "listener", listener, "rss_per_conn_kib", fmt.Sprintf("%.2f", u.RSSPerConn/1024))
	return u, nil
}

// echoUnit drives EchoClients connections of system sys ("hub" or
// "floor") through echo round trips.
func (b *gwBench) echoUnit(ctx context.Context, sys string, run int) (u *GatewayUnit, err error) {
	cfg := b.cfg
	s, err := b.startServer(ctx, sys, cfg.EchoClients)
	if err != nil {
		return nil, err
	}
	defer b.stopServer(s, &err)
	pid := s.proc.pid()
	u = &GatewayUnit{Run: run, System: sys, Listener: "echo", Conns: cfg.EchoClients, Version: s.Version}
	d := &gwDialer{addr: s.WS, host: s.WS, sources: cfg.Sources}
	type wsc struct {
		nc   net.Conn
		rest []byte
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.PhaseTimeout)
	cs, err := dialMany(pctx, cfg.EchoClients, cfg.EchoClients, func(ctx context.Context, _ int) (wsc, error) {
		nc, rest, err := d.dialWS(ctx, "/echo")
		return wsc{nc, rest}, err
	}, func(c wsc) { c.nc.Close() })
	cancel()
	if err != nil {
		return nil, err
	}
	conns, rests := make([]net.Conn, len(cs)), make([][]byte, len(cs))
	for i, c := range cs {
		conns[i], rests[i] = c.nc, c.rest
	}
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	b.log.Info("echo", "run", run, "server", sys, "clients", cfg.EchoClients, "max", cfg.EchoDuration)
	prof := b.profileAsync(ctx, s, fmt.Sprintf("%s-echo-run%d.cpu.pprof", sys, run), cfg.EchoDuration)
	var cpu0, self0 time.Duration
	var cpuErr error
	st, err := runWSEcho(ctx, conns, rests, cfg.EchoRounds, cfg.EchoSize, cfg.EchoDuration, func() {
		cpu0, cpuErr = readCPU(pid)
		self0 = selfCPU()
	})
	if err != nil {
		return nil, err
	}
	if cpuErr != nil {
		return nil, cpuErr
	}
	self1 := selfCPU()
	cpu1, err := readCPU(pid)
	if err != nil {
		return nil, err
	}
	prof()
	e := &GatewayEcho{Clients: cfg.EchoClients, Size: cfg.EchoSize, RoundTrips: st.RoundTrips, Seconds: st.Elapsed.Seconds(),
		P50US: micros(percentile(st.Latencies, 50)), P99US: micros(percentile(st.Latencies, 99))}
	if st.Elapsed > 0 {
		e.ServerCores = (cpu1 - cpu0).Seconds() / st.Elapsed.Seconds()
		e.ClientCores = (self1 - self0).Seconds() / st.Elapsed.Seconds()
	}
	if st.RoundTrips > 0 {
		e.PerSecond = float64(st.RoundTrips) / st.Elapsed.Seconds()
		e.CPUPerRoundTripUS = micros(cpu1-cpu0) / float64(st.RoundTrips)
	}
	u.Echo = e
	b.log.Info("echo done", "run", run, "server", sys, "per_second", int(e.PerSecond), "cpu_per_round_trip_us", fmt.Sprintf("%.2f", e.CPUPerRoundTripUS))
	return u, nil
}

// profile saves s's pprof profile name (with seconds, for a CPU
// profile) as file in the profile directory, when profiling. Failures
// are logged: a profile is an aid, not a figure.
func (b *gwBench) profile(ctx context.Context, s *gwServer, file, name string, seconds int) {
	if b.cfg.Profile == "" || s.PProf == "" {
		return
	}
	url := s.PProf + name
	if seconds > 0 {
		url += "?seconds=" + strconv.Itoa(seconds)
	}
	if err := b.fetchTo(ctx, url, filepath.Join(b.cfg.Profile, file)); err != nil {
		b.log.Warn("profile", "url", url, "err", err)
	}
}

// profileAsync starts a CPU profile of s covering d and returns a
// function that waits for it to be saved. Without profiling it does
// nothing.
func (b *gwBench) profileAsync(ctx context.Context, s *gwServer, file string, d time.Duration) (wait func()) {
	if b.cfg.Profile == "" || s.PProf == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.profile(ctx, s, file, "profile", max(1, int(math.Ceil(d.Seconds()))))
	}()
	return func() { <-done }
}

func (b *gwBench) fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	c := &http.Client{Transport: b.http.Transport, Timeout: 5 * time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func millisAll(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}

// pct returns the p-th percentile of vs by the nearest-rank method, 0
// for none.
func pct(vs []float64, p float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(vs))
	rank := int(math.Ceil(float64(len(s))*p/100)) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// selfCPU is the CPU time this process (the client) has used.
func selfCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
