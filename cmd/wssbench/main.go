// Command wssbench measures wssgate and nginx side by side as wss://
// proxies: the same echo backend behind each, the same client in front,
// one proxy loaded at a time. It reports the proxy's memory per idle
// connection, its CPU per TLS handshake, and echo round trips per second,
// latency and proxy CPU per round trip, with the ratio wssgate/nginx.
//
// Usage:
//
//	go run ./cmd/wssbench [flags]
//
// It builds wssgate with "go build" (or takes -wssgate PATH), finds nginx
// in PATH or /usr/sbin (or takes -nginx PATH; without one it measures
// wssgate alone), runs its own echo backend as a separate process
// ("wssbench backend", hidden), and generates a throwaway CA and
// certificate for localhost. Everything listens on 127.0.0.1 on free
// ports, every load loop is bounded in count and time, and everything it
// started is stopped and its temporary files removed when it ends.
// Progress goes to stderr; the table (or -json) to stdout.
//
// "wssbench gateway [flags]" measures the bundled gateway instead: wssgate
// with gateway.websocket_listen and the push API, and the gateway package
// with an in-process Handler, each beside a bare-write floor measured in
// the same run (see RunGateway and BENCHMARKS.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // the run failed
	exitUsage = 2 // bad command line
)

// run carries out one command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "backend":
			return cmdBackend(ctx, args[1:], stdout, stderr)
		case "gateway":
			return cmdGateway(ctx, args[1:], stdout, stderr)
		case "gateway-hub":
			return cmdGatewayHost(ctx, "hub", args[1:], stdout, stderr)
		case "gateway-floor":
			return cmdGatewayHost(ctx, "floor", args[1:], stdout, stderr)
		}
	}
	return runReport(ctx, "wssbench", args, stdout, stderr, parseFlags,
		func(ctx context.Context, cfg Config, log *slog.Logger) (report, error) {
			cfg.Logger = log
			return Run(ctx, cfg)
		})
}

// report is what a run prints: a table, or JSON with -json.
type report interface {
	WriteJSON(w io.Writer) error
	WriteTable(w io.Writer) error
}

// runReport parses args with parse, runs run with the result and a
// logger to stderr, and prints its report to stdout; it returns the exit
// code. name prefixes error messages.
func runReport[C any](ctx context.Context, name string, args []string, stdout, stderr io.Writer,
	parse func([]string, io.Writer) (C, bool, error), run func(context.Context, C, *slog.Logger) (report, error)) int {
	cfg, asJSON, err := parse(args, stderr)
	if err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	rep, err := run(ctx, cfg, slog.New(slog.NewTextHandler(stderr, nil)).With("component", "wssbench"))
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitFail
	}
	if asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitFail
	}
	return exitOK
}

