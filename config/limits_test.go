package config

import (
	"runtime"
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
