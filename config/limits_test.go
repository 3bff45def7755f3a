package config

import (
	"runtime"
	"strings"
	"testing"
)

func TestApplyOpenFileLimit(t *testing.T) {
	tests := []struct {
		configured int
		limit      uint64
		want       int
		warn       string // the warning's text; "" for none
	}{
		{0, 20000, 9950, ""},
		{0, 0, 10000, ""}, // limit unknown
		{0, 1 << 40, 1 << 30, ""},
		{0, ^uint64(0), 1 << 30, ""}, // RLIM_INFINITY
		{0, 201, 50, ""},
		{0, 200, 10000, ""}, // too small to divide: as unknown
		{500, 20000, 500, ""},
		{9950, 20000, 9950, ""}, // exactly the limit
		{9951, 20000, 9951, "limits.max_connections: 9951 needs 20002 open files, more than the process may have (20000); raise the limit (systemd LimitNOFILE, ulimit -n) or lower max_connections"},
		{15000, 20000, 15000, "limits.max_connections: 15000 needs 30100 open files, more than the process may have (20000); raise the limit (systemd LimitNOFILE, ulimit -n) or lower max_connections"},
		{15000, 0, 15000, ""}, // limit unknown: no warning
		{-1, 20000, -1, ""},   // a Validate problem, not a warning
	}
	for _, tt := range tests {
		cfg := Default()
		cfg.Limits.MaxConnections = tt.configured
		warning := cfg.ApplyOpenFileLimit(tt.limit)
		if cfg.Limits.MaxConnections != tt.want {
			t.Errorf("configured %d, open-file limit %d: got max_connections %d, want %d", tt.configured, tt.limit, cfg.Limits.MaxConnections, tt.want)
		}
		got := ""
		if warning != nil {
			got = warning.Error()
		}
		if got != tt.warn {
			t.Errorf("configured %d, open-file limit %d: got warning %q, want %q", tt.configured, tt.limit, got, tt.warn)
		}
	}
}

// TestApplyOpenFileLimitPosition checks that the warning names the file
// and line of limits.max_connections.
func TestApplyOpenFileLimitPosition(t *testing.T) {
	cfg := mustParse(t, "listen: { https: \":8443\" }\nlimits:\n  max_connections: 600\n"+site+"      - {path: /, root: .}\n")
	warning := cfg.ApplyOpenFileLimit(1024)
	ce, ok := warning.(*Error)
	if !ok {
		t.Fatalf("got %T %v, want an *Error", warning, warning)
	}
	if ce.File != "c.yaml" || ce.Line != 3 || ce.Key != "limits.max_connections" {
		t.Errorf("got %s, want it at c.yaml:3: limits.max_connections", ce)
	}
}

func TestOpenFileLimit(t *testing.T) {
	got := OpenFileLimit()
	switch runtime.GOOS {
	case "linux", "darwin", "freebsd", "openbsd", "netbsd":
		if got == 0 {
			t.Errorf("got 0 on %s, want the soft RLIMIT_NOFILE", runtime.GOOS)
		}
	}
}

func TestConnectionBudgetAndCaps(t *testing.T) {
	cfg := Default()
	if err := cfg.ApplyOpenFileLimit(20000); err != nil {
		t.Fatal(err)
	}
	budget := cfg.ConnectionBudget(20000)
	if budget != 20000-100-9950 {
		t.Errorf("budget for 20000 open files: got %d, want %d", budget, 20000-100-9950)
	}
	if b := cfg.ConnectionBudget(0); b != 0 {
		t.Errorf("budget with the limit unknown: got %d, want 0 (none)", b)
	}
	small := Default()
	small.Limits.MaxConnections = 100
	if b := small.ConnectionBudget(150); b != 32 {
		t.Errorf("budget of a tiny limit: got %d, want the floor 32", b)
	}
	cfg.Limits.ListenerConnections = map[string]int{"https": 500, "admin": 0}
	tests := []struct {
		l      Listener
		budget int
		want   int
	}{
		{ListenerGatewayText, budget, 1024},
		{ListenerGatewayText, 400, 100}, // a quarter of a small budget
		{ListenerHTTP, budget, 1024},
		{ListenerPushAPI, budget, 256},
		{ListenerGWRegister, budget, 256},
		{ListenerGWInner, 0, 1024}, // no budget known
		{ListenerAdmin, budget, 0}, // configured: no cap of its own
		{ListenerHTTPS, budget, 500},
		{ListenerGatewayWebSocket, budget, 0},
	}
	for _, tt := range tests {
		if got := cfg.ListenerCap(tt.l, tt.budget); got != tt.want {
			t.Errorf("ListenerCap(%s, %d) = %d, want %d", tt.l, tt.budget, got, tt.want)
		}
	}
}

func TestListenerConnectionsValidated(t *testing.T) {
	_, err := Parse("bad.yaml", []byte(`limits:
  listener_connections:
    telnet: 10
    admin: -1
sites:
  - hosts: [a.example]
    tls: { internal: true }
    routes: [{ path: /, root: . }]
`))
	got := Errors(err)
	want := []string{
		`bad.yaml:4: limits.listener_connections.admin: must not be negative (0 = no cap of its own)`,
		`bad.yaml:3: limits.listener_connections.telnet: no listener is called "telnet"`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i].Error(), want[i]) {
			t.Errorf("problem %d: got %q, want prefix %q", i, got[i], want[i])
		}
	}
}
