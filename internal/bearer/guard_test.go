package bearer

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	tests := []struct {
		n    int
		want time.Duration
	}{
		{1, 0}, {5, 0}, {6, 100 * time.Millisecond}, {7, 200 * time.Millisecond},
		{10, 1600 * time.Millisecond}, {12, 5 * time.Second}, {100, 5 * time.Second},
	}
	for _, tt := range tests {
		if got := delay(tt.n); got != tt.want {
			t.Errorf("delay(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

// TestGuardLogsOncePerMinute refuses one source many times: one log
// line a minute, counting the failures in between; another source gets
// its own line.
func TestGuardLogsOncePerMinute(t *testing.T) {
	var logs bytes.Buffer
	g := NewGuard(slog.New(slog.NewTextHandler(&logs, nil)))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g.now = func() time.Time { return now }
	refuse := func(remote string) {
		r := httptest.NewRequest("POST", "/api/"+strings.Repeat("x", 200), nil)
		r.RemoteAddr = remote
		ctx, cancel := context.WithCancel(r.Context())
		cancel() // no waiting for the slowdown in this test
		g.Refuse(r.WithContext(ctx))
	}
	for range 50 {
		refuse("192.0.2.1:1000")
		now = now.Add(time.Second)
	}
	refuse("192.0.2.2:1000")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2 (one per source in the first minute):\n%s", len(lines), logs.String())
	}
	now = now.Add(30 * time.Second) // 80 s after the first line
	refuse("192.0.2.1:1001")
	lines = strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], "failures=50") || !strings.Contains(lines[2], "remote=192.0.2.1") {
		t.Errorf("the next minute's line for the first source: %q; want failures=50 since the last line", lines[len(lines)-1])
	}
	if !strings.Contains(lines[0], "path=/api/xxx") || strings.Contains(lines[0], strings.Repeat("x", 100)) {
		t.Errorf("the path is not cut to 64 bytes: %q", lines[0])
	}
	if g.Failures() != 52 {
		t.Errorf("Failures() = %d, want 52", g.Failures())
	}
}

// TestGuardSlowsDown checks that the sixth failure within a minute waits
// 100 ms, and an earlier one does not wait.
func TestGuardSlowsDown(t *testing.T) {
	g := NewGuard(nil)
	r := httptest.NewRequest("GET", "/", nil)
	for i := range 5 {
		began := time.Now()
		g.Refuse(r)
		if d := time.Since(began); d > 50*time.Millisecond {
			t.Fatalf("failure %d waited %v, want no slowdown yet", i+1, d)
		}
	}
	began := time.Now()
	g.Refuse(r)
	if d := time.Since(began); d < 100*time.Millisecond {
		t.Errorf("the sixth failure waited %v, want at least 100ms", d)
	}
}

// TestGuardMemoryBounded refuses 100,000 distinct sources: the Guard
// remembers at most guardSources of them.
func TestGuardMemoryBounded(t *testing.T) {
	g := NewGuard(nil)
	for i := range 100000 {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = fmt.Sprintf("[2001:db8::%x:%x]:1", i>>16, i&0xffff)
		g.Refuse(r)
	}
	g.mu.Lock()
	n := len(g.sources)
	g.mu.Unlock()
	if n > guardSources {
		t.Errorf("remembers %d sources, want at most %d", n, guardSources)
	}
}

func TestCut(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 64, "short"},
		{strings.Repeat("a", 70), 64, strings.Repeat("a", 64) + "…"},
		{"ab" + "€" + "cd", 3, "ab…"}, // not inside the euro sign
	}
	for _, tt := range tests {
		if got := Cut(tt.s, tt.n); got != tt.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