// parseFlags turns the command line into a Config and the -json switch.
// It prints problems and usage to stderr itself.
func parseFlags(args []string, stderr io.Writer) (Config, bool, error) {
	var cfg Config
	fs := flag.NewFlagSet("wssbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: wssbench [flags]\n\nMeasures wssgate and nginx as wss:// proxies in front of the same echo backend.\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.Wssgate, "wssgate", "", "wssgate `binary` (default: go build it into a temp dir; run from inside the module)")
	fs.StringVar(&cfg.Nginx, "nginx", "", "nginx `binary`, or \"off\" (default: nginx in PATH or /usr/sbin; none found: measure wssgate alone)")
	fs.IntVar(&cfg.NginxWorkers, "nginx-workers", 0, "nginx worker_processes (default: one per CPU, the peer of wssgate's GOMAXPROCS)")
	fs.IntVar(&cfg.Idle, "idle", defaultIdle, "idle connections for the memory phase (each costs the proxy 2 descriptors)")
	fs.IntVar(&cfg.Clients, "clients", defaultClients, "concurrent echo clients")
	fs.IntVar(&cfg.Rounds, "rounds", defaultRounds, "round trips per echo client, at most")
	fs.DurationVar(&cfg.Duration, "duration", defaultDuration, "echo phase length, at most")
	fs.IntVar(&cfg.MessageSize, "size", defaultMessageSize, "echo message size in bytes")
	fs.DurationVar(&cfg.Settle, "settle", defaultSettle, "how long idle connections sit before the proxy's memory is read")
	fs.IntVar(&cfg.DialParallel, "dial-parallel", defaultDialParallel, "idle connections being opened at once")
	fs.DurationVar(&cfg.PhaseTimeout, "timeout", defaultPhaseTimeout, "bound on opening the connections of a phase")
	sources := fs.String("sources", "", "comma-separated client source `addresses` in 127.0.0.0/8, used in turn (each gives ~28k ports)")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return cfg, false, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wssbench: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return cfg, false, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	srcs, err := parseSources(*sources)
	if err != nil {
		fmt.Fprintf(stderr, "wssbench: %v\n", err)
		return cfg, false, err
	}
	cfg.Sources = srcs
	return cfg, *asJSON, nil
}

// cmdGateway is the "gateway" subcommand: RunGateway with flags.
func cmdGateway(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runReport(ctx, "wssbench gateway", args, stdout, stderr, parseGatewayFlags,
		func(ctx context.Context, cfg GatewayConfig, log *slog.Logger) (report, error) {
			cfg.Logger = log
			return RunGateway(ctx, cfg)
		})
}

// parseGatewayFlags turns the gateway subcommand's command line into a
// GatewayConfig and the -json switch.
func parseGatewayFlags(args []string, stderr io.Writer) (GatewayConfig, bool, error) {
	var cfg GatewayConfig
	fs := flag.NewFlagSet("wssbench gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: wssbench gateway [flags]\n\nMeasures the bundled gateway (wssgate's websocket_listen and push API; the gateway package with an\nin-process Handler) beside a bare-write floor: broadcast CPU per delivery and latency, idle RSS per\nconnection, echo. Servers run on CPU 1 with GOMAXPROCS=1, the client on CPU 0.\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.Wssgate, "wssgate", "", "wssgate `binary` (default: go build it into a temp dir; run from inside the module)")
	clients := fs.String("clients", "5000,9000", "comma-separated broadcast audiences (ws connections per unit)")
	fs.IntVar(&cfg.Broadcasts, "broadcasts", defaultGWBroadcasts, "broadcasts per trigger and unit")
	fs.DurationVar(&cfg.Interval, "interval", defaultGWInterval, "time between broadcasts")
	fs.IntVar(&cfg.Warmup, "warmup", defaultGWWarmup, "unmeasured broadcasts first, on each unit's first trigger (-1 none)")
	fs.IntVar(&cfg.Size, "size", defaultGWSize, "broadcast payload in bytes")
	fs.IntVar(&cfg.Runs, "runs", defaultGWRuns, "runs; systems alternate within each, medians are over runs")
	fs.IntVar(&cfg.Text, "text", 0, "idle connections on the text port (default: the largest of -clients; -1 skips)")
	fs.IntVar(&cfg.Edge, "edge", defaultGWEdge, "idle wss connections on the edge's gateway: true route (-1 skips)")
	fs.IntVar(&cfg.EchoClients, "echo-clients", defaultGWEchoClients, "echo connections (-1 skips the echo units)")
	fs.IntVar(&cfg.EchoSize, "echo-size", defaultGWEchoSize, "echo message size in bytes")
	fs.IntVar(&cfg.EchoRounds, "echo-rounds", defaultGWEchoRounds, "round trips per echo client, at most")
	fs.DurationVar(&cfg.EchoDuration, "echo-duration", defaultGWEchoDuration, "echo unit length, at most")
	fs.DurationVar(&cfg.Settle, "settle", defaultSettle, "how long idle connections sit before the server's memory is read")
	fs.IntVar(&cfg.DialParallel, "dial-parallel", defaultDialParallel, "connections being opened at once")
	fs.DurationVar(&cfg.PhaseTimeout, "timeout", defaultPhaseTimeout, "bound on opening one unit's connections")
	fs.StringVar(&cfg.Profile, "profile", "", "`directory` for CPU profiles of the broadcast and echo phases and heap profiles at idle")
	sources := fs.String("sources", "", "comma-separated client source `addresses` in 127.0.0.0/8 (default 127.0.0.2 to 127.0.0.9)")
	systems := fs.String("systems", "wssgate,floor,hub", "comma-separated servers to measure, of wssgate, hub and floor")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return cfg, false, err
	}
	for _, s := range strings.Split(*systems, ",") {
		cfg.Systems = append(cfg.Systems, strings.TrimSpace(s))
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wssbench gateway: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return cfg, false, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, c := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil {
			fmt.Fprintf(stderr, "wssbench gateway: -clients: %v\n", err)
			return cfg, false, fmt.Errorf("-clients: %w", err)
		}
		cfg.Clients = append(cfg.Clients, n)
	}
	srcs, err := parseSources(*sources)
	if err != nil {
		fmt.Fprintf(stderr, "wssbench gateway: %v\n", err)
		return cfg, false, err
	}
	cfg.Sources = srcs
	return cfg, *asJSON, nil
}

// parseSources parses -sources: comma-separated IP addresses; "" is none.
func parseSources(list string) ([]netip.Addr, error) {
	var out []netip.Addr
	if list == "" {
		return nil, nil
	}
	for _, s := range strings.Split(list, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("-sources: %w", err)
		}
		out = append(out, a)
	}
	return out, nil
}
