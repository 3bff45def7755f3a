package browser

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// DefaultTimeout bounds a browser's whole life when Options.Timeout is
// zero.
const DefaultTimeout = 60 * time.Second

// outputTail is how much of Chromium's output (stdout, stderr and
// chromedp's log) a failed test shows.
const outputTail = 16 << 10

// stopWait bounds the graceful close of the browser at the end of a test,
// and then again the wait for its processes to be gone.
const stopWait = 5 * time.Second

// execNames returns the Chromium binaries New looks for, in order: names
// on PATH, or absolute paths.
func execNames() []string {
	return []string{"chromium", "/usr/bin/chromium", "chromium-browser", "google-chrome"}
}

// ErrNoChromium means no Chromium binary was found.
var ErrNoChromium = errors.New("browser: no chromium binary found")

// Options configure [New]. The zero value runs a browser that trusts no
// certificate beyond the system's, for at most [DefaultTimeout].
type Options struct {
	// ExecPath is the Chromium binary to run. "" looks for chromium,
	// /usr/bin/chromium, chromium-browser and google-chrome, in that order.
	ExecPath string

	// Trust lists certificates whose public keys the browser accepts
	// from a server although no trusted CA issued them: a test server's
	// leaf (httptest.Server.Certificate, or [Leaf] of a tls.Certificate).
	// Each becomes an entry of --ignore-certificate-errors-spki-list (see
	// [SPKIHash]); a certificate with any other key still fails. For a
	// listed key Chromium ignores every certificate error, a name that
	// does not match included, so a test of name checks must not rely
	// on the browser. Nil trusts none beyond the system's roots.
	Trust []*x509.Certificate

	// HostResolverRules is passed as --host-resolver-rules, for example
	// "MAP chat.example.test 127.0.0.1", so that a page can be opened by
	// a name its certificate holds. "" resolves names as usual.
	HostResolverRules string

	// Flags are extra command-line flags, name without the leading "--"
	// to value: a string for --name=value, true for a bare --name, false
	// to drop one that New sets. Nil adds none.
	Flags map[string]any

	// Timeout bounds the browser's whole life, starting in New: every
	// chromedp action on [Browser.Context] fails after it. Zero means
	// [DefaultTimeout].
	Timeout time.Duration
}

// Browser is one headless Chromium process with one tab, belonging to
// one test. Its methods are safe for concurrent use, but chromedp actions
// on its Context, which drive the one tab, must not run concurrently.
type Browser struct {
	ctx  context.Context
	dir  string
	logf func(format string, args ...any)

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	seen    chan struct{} // closed and replaced when a message arrives
	syncs   int
}

// New starts a fresh headless Chromium for t, with a new profile under
// t.TempDir, and opens a blank tab. The browser ends when t ends: New
// registers a cleanup that closes it and makes sure that none of its
// processes is left.
//
// Without a Chromium binary New skips t, or fails it when the
// environment has CI=true.
func New(t testing.TB, o Options) *Browser {
	t.Helper()
	path, err := findExec(o.ExecPath)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI=true, so this is a failure, not a skip (.ci/run installs Debian's chromium)", err)
		}
		t.Skipf("%v; install Chromium (Debian: apt-get install chromium) to run this test", err)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dir := t.TempDir()
	out := &tail{max: outputTail}
	b := &Browser{
		dir:  dir,
		logf: func(format string, args ...any) { fmt.Fprintf(out, "chromedp: "+format+"\n", args...) },
		seen: make(chan struct{}),
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		// Chromium starts crash handlers that outlive it briefly and
		// write to ~/.config/chromium even with --disable-breakpad; this
		// keeps their files in the profile, and their command lines
		// naming it, so that they are found and ended with the browser.
		chromedp.Env("BREAKPAD_DUMP_LOCATION=" + filepath.Join(dir, "Crash Reports")),
		chromedp.CombinedOutput(out),
	}
	for name, value := range b.flags(o) {
		opts = append(opts, chromedp.Flag(name, value))
	}

	tctx, tcancel := context.WithTimeout(context.Background(), timeout)
	actx, acancel := chromedp.NewExecAllocator(tctx, opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(b.logf), chromedp.WithErrorf(b.logf))
	b.ctx = ctx

	// Start the browser now, so that a failure to start is New's, and
	// subscribe to the console before the test navigates.
	startErr := chromedp.Do(ctx)
	var wg sync.WaitGroup
	if startErr == nil {
		messages := chromedp.Console(ctx)
		wg.Go(func() {
			for m, err := range messages {
				if err != nil {
					return
				}
				b.add(m)
			}
		})
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(ctx, stopWait)
		if err := chromedp.Cancel(sctx); err != nil && !errors.Is(err, context.Canceled) {
			b.logf("closing the browser: %v", err)
		}
		scancel()
		cancel()
		acancel()
		tcancel()
		wg.Wait()
		if left := reap(dir, stopWait); len(left) > 0 {
			t.Errorf("browser: chromium processes %v with profile %s still running after kill", left, dir)
		}
		if t.Failed() {
			t.Logf("browser: the last of chromium's output:\n%s", out)
		}
	})
	if startErr != nil {
		t.Fatalf("browser: start %s: %v", path, startErr)
	}
	return b
}

// flags returns the command line of the browser, as chromedp flags.
func (b *Browser) flags(o Options) map[string]any {
	f := map[string]any{
		"headless":                       true,
		"no-sandbox":                     true, // tests run as root in containers
		"disable-gpu":                    true,
		"disable-quic":                   true,
		"no-first-run":                   true,
		"no-default-browser-check":       true,
		"disable-background-networking":  true,
		"disable-component-update":       true,
		"disable-sync":                   true,
		"disable-extensions":             true,
		"disable-default-apps":           true,
		"disable-breakpad":               true,
		"disable-dev-shm-usage":          true,
		"hide-scrollbars":                true,
		"mute-audio":                     true,
		"password-store":                 "basic",
		"window-size":                    "1024,768",
		"disable-renderer-backgrounding": true,
	}
	if len(o.Trust) > 0 {
		hashes := make([]string, len(o.Trust))
		for i, c := range o.Trust {
			hashes[i] = SPKIHash(c)
		}
		f["ignore-certificate-errors-spki-list"] = strings.Join(hashes, ",")
	}
	if o.HostResolverRules != "" {
		f["host-resolver-rules"] = o.HostResolverRules
	}
	for name, value := range o.Flags {
		f[name] = value
	}
	return f
}

// Context returns the chromedp context of the browser's tab, for
// chromedp.Run and chromedp.Do. It ends with the test, or at
// Options.Timeout.
func (b *Browser) Context() context.Context { return b.ctx }

// UserDataDir returns the browser's profile directory. Every process of
// the browser has --user-data-dir=<it> on its command line.
func (b *Browser) UserDataDir() string { return b.dir }

// findExec returns path if it is not "", or the first Chromium binary
// found.
func findExec(path string) (string, error) {
	names := execNames()
	if path != "" {
		names = []string{path}
	}
	for _, name := range names {
		if filepath.IsAbs(name) {
			if fi, err := os.Stat(name); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return name, nil
			}
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w (looked for %s)", ErrNoChromium, strings.Join(names, ", "))
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
