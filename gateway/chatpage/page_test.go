package chatpage_test

import (
	"crypto/x509"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/chatpage"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/internal/browser"
	"github.com/wssgate/wssgate/internal/testutil"
)

// waitFor bounds every wait for the page or a text client.
const waitFor = 5 * time.Second

// chat is gateway.Chat that also records what the tests check on the
// hub's side: the pongs each client sent and the path it connected on.
type chat struct {
	*gateway.Chat
	mu    sync.Mutex
	pongs map[string]int
	paths map[string]string
}

func (c *chat) OnWebSocketConnect(ci gateway.ClientInfo, r *gateway.WebSocketRequest) {
	c.mu.Lock()
	c.paths[ci.ID] = r.Path
	c.mu.Unlock()
	c.Chat.OnWebSocketConnect(ci, r)
}

func (c *chat) OnMessage(ci gateway.ClientInfo, data []byte) {
	if string(data) == `{"type":"pong"}` {
		c.mu.Lock()
		c.pongs[ci.ID]++
		c.mu.Unlock()
	}
	c.Chat.OnMessage(ci, data)
}

func (c *chat) pongsOf(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pongs[id]
}

func (c *chat) pathOf(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paths[id]
}

// server is a chat hub behind an httptest server that serves the page at
// /, the hub's WebSocket at /wss and /other, and the text protocol on a
// loopback listener.
type server struct {
	*gatewaytest.Env
	chat *chat
	cert *x509.Certificate // nil over http
}

func startServer(t *testing.T, opts gateway.Options, useTLS bool) *server {
	t.Helper()
	c := &chat{Chat: &gateway.Chat{}, pongs: make(map[string]int), paths: make(map[string]string)}
	opts.Handler = c
	opts.Logger = testutil.Logger(t)
	hub := gateway.New(opts)
	c.Hub = hub

	mux := http.NewServeMux()
	mux.Handle("/", chatpage.Handler())
	mux.Handle("/wss", hub.WebSocketHandler(nil))
	mux.Handle("/other", hub.WebSocketHandler(nil))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = log.New(testutil.Writer(t), "http: ", 0)
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	s := &server{Env: gatewaytest.Serve(t, hub, srv), chat: c}
	if useTLS {
		s.cert = srv.Certificate()
	}
	return s
}

// openPage starts a browser trusting s's certificate and opens the page
// at path (with its query).
func (s *server) openPage(t *testing.T, path string) *browser.Browser {
	t.Helper()
	var o browser.Options
	if s.cert != nil {
		o.Trust = []*x509.Certificate{s.cert}
	}
	b := browser.New(t, o)
	url := s.Server.URL + path
	if err := chromedp.Do(b.Context(), chromedp.Navigate(url)); err != nil {
		t.Fatalf("Navigate(%s): %v", url, err)
	}
	return b
}

// textClient is a telnet-like client of the text protocol, its ID the
// client id from its greeting.
type textClient struct {
	*gatewaytest.Peer
	t *testing.T
}

// dialText connects a text client and reads its greeting.
func (s *server) dialText(t *testing.T) *textClient {
	t.Helper()
	c := &textClient{Peer: gatewaytest.DialText(t, s.TextAddr), t: t}
	c.ReadID("Hello ")
	return c
}

