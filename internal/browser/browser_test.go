package browser

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/wssgate/wssgate/internal/testutil"
)

// tlsServer serves text at / and a WebSocket echo at /echo over TLS with
// a leaf for hosts from a CA of its own.
func tlsServer(t *testing.T, text string, hosts ...string) (*httptest.Server, *testutil.Leaf) {
	t.Helper()
	leaf := testutil.NewCA(t, text+" CA").Leaf(t, testutil.LeafOptions{Hosts: hosts})
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", testutil.EchoWebSocket)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>%s</title><p id=text>%s</p>", text, text)
	})
	srv := httptest.NewUnstartedServer(mux)
	// Refused handshakes are what some tests expect: log them quietly.
	srv.Config.ErrorLog = log.New(testutil.Writer(t), "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.Cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, leaf
}

// port returns the port of srv's URL.
func port(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// echoJS opens a WebSocket to url, sends "hi" and resolves to the echo,
// or to "error" or "closed <code>".
const echoJS = `new Promise(resolve => {
	const ws = new WebSocket(%q);
	ws.onopen = () => ws.send("hi");
	ws.onmessage = e => { resolve(e.data); ws.close(); };
	ws.onerror = () => resolve("error");
	ws.onclose = e => resolve("closed " + e.code);
})`

func echo(ctx context.Context, wsURL string) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(echoJS, wsURL), chromedp.EvalAwaitPromise))
}

// TestTrust shows that Options.Trust makes Chromium accept exactly the
// given certificate's key (for pages and WebSockets, by IP or by a name
// mapped with HostResolverRules) and no other, and that without it the
// same server is refused.
func TestTrust(t *testing.T) {
	trusted, leaf := tlsServer(t, "trusted", "chat.example.test", "127.0.0.1")
	other, _ := tlsServer(t, "other", "chat.example.test", "127.0.0.1")

	// Trust by the tls.Certificate, with Leaf left for New to parse.
	cert := leaf.Cert
	cert.Leaf = nil
	b := New(t, Options{
		Trust:             []*x509.Certificate{Leaf(t, cert)},
		HostResolverRules: "MAP *.example.test 127.0.0.1",
	})
	ctx := b.Context()
	named := "https://chat.example.test:" + port(t, trusted)
	for _, u := range []string{trusted.URL, named} {
		if err := chromedp.Do(ctx, chromedp.Navigate(u+"/")); err != nil {
			t.Fatalf("Navigate(%s): %v", u, err)
		}
		got, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("text")))
		if err != nil || got != "trusted" {
			t.Errorf("%s: text = %q, %v; want %q", u, got, err, "trusted")
		}
		wsURL := "wss" + strings.TrimPrefix(u, "https") + "/echo"
		if got, err := echo(ctx, wsURL); err != nil || got != "hi" {
			t.Errorf("WebSocket %s: got %q, %v; want the echo %q", wsURL, got, err, "hi")
		}
	}

	// For the trusted key Chromium ignores every certificate error, the
	// name too (Options.Trust says so): a name the certificate lacks.
	unnamed := "https://unnamed.example.test:" + port(t, trusted) + "/"
	if err := chromedp.Do(ctx, chromedp.Navigate(unnamed)); err != nil {
		t.Errorf("Navigate(%s), a name the trusted certificate lacks: %v; want it accepted", unnamed, err)
	}

	// Same names, another key: refused, page and WebSocket.
	err := chromedp.Do(ctx, chromedp.Navigate(other.URL+"/"))
	if err == nil || !strings.Contains(err.Error(), "ERR_CERT_AUTHORITY_INVALID") {
		t.Errorf("Navigate(%s) with an untrusted key: err = %v, want ERR_CERT_AUTHORITY_INVALID", other.URL, err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(trusted.URL+"/")); err != nil {
		t.Fatal(err)
	}
	otherWS := "wss" + strings.TrimPrefix(other.URL, "https") + "/echo"
	if got, err := echo(ctx, otherWS); err != nil || got == "hi" {
		t.Errorf("WebSocket %s with an untrusted key: got %q, %v; want a failure", otherWS, got, err)
	}

	// Without Trust the trusted server is refused too: the flag, not
	// something else, let it in.
	plain := New(t, Options{})
	err = chromedp.Do(plain.Context(), chromedp.Navigate(trusted.URL+"/"))
	if err == nil || !strings.Contains(err.Error(), "ERR_CERT_AUTHORITY_INVALID") {
		t.Errorf("Navigate(%s) without Trust: err = %v, want ERR_CERT_AUTHORITY_INVALID", trusted.URL, err)
	}
}

