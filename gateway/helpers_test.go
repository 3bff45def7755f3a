package gateway

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wssgate/wssgate/internal/testutil"
)

// testHub is a hub serving WebSocket on an httptest server and the text
// protocol on a loopback listener.
type testHub struct {
	*Hub
	wsURL    string
	textAddr string
	events   *recorder
}

func startHub(t testing.TB, opts Options) *testHub {
	t.Helper()
	rec := &recorder{}
	if opts.Handler == nil {
		opts.Handler = rec
	}
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(t)
	}
	h := New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(h.WebSocketHandler(nil))
	ln := testutil.Listen(t)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); h.Run(ctx) }()
	go func() { defer wg.Done(); h.ServeText(ctx, ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := h.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		cancel()
		wg.Wait()
		srv.Close()
	})
	return &testHub{Hub: h, wsURL: "ws" + strings.TrimPrefix(srv.URL, "http"), textAddr: ln.Addr().String(), events: rec}
}

// peer is a test client of either transport.
type peer = testutil.Peer

func (th *testHub) dialWS(t testing.TB) *peer {
	t.Helper()
	return testutil.DialWS(t, th.wsURL+"/wss?token=abc", nil)
}

func (th *testHub) dialText(t testing.TB) *peer {
	t.Helper()
	return testutil.DialText(t, th.textAddr)
}

// connect dials a client of the given transport ("websocket" or "text")
// and returns it with its client id, read from the recorder. Clients must
// be connected one at a time.
func (th *testHub) connect(t testing.TB, transport string) (*peer, string) {
	t.Helper()
	th.events.mu.Lock()
	n := len(th.events.connects)
	th.events.mu.Unlock()
	var p *peer
	if transport == "text" {
		p = th.dialText(t)
	} else {
		p = th.dialWS(t)
	}
	ids := th.events.waitConnects(t, n+1)
	return p, ids[n]
}

// recorder is a Handler that records events.
type recorder struct {
	mu       sync.Mutex
	connects []string
	ws       map[string]*WebSocketRequest
	messages []string // "id: data"
	closes   []ClientInfo
	changed  chan struct{}
}

func (r *recorder) note(f func()) {
	r.mu.Lock()
	f()
	if r.changed == nil {
		r.changed = make(chan struct{}, 1)
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) OnConnect(c ClientInfo) { r.note(func() { r.connects = append(r.connects, c.ID) }) }
func (r *recorder) OnWebSocketConnect(c ClientInfo, req *WebSocketRequest) {
	r.note(func() {
		if r.ws == nil {
			r.ws = make(map[string]*WebSocketRequest)
		}
		r.ws[c.ID] = req
	})
}
func (r *recorder) OnMessage(c ClientInfo, data []byte) {
	r.note(func() { r.messages = append(r.messages, c.ID+": "+string(data)) })
}
func (r *recorder) OnClose(c ClientInfo) { r.note(func() { r.closes = append(r.closes, c) }) }

// wait polls cond under the lock until it holds, for up to 5s.
func (r *recorder) wait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		ok := cond()
		if r.changed == nil {
			r.changed = make(chan struct{}, 1)
		}
		ch := r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *recorder) waitConnects(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	r.wait(t, "connects", func() bool { out = append([]string(nil), r.connects...); return len(out) >= n })
	return out
}

func (r *recorder) waitCloses(t testing.TB, n int) []ClientInfo {
	t.Helper()
	var out []ClientInfo
	r.wait(t, "closes", func() bool { out = append([]ClientInfo(nil), r.closes...); return len(out) >= n })
	return out
}
