package status

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestReadProcess(t *testing.T) {
	start := time.Now().Add(-90 * time.Second)
	now := start.Add(90 * time.Second)
	p := ReadProcess("v1.2.3", start, now)
	if p.PID != os.Getpid() {
		t.Errorf("PID = %d, want %d", p.PID, os.Getpid())
	}
	if p.Version != "v1.2.3" || p.GoVersion != runtime.Version() {
		t.Errorf("versions = %q, %q; want v1.2.3, %q", p.Version, p.GoVersion, runtime.Version())
	}
	if time.Duration(p.Uptime) != 90*time.Second {
		t.Errorf("Uptime = %v, want 1m30s", p.Uptime)
	}
	if p.Goroutines <= 0 {
		t.Errorf("Goroutines = %d, want > 0", p.Goroutines)
	}
	if p.HeapBytes == 0 {
		t.Error("HeapBytes = 0, want > 0")
	}
	if p.Draining {
		t.Error("Draining = true, want false: it is the caller's")
	}
	if runtime.GOOS != "linux" {
		return
	}
	if p.OpenFDs <= 0 {
		t.Errorf("OpenFDs = %d, want > 0", p.OpenFDs)
	}
	if p.MaxFDs < uint64(p.OpenFDs) {
		t.Errorf("MaxFDs = %d, want at least OpenFDs %d", p.MaxFDs, p.OpenFDs)
	}
	if p.RSSBytes < 1<<20 {
		t.Errorf("RSSBytes = %d, want at least 1 MiB", p.RSSBytes)
	}
	for i, v := range p.LoadAvg {
		if v < 0 {
			t.Errorf("LoadAvg[%d] = %v, want >= 0", i, v)
		}
	}
}

func TestReadProcessFakeProc(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("self/status", "Name:\twssgate\nVmPeak:\t  9000 kB\nVmRSS:\t    2048 kB\nThreads:\t7\n")
	write("loadavg", "0.08 1.50 12.25 2/345 6789\n")
	for _, fd := range []string{"0", "1", "2", "7"} {
		write("self/fd/"+fd, "")
	}
	p := readProcess(root, "", time.Time{}, time.Now())
	if p.RSSBytes != 2048*1024 {
		t.Errorf("RSSBytes = %d, want %d", p.RSSBytes, 2048*1024)
	}
	if p.LoadAvg != [3]float64{0.08, 1.5, 12.25} {
		t.Errorf("LoadAvg = %v, want [0.08 1.5 12.25]", p.LoadAvg)
	}
	if p.OpenFDs != 4 {
		t.Errorf("OpenFDs = %d, want 4", p.OpenFDs)
	}
	if p.Uptime != 0 || !p.Start.IsZero() {
		t.Errorf("Start, Uptime = %v, %v; want zero without a start time", p.Start, p.Uptime)
	}
}

func TestReadProcessNoProc(t *testing.T) {
	p := readProcess(filepath.Join(t.TempDir(), "missing"), "v", time.Time{}, time.Now())
	if p.RSSBytes != 0 || p.OpenFDs != 0 || p.LoadAvg != [3]float64{} {
		t.Errorf("RSS, fds, load = %d, %d, %v; want zeros without /proc", p.RSSBytes, p.OpenFDs, p.LoadAvg)
	}
	if p.PID != os.Getpid() || p.Goroutines <= 0 {
		t.Errorf("PID, goroutines = %d, %d; want the runtime's figures still", p.PID, p.Goroutines)
	}
}

func TestParseVmRSS(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     uint64
	}{
		{"normal", "Name:\tx\nVmRSS:\t  12 kB\n", 12 * 1024},
		{"missing", "Name:\tkthreadd\n", 0},
		{"no unit", "VmRSS:\t12\n", 0},
		{"not a number", "VmRSS:\tlots kB\n", 0},
		{"empty", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseVmRSS(tc.in); got != tc.want {
				t.Errorf("parseVmRSS(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseLoadAvg(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     [3]float64
	}{
		{"normal", "0.08 0.03 0.01 1/123 4567\n", [3]float64{0.08, 0.03, 0.01}},
		{"short", "1.5\n", [3]float64{1.5, 0, 0}},
		{"garbage", "x NaN Inf\n", [3]float64{}},
		{"negative", "-1 2 3", [3]float64{0, 2, 3}},
		{"empty", "", [3]float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseLoadAvg(tc.in); got != tc.want {
				t.Errorf("parseLoadAvg(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