func TestSPKIHash(t *testing.T) {
	leaf := testutil.NewCA(t, "CA").Leaf(t, testutil.LeafOptions{Hosts: []string{"localhost"}, Key: "rsa"})
	der, err := x509.MarshalPKIXPublicKey(leaf.X509.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	want := base64.StdEncoding.EncodeToString(sum[:])
	if got := SPKIHash(leaf.X509); got != want {
		t.Errorf("SPKIHash = %s, want %s", got, want)
	}
	if got := SPKIHash(Leaf(t, tls.Certificate{Certificate: leaf.Cert.Certificate})); got != want {
		t.Errorf("SPKIHash(Leaf(parsed)) = %s, want %s", got, want)
	}
}

// TestConsole shows that console errors, uncaught exceptions and failed
// loads are collected, and other messages are not reported as errors.
func TestConsole(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
		case "/favicon.ico": // the browser asks on its own; its 404 would be one error too many
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `<!doctype html><title>console</title><img src="/missing.png" alt="">`+
			`<script>console.log("fine"); console.error("boom", 42); setTimeout(() => { throw new Error("bang") });</script>`)
	}))
	defer srv.Close()
	b := New(t, Options{})
	if err := chromedp.Do(b.Context(), chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	want := []string{"error: boom 42", "Uncaught Error: bang", "404"}
	deadline := time.Now().Add(15 * time.Second) // a loaded machine runs Chromium slowly
	var errs []string
	for {
		errs = b.ConsoleErrors()
		missing := 0
		for _, w := range want {
			if !strings.Contains(strings.Join(errs, "\n"), w) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ConsoleErrors() = %q, want entries containing each of %q", errs, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(errs) != len(want) {
		t.Errorf("ConsoleErrors() = %q, want %d entries", errs, len(want))
	}
	var logged bool
	for _, m := range b.Console() {
		if m.Type == chromedp.ConsoleLog && m.Text == "fine" {
			logged = true
		}
		if strings.HasPrefix(m.Text, syncPrefix) {
			t.Errorf("Console() reports its own marker %q", m.Text)
		}
	}
	if !logged {
		t.Errorf("Console() lacks console.log(%q)", "fine")
	}
}

// TestNoProcessLeft shows that every process of the browser is gone
// when the test that started it has ended.
func TestNoProcessLeft(t *testing.T) {
	var dir string
	t.Run("browse", func(t *testing.T) {
		b := New(t, Options{})
		dir = b.UserDataDir()
		if err := chromedp.Do(b.Context(), chromedp.Navigate("data:text/html,<title>x</title>")); err != nil {
			t.Fatal(err)
		}
		if pids := processesUsing(dir); len(pids) < 2 {
			t.Errorf("processes with the profile while browsing: %v, want the browser and its helpers", pids)
		}
	})
	if dir == "" {
		t.Skip("the browser did not start")
	}
	if pids := processesUsing(dir); len(pids) > 0 {
		t.Errorf("processes left with the profile %s: %v", dir, pids)
	}
	// The same check by another tool, as a person would make it.
	if _, err := exec.LookPath("pgrep"); err == nil {
		out, err := exec.Command("pgrep", "-f", "user-data-dir="+dir).CombinedOutput()
		if err == nil {
			t.Errorf("pgrep -f user-data-dir=%s found %s", dir, out)
		}
	}
}

// TestMissingChromium runs TestMissingChromiumHelper in a child process
// with no browser: without CI it skips, with CI=true it fails.
func TestMissingChromium(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{ci: "", wantFail: false, want: "--- SKIP: TestMissingChromiumHelper"},
		{ci: "true", wantFail: true, want: "--- FAIL: TestMissingChromiumHelper"},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMissingChromiumHelper$", "-test.v")
			cmd.Env = append(os.Environ(), "BROWSER_MISSING_HELPER=1", "CI="+tc.ci)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tc.wantFail {
				t.Errorf("child failed = %v, want %v:\n%s", failed, tc.wantFail, out)
			}
			if !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "no chromium binary found") {
				t.Errorf("child output lacks %q and the reason:\n%s", tc.want, out)
			}
		})
	}
}

func TestMissingChromiumHelper(t *testing.T) {
	if os.Getenv("BROWSER_MISSING_HELPER") != "1" {
		t.Skip("run by TestMissingChromium")
	}
	New(t, Options{ExecPath: "/nonexistent/chromium"})
	t.Error("New returned without a browser")
}
