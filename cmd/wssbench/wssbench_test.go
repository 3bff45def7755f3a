package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wssgate/wssgate/internal/testutil"
)

// TestMain lets the test binary serve as the echo backend: Run starts
// "os.Executable() backend", which is this binary during tests.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "backend" || strings.HasPrefix(os.Args[1], "gateway-")) {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestRunTiny runs a tiny bounded benchmark against wssgate, and against
// nginx when one is installed (required when CI=true), and checks that every figure is sane, that
// every process it started is gone and that its files are removed.
func TestRunTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wssgate and runs processes")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // Run's temporary directory goes here
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const idle, clients, rounds = 20, 2, 50
	rep, err := Run(ctx, Config{
		Idle:     idle,
		Clients:  clients,
		Rounds:   rounds,
		Duration: 20 * time.Second, // the count ends the phase, long before this
		Settle:   100 * time.Millisecond,
		Logger:   testutil.Logger(t),
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	if rep.Wssgate == nil {
		t.Fatal("no wssgate result")
	}
	results := []*Result{rep.Wssgate}
	if rep.Nginx != nil {
		results = append(results, rep.Nginx)
	} else {
		if rep.NginxSkipped == "" {
			t.Error("nginx missing from the report without a reason")
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("nginx not measured (%s): CI must install it (.ci/run installs Debian's nginx)", rep.NginxSkipped)
		}
		t.Logf("nginx not measured (%s); checked wssgate alone (apt-get install nginx to compare)", rep.NginxSkipped)
	}
	for _, r := range results {
		t.Run(r.Proxy, func(t *testing.T) {
			checkResult(t, r, idle, clients*rounds)
		})
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	for _, m := range metrics() {
		if !strings.Contains(table.String(), m.name) {
			t.Errorf("table has no row %q", m.name)
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Wssgate Result `json:"wssgate"`
		Rows    []Row  `json:"rows"`
	}
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil {
		t.Fatalf("-json output does not decode: %v", err)
	}
	if got, want := decoded.Wssgate.Echo.RoundTrips, int64(clients*rounds); got != want {
		t.Errorf("JSON wssgate.echo.round_trips = %d, want %d", got, want)
	}
	if got, want := len(decoded.Rows), len(metrics()); got != want {
		t.Errorf("JSON rows: got %d, want %d", got, want)
	}
	for _, row := range decoded.Rows {
		if (row.Ratio != nil) != (rep.Nginx != nil) {
			t.Errorf("row %q: ratio %v with nginx measured = %v", row.Metric, row.Ratio, rep.Nginx != nil)
		}
	}

	// Everything Run started has been waited for, and its files are gone.
	if tree, err := processTree(os.Getpid()); err != nil {
		t.Error(err)
	} else if len(tree) > 1 {
		t.Errorf("processes left running after Run: %+v", tree[1:])
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("Run left %d entries in its temporary directory, first %s", len(left), left[0].Name())
	}
	goleak.VerifyNone(t)
}

// checkResult checks one proxy's figures for a run with idle connections
// and the given number of echo round trips.
func checkResult(t *testing.T, r *Result, idle int, roundTrips int) {
	t.Helper()
	if r.Version == "" || r.Setup == "" || !strings.HasPrefix(r.TLS, "TLS 1.") {
		t.Errorf("version %q, setup %q, TLS %q: want all set", r.Version, r.Setup, r.TLS)
	}
	if r.Processes < 1 {
		t.Errorf("processes = %d, want >= 1", r.Processes)
	}
	if r.Idle.Conns != idle {
		t.Errorf("idle conns = %d, want %d", r.Idle.Conns, idle)
	}
	if r.Idle.RSSBefore <= 0 || r.Idle.BytesPerConn <= 0 {
		t.Errorf("idle memory: RSS before %d, bytes per conn %.0f; want both > 0", r.Idle.RSSBefore, r.Idle.BytesPerConn)
	}
	if r.Idle.FDsPerConn < 1.5 || r.Idle.FDsPerConn > 2.5 {
		t.Errorf("fds per idle conn = %.2f, want about 2 (client side + backend side)", r.Idle.FDsPerConn)
	}
	if r.Idle.CPUPerConnUS <= 0 {
		t.Errorf("CPU per handshake = %v µs, want > 0", r.Idle.CPUPerConnUS)
	}
	e := r.Echo
	if e.RoundTrips != int64(roundTrips) {
		t.Errorf("round trips = %d, want %d", e.RoundTrips, roundTrips)
	}
	if e.PerSecond <= 0 || e.Seconds <= 0 {
		t.Errorf("round trips/s = %v over %v s, want > 0", e.PerSecond, e.Seconds)
	}
	if e.P50US <= 0 || e.P99US < e.P50US {
		t.Errorf("latency p50 %v µs, p99 %v µs: want 0 < p50 <= p99", e.P50US, e.P99US)
	}
	if e.CPUSeconds <= 0 || e.CPUPerRoundTripUS <= 0 {
		t.Errorf("proxy CPU %v s, %v µs per round trip: want > 0", e.CPUSeconds, e.CPUPerRoundTripUS)
	}
}

func TestValidate(t *testing.T) {
	base := Config{}.withDefaults()
	tests := []struct {
		name   string
		change func(*Config)
		nofile uint64
		ports  int
		want   string // "" = valid
	}{
		{"defaults", func(*Config) {}, 20000, 28232, ""},
		{"too many for the fd limit", func(c *Config) { c.Idle = 10000 }, 20000, 28232, "use at most 9968"},
		{"clients count too", func(c *Config) { c.Clients = 10000 }, 20000, 28232, "10000 connections need 20064 descriptors"},
		{"negative", func(c *Config) { c.Rounds = -1 }, 20000, 28232, "-rounds -1"},
		{"source outside loopback", func(c *Config) { c.Sources = []netip.Addr{netip.MustParseAddr("10.0.0.1")} }, 20000, 28232, "not in 127.0.0.0/8"},
		{"ports per source", func(c *Config) { c.Idle = 30000 }, 1 << 20, 28232, "add -sources"},
		{"ports with sources", func(c *Config) {
			c.Idle = 30000
			c.Sources = []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
		}, 1 << 20, 28232, ""},
		{"message too big", func(c *Config) { c.MessageSize = 2 << 20 }, 20000, 0, "-size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.change(&c)
			err := c.validate(tt.nofile, tt.ports)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	var stderr bytes.Buffer
	cfg, asJSON, err := parseFlags([]string{"-idle", "100", "-sources", "127.0.0.2, 127.0.0.3", "-nginx", "off", "-json"}, &stderr)
	if err != nil {
		t.Fatalf("parseFlags: %v (%s)", err, stderr.String())
	}
	if cfg.Idle != 100 || cfg.Nginx != nginxOff || !asJSON || len(cfg.Sources) != 2 || cfg.Sources[1] != netip.MustParseAddr("127.0.0.3") {
		t.Errorf("got %+v json=%v", cfg, asJSON)
	}
	if _, _, err := parseFlags([]string{"-sources", "localhost"}, &stderr); err == nil {
		t.Error("-sources localhost: got no error, want one")
	}
	if code := run(context.Background(), []string{"-idle", "x"}, &bytes.Buffer{}, &bytes.Buffer{}); code != exitUsage {
		t.Errorf("bad flag: exit %d, want %d", code, exitUsage)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {0.1, 1}} {
		if got := percentile(d, tt.p); got != tt.want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

func TestFindNginxMissing(t *testing.T) {
	if _, err := findNginx("/nonexistent/nginx"); err == nil || errors.Is(err, errNoNginx) {
		t.Errorf("explicit missing path: got %v, want an error other than errNoNginx", err)
	}
}

func TestReportLogs(t *testing.T) {
	dir := t.TempDir()
	quiet := filepath.Join(dir, "quiet.log")
	noisy := filepath.Join(dir, "error.log")
	if err := os.WriteFile(quiet, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(noisy, []byte("2026/01/01 [alert] 1#1: 4096 worker_connections are not enough\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	reportLogs(slog.New(slog.NewTextHandler(&out, nil)), []string{quiet, noisy, filepath.Join(dir, "missing.log")})
	if got := strings.Count(out.String(), "the proxy logged"); got != 1 {
		t.Errorf("got %d warnings, want 1 (for error.log):\n%s", got, out.String())
	}
	if !strings.Contains(out.String(), "worker_connections are not enough") || !strings.Contains(out.String(), "file=error.log") {
		t.Errorf("warning does not quote the log:\n%s", out.String())
	}
}

// TestRunGatewayTiny runs a tiny bounded gateway benchmark and checks
// only that it works: every client got every broadcast of every trigger,
// every echo came back, every unit has its figures, and everything it
// started is gone. Timings are never asserted.
func TestRunGatewayTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wssgate and runs processes")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	const clients, broadcasts, echoClients, echoRounds = 200, 3, 4, 50
	rep, err := RunGateway(ctx, GatewayConfig{
		Clients:      []int{clients},
		Broadcasts:   broadcasts,
		Interval:     20 * time.Millisecond,
		Runs:         1,
		Text:         50,
		Edge:         20,
		EchoClients:  echoClients,
		EchoRounds:   echoRounds,
		EchoDuration: 20 * time.Second, // the count ends the unit long before this
		Settle:       50 * time.Millisecond,
		Logger:       testutil.Logger(t),
	})
	if err != nil {
		t.Fatalf("RunGateway: %v", err)
	}
	triggers := map[string][]string{"wssgate": {"push"}, "hub": {"message"}, "floor": {"push", "message"}}
	seen := map[string]bool{}
	for _, u := range rep.Units {
		name := u.System + "/" + u.Listener
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			switch u.Listener {
			case "ws":
				var got []string
				for _, b := range u.Broadcasts {
					got = append(got, b.Trigger)
					if b.Count != broadcasts || b.Deliveries != clients*broadcasts || b.Lost != 0 {
						t.Errorf("%s: %d broadcasts, %d deliveries, %d lost; want %d, %d, 0", b.Trigger, b.Count, b.Deliveries, b.Lost, broadcasts, clients*broadcasts)
					}
					if len(b.FirstMS) != broadcasts || len(b.LastMS) != broadcasts {
						t.Errorf("%s: %d first and %d last latencies, want %d each", b.Trigger, len(b.FirstMS), len(b.LastMS), broadcasts)
					}
				}
				if want := triggers[u.System]; !slices.Equal(got, want) {
					t.Errorf("triggers %v, want %v", got, want)
				}
				if u.Stray != 0 {
					t.Errorf("%d stray messages, want 0", u.Stray)
				}
				fallthrough
			case "text", "edge":
				if u.RSSBefore <= 0 || u.RSSAfter <= 0 {
					t.Errorf("RSS before %d, after %d: want both > 0", u.RSSBefore, u.RSSAfter)
				}
			case "echo":
				if u.Echo == nil || u.Echo.RoundTrips != echoClients*echoRounds {
					t.Errorf("echo %+v: want %d round trips", u.Echo, echoClients*echoRounds)
				}
			}
		})
	}
	for _, want := range []string{"wssgate/ws", "hub/ws", "floor/ws", "wssgate/text", "wssgate/edge", "hub/echo", "floor/echo"} {
		if !seen[want] {
			t.Errorf("no %s unit", want)
		}
	}

	var table, js bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var decoded GatewayReport
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil {
		t.Fatalf("-json output does not decode: %v", err)
	}
	if len(decoded.Rows) == 0 || len(decoded.Units) != len(rep.Units) {
		t.Errorf("JSON: %d rows, %d units; want rows and %d units", len(decoded.Rows), len(decoded.Units), len(rep.Units))
	}

	if tree, err := processTree(os.Getpid()); err != nil {
		t.Error(err)
	} else if len(tree) > 1 {
		t.Errorf("processes left running after RunGateway: %+v", tree[1:])
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("RunGateway left %d entries in its temporary directory, first %s", len(left), left[0].Name())
	}
	goleak.VerifyNone(t)
}

func TestParseGatewayFlags(t *testing.T) {
	var stderr bytes.Buffer
	cfg, asJSON, err := parseGatewayFlags([]string{"-clients", "100, 200", "-runs", "5", "-edge", "-1", "-json"}, &stderr)
	if err != nil {
		t.Fatalf("parseGatewayFlags: %v (%s)", err, stderr.String())
	}
	if !slices.Equal(cfg.Clients, []int{100, 200}) || cfg.Runs != 5 || cfg.Edge != -1 || !asJSON {
		t.Errorf("got %+v json=%v", cfg, asJSON)
	}
	if code := run(context.Background(), []string{"gateway", "-clients", "x"}, &bytes.Buffer{}, &bytes.Buffer{}); code != exitUsage {
		t.Errorf("bad -clients: exit %d, want %d", code, exitUsage)
	}
	c := GatewayConfig{Clients: []int{12000}}.withDefaults()
	if err := c.validate(10000, 28232); err == nil || !strings.Contains(err.Error(), "use at most 9936") {
		t.Errorf("12000 clients with 10000 descriptors: got %v, want an error naming the most", err)
	}
}
