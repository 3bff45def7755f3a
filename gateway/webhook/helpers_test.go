package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/internal/testutil"
)

const testSecret = "webhook-secret"

// app is the web application: a real HTTP server that checks every
// request's signature, records the events and answers with respond.
type app struct {
	t       *testing.T
	srv     *httptest.Server
	respond func(ev Event) (status int, body string) // nil answers 204

	mu       sync.Mutex
	events   []Event
	bodies   []string
	problems []string // bad signatures, headers
	changed  chan struct{}
}

func newApp(t *testing.T, respond func(ev Event) (int, string)) *app {
	t.Helper()
	a := &app{t: t, respond: respond, changed: make(chan struct{}, 1)}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *app) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	// Check the signature as an application would: HMAC over the raw
	// body, compared in constant time.
	m := hmac.New(sha256.New, []byte(testSecret))
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	var ev Event
	jerr := json.Unmarshal(body, &ev)
	a.mu.Lock()
	switch {
	case r.Method != http.MethodPost:
		a.problems = append(a.problems, "method "+r.Method)
	case !hmac.Equal([]byte(r.Header.Get("X-Wssgate-Signature")), []byte(want)):
		a.problems = append(a.problems, "bad signature on "+string(body))
	case jerr != nil:
		a.problems = append(a.problems, "bad JSON: "+jerr.Error())
	case r.Header.Get("X-Wssgate-Event") != ev.Event:
		a.problems = append(a.problems, "X-Wssgate-Event "+r.Header.Get("X-Wssgate-Event")+" for "+ev.Event)
	case r.Header.Get("Content-Type") != "application/json":
		a.problems = append(a.problems, "Content-Type "+r.Header.Get("Content-Type"))
	}
	a.events = append(a.events, ev)
	a.bodies = append(a.bodies, string(body))
	a.mu.Unlock()
	select {
	case a.changed <- struct{}{}:
	default:
	}
	status, answer := http.StatusNoContent, ""
	if a.respond != nil {
		status, answer = a.respond(ev)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, answer)
}

// received returns copies of the events and bodies so far, failing the
// test on any problem the app saw.
func (a *app) received() ([]Event, []string) {
	a.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range a.problems {
		a.t.Errorf("app: %s", p)
	}
	a.problems = nil
	return append([]Event(nil), a.events...), append([]string(nil), a.bodies...)
}

// waitFor polls cond over the events until it holds, for up to 5s.
func (a *app) waitFor(what string, cond func(evs []Event) bool) []Event {
	a.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs, _ := a.received()
		if cond(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("timed out waiting for %s; got %d events", what, len(evs))
		}
		select {
		case <-a.changed:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func count(evs []Event, name string) int {
	n := 0
	for _, ev := range evs {
		if ev.Event == name {
			n++
		}
	}
	return n
}

// newHandler returns a Handler posting to url with fast retries.
func newHandler(t *testing.T, url string, opts Options) *Handler {
	t.Helper()
	opts.URL = url
	if opts.Secret == "" {
		opts.Secret = testSecret
	}
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(t)
	}
	h, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.backoff = 5 * time.Millisecond
	t.Cleanup(h.Close)
	return h
}

// env is a hub whose business worker is the webhook, with a WebSocket
// endpoint and a text listener on loopback.
type env struct {
	*gatewaytest.Env
	wh *Handler
}

func start(t *testing.T, url string, opts Options) *env {
	t.Helper()
	wh := newHandler(t, url, opts)
	hub := gateway.New(gateway.Options{Handler: wh, Logger: testutil.Logger(t)})
	wh.SetHub(hub)
	return &env{Env: gatewaytest.Start(t, hub), wh: wh}
}

// dial connects a client of the given transport ("websocket" or "text");
// a WebSocket client sends a token, a cookie and a header for the
// webhook to pass on.
func (e *env) dial(t *testing.T, transport string) *gatewaytest.Peer {
	t.Helper()
	if transport == "text" {
		return e.DialText(t)
	}
	hdr := http.Header{"Cookie": {"laravel_session=abc"}, "X-App": {"demo"}}
	return gatewaytest.DialWS(t, e.WSURL+"/wss?token=t1", hdr)
}