// waitLine reads lines until want, and fails the test after waitFor.
func (c *textClient) waitLine(want string) {
	c.t.Helper()
	var got []string
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		line := c.Read()
		if line == want {
			return
		}
		got = append(got, line)
	}
	c.t.Fatalf("text client %s never got %q; got %q", c.ID, want, got)
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, b *browser.Browser, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.Context(), chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitPage evaluates expr until ok accepts its value, and fails the test
// after waitFor. (chromedp.Poll builds its predicate with new Function,
// which the page's Content-Security-Policy rightly forbids.)
func waitPage[T any](t *testing.T, b *browser.Browser, what, expr string, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		v := eval[T](t, b, expr)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; %s = %v; console errors: %q", what, expr, v, b.ConsoleErrors())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

const (
	jsMe     = `document.getElementById("me").textContent`
	jsState  = `document.getElementById("state").dataset.state`
	jsLog    = `[...document.querySelectorAll("#log li")].map(li => li.textContent)`
	jsOnline = `[...document.querySelectorAll("#online li")].map(li => li.dataset.id + (li.classList.contains("me") ? " me" : ""))`
)

// waitID waits until the page shows a client id other than not, is
// connected, and returns the id.
func waitID(t *testing.T, b *browser.Browser, not string) string {
	t.Helper()
	id := waitPage(t, b, "the page's client id", jsMe, func(s string) bool { return len(s) == 20 && s != not })
	waitPage(t, b, "state open", jsState, func(s string) bool { return s == "open" })
	return id
}

// waitLog waits until the page's log has the line want.
func waitLog(t *testing.T, b *browser.Browser, want string) {
	t.Helper()
	waitPage(t, b, fmt.Sprintf("%q in the log", want), jsLog, func(lines []string) bool { return slices.Contains(lines, want) })
}

// waitOnline waits until the online list is exactly want (sorted; the
// page's own entry with " me" appended).
func waitOnline(t *testing.T, b *browser.Browser, want ...string) {
	t.Helper()
	slices.Sort(want)
	waitPage(t, b, fmt.Sprintf("online list %q", want), jsOnline, func(got []string) bool { return slices.Equal(got, want) })
}

func noConsoleErrors(t *testing.T, b *browser.Browser) {
	t.Helper()
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestChatWithTextClient chats between the page, over https and wss, and
// two telnet-like text clients: messages both ways, the online list, and
// HTML in a message shown as text.
func TestChatWithTextClient(t *testing.T) {
	s := startServer(t, gateway.Options{}, true)
	before := s.dialText(t)
	b := s.openPage(t, "/")
	id := waitID(t, b, "")
	if path := s.chat.pathOf(id); path != "/wss" {
		t.Errorf("page connected to %q, want /wss", path)
	}
	waitOnline(t, b, before.ID, id+" me")
	before.waitLine(id + " login")

	after := s.dialText(t)
	waitOnline(t, b, before.ID, after.ID, id+" me")
	waitLog(t, b, after.ID+" login")

	// Send with the button, then with Enter.
	if err := chromedp.Do(b.Context(),
		chromedp.SendKeys(chromedp.ID("input"), "hello from the browser"),
		chromedp.Click(chromedp.ID("send")),
	); err != nil {
		t.Fatal(err)
	}
	before.waitLine(id + " said hello from the browser")
	if err := chromedp.Do(b.Context(), chromedp.SendKeys(chromedp.ID("input"), "and with Enter\r")); err != nil {
		t.Fatal(err)
	}
	before.waitLine(id + " said and with Enter")
	after.waitLine(id + " said and with Enter")
	waitLog(t, b, id+" said and with Enter")
	if v := eval[string](t, b, `document.getElementById("input").value`); v != "" {
		t.Errorf("input after sending = %q, want it cleared", v)
	}
	if n := eval[int](t, b, `document.querySelectorAll("#log li.mine").length`); n != 2 {
		t.Errorf("%d log lines marked as the page's own, want 2", n)
	}

	// A text client's line, with markup that must stay text.
	line := `hi <b id="bold">there</b> & <img src=x id="img">`
	before.Send(line)
	waitLog(t, b, before.ID+" said "+line)
	if n := eval[int](t, b, `document.querySelectorAll("#log b, #log img, #bold, #img").length`); n != 0 {
		t.Errorf("a message's HTML became %d elements, want none", n)
	}

	after.Close()
	waitOnline(t, b, before.ID, id+" me")
	waitLog(t, b, after.ID+" logout")
	noConsoleErrors(t, b)
}

// TestPingAnsweredAndHidden runs a hub that pings every 500ms and closes
// a client silent for two intervals: the page answers every ping_data
// with {"type":"pong"}, stays connected on the same id, and shows none.
func TestPingAnsweredAndHidden(t *testing.T) {
	const interval = 500 * time.Millisecond
	s := startServer(t, gateway.Options{
		PingInterval:         interval,
		PingNotResponseLimit: 2,
		PingData:             `{"type":"ping"}`,
	}, true)
	b := s.openPage(t, "/")
	id := waitID(t, b, "")
	time.Sleep(5 * interval)

	if got := eval[string](t, b, jsMe); got != id {
		t.Errorf("client id changed from %s to %s: the page was disconnected", id, got)
	}
	if got := eval[string](t, b, jsState); got != "open" {
		t.Errorf("state = %q, want open", got)
	}
	if !s.Hub.IsOnline(id) {
		t.Errorf("hub: %s is not online", id)
	}
	if st := s.Hub.Stats(); st.HeartbeatClosed != 0 || st.ConnectionsTotal != 1 {
		t.Errorf("hub stats %+v: want no heartbeat closes and one connection", st)
	}
	// Pings go out every interval; allow for the first one's phase.
	if n := s.chat.pongsOf(id); n < 3 {
		t.Errorf("hub got %d pongs from the page in %v, want at least 3", n, 5*interval)
	}
	for _, line := range eval[[]string](t, b, jsLog) {
		if strings.Contains(line, "ping") || strings.Contains(line, "pong") {
			t.Errorf("the page shows %q", line)
		}
	}
	noConsoleErrors(t, b)
}

// TestReconnect cuts the page's connection on the server's side: the
// page comes back by itself with a new client id, and the others see it
// leave and return.
func TestReconnect(t *testing.T) {
	s := startServer(t, gateway.Options{}, true)
	other := s.dialText(t)
	b := s.openPage(t, "/")
	first := waitID(t, b, "")
	other.waitLine(first + " login")

	start := time.Now()
	if err := s.Hub.DestroyClient(first); err != nil {
		t.Fatal(err)
	}
	other.waitLine(first + " logout")
	second := waitID(t, b, first)
	t.Logf("reconnected in %v", time.Since(start).Round(time.Millisecond))
	other.waitLine(second + " login")
	waitOnline(t, b, other.ID, second+" me")
	if s.Hub.IsOnline(first) || !s.Hub.IsOnline(second) {
		t.Errorf("hub: IsOnline(old %s) = %v, IsOnline(new %s) = %v; want false, true",
			first, s.Hub.IsOnline(first), second, s.Hub.IsOnline(second))
	}

	// The new connection works both ways.
	if err := chromedp.Do(b.Context(), chromedp.SendKeys(chromedp.ID("input"), "back\r")); err != nil {
		t.Fatal(err)
	}
	other.waitLine(second + " said back")
	other.Send("welcome back")
	waitLog(t, b, other.ID+" said welcome back")
	noConsoleErrors(t, b)
}

// TestPlainHTTPAndPathOverride loads the page over http with ?ws=/other:
// it connects with ws:// to that path.
func TestPlainHTTPAndPathOverride(t *testing.T) {
	s := startServer(t, gateway.Options{}, false)
	b := s.openPage(t, "/chat/?ws=/other")
	id := waitID(t, b, "")
	if path := s.chat.pathOf(id); path != "/other" {
		t.Errorf("page connected to %q, want /other", path)
	}
	waitOnline(t, b, id+" me")
	noConsoleErrors(t, b)
}

// TestBackoff points the page at a path that refuses WebSockets: it
// retries after waits that double from 0.5 s, each 50–100% of its step,
// and says that it is retrying.
func TestBackoff(t *testing.T) {
	var mu sync.Mutex
	var attempts []time.Time
	mux := http.NewServeMux()
	mux.Handle("/", chatpage.Handler())
	mux.HandleFunc("/refuse", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		attempts = append(attempts, time.Now())
		mu.Unlock()
		http.Error(w, "503 not now", http.StatusServiceUnavailable)
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	b := browser.New(t, browser.Options{Trust: []*x509.Certificate{srv.Certificate()}})
	if err := chromedp.Do(b.Context(), chromedp.Navigate(srv.URL+"/?ws=/refuse")); err != nil {
		t.Fatal(err)
	}
	const gaps = 3
	deadline := time.Now().Add(8 * time.Second)
	for {
		mu.Lock()
		n := len(attempts)
		mu.Unlock()
		if n > gaps {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d attempts in 8s, want %d", n, gaps+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The attempt is recorded when it reaches the server; the page turns
	// to "closed" once the refusal comes back.
	waitPage(t, b, "state closed", jsState, func(s string) bool { return s == "closed" })
	if got := eval[string](t, b, `document.getElementById("state").textContent`); !strings.Contains(got, "retrying in") {
		t.Errorf("state text = %q, want it to say when it retries", got)
	}
	mu.Lock()
	defer mu.Unlock()
	step := 500 * time.Millisecond
	for i := 1; i <= gaps; i++ {
		gap := attempts[i].Sub(attempts[i-1])
		// Slack for the handshake's round trip and a busy machine (the
		// suite shares two cores); the lower bound is what matters.
		if gap < step/2-20*time.Millisecond || gap > step+time.Second {
			t.Errorf("wait before attempt %d = %v, want %v to %v", i+1, gap.Round(time.Millisecond), step/2, step)
		}
		step *= 2
	}
}
