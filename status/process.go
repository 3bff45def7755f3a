package status

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/wssgate/wssgate/internal/procfs"
)

// procRoot is where the proc filesystem is mounted.
const procRoot = "/proc"

// heapMetric is runtime/metrics' name for runtime.MemStats.HeapAlloc;
// reading it does not stop the world as ReadMemStats does.
const heapMetric = "/memory/classes/heap/objects:bytes"

// ReadProcess returns the figures of the running process at time now:
// PID, Go version, goroutines and heap from the runtime; resident
// memory (/proc/self/status), open descriptors (/proc/self/fd) and the
// load average (/proc/loadavg) from the proc filesystem; the soft
// RLIMIT_NOFILE from getrlimit. version is wssgate's version and start
// the time the process started (zero if unknown, and then Uptime is 0).
//
// Figures that cannot be read, as on a system without /proc, are left
// zero; ReadProcess never fails and logs nothing. Draining is left
// false for the caller to set.
func ReadProcess(version string, start, now time.Time) Process {
	return readProcess(procRoot, version, start, now)
}

// readProcess is ReadProcess reading the proc filesystem under root.
func readProcess(root, version string, start, now time.Time) Process {
	p := Process{
		PID:        os.Getpid(),
		Version:    version,
		GoVersion:  runtime.Version(),
		Start:      start,
		Goroutines: runtime.NumGoroutine(),
		HeapBytes:  heapBytes(),
		MaxFDs:     openFileLimit(),
	}
	if !start.IsZero() && now.After(start) {
		p.Uptime = Duration(now.Sub(start))
	}
	self := filepath.Join(root, "self")
	if b, err := os.ReadFile(filepath.Join(self, "status")); err == nil {
		p.RSSBytes = parseVmRSS(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(root, "loadavg")); err == nil {
		p.LoadAvg = parseLoadAvg(string(b))
	}
	if ents, err := os.ReadDir(filepath.Join(self, "fd")); err == nil {
		p.OpenFDs = len(ents)
	}
	return p
}

// heapBytes returns the bytes of heap objects, live or not yet swept.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// parseVmRSS returns the VmRSS line of /proc/PID/status in bytes, or 0
// when there is none (a kernel thread) or it cannot be read.
func parseVmRSS(s string) uint64 {
	n, err := procfs.VmRSS(s)
	if err != nil {
		return 0
	}
	return uint64(n)
}

// parseLoadAvg returns the three load averages at the start of
// /proc/loadavg ("0.08 0.03 0.01 1/123 4567"); a field that is not a
// finite number reads as 0.
func parseLoadAvg(s string) [3]float64 {
	var avg [3]float64
	f := strings.Fields(s)
	for i := range min(len(f), len(avg)) {
		v, err := strconv.ParseFloat(f[i], 64)
		if err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 {
			avg[i] = v
		}
	}
	return avg
}
