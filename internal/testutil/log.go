package testutil

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Logger returns a debug-level text logger that writes each record with
// t.Log, so it shows only when the test fails or under go test -v.
// Records logged after the test's cleanups have run (by a goroutine that
// outlived it) are dropped rather than panicking; use goleak to catch
// such goroutines.
func Logger(t testing.TB) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(Writer(t), &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{} // t.Log output is already ordered; time is noise
			}
			return a
		},
	}))
}

// Writer returns an io.Writer that passes each write to t.Log, such as a
// child process's stderr. Writes after the test's cleanups have run are
// dropped.
func Writer(t testing.TB) io.Writer {
	w := &tbWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

// tbWriter passes each record, which slog's handlers write in one call,
// to t.Log.
type tbWriter struct {
	t    testing.TB
	mu   sync.Mutex // held across t.Log so that done cannot flip mid-call
	done bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}
