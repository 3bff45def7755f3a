package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wssgate/wssgate/internal/testutil"
	"github.com/wssgate/wssgate/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeState is a wssgate whose counters grow by a fixed step per
// snapshot and whose clock moves one second per snapshot, so that every
// rate the server measures is exactly perSecond, however fast the test
// runs.
type fakeState struct {
	mu    sync.Mutex
	calls int64
}

// perSecond is the rate of every row of a fakeState.
const perSecond = 10

func (f *fakeState) snapshot() status.Snapshot {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return status.Snapshot{
		Time:    start.Add(time.Duration(n) * time.Second),
		Process: status.Process{PID: 4242, Version: "v0.9.0", GoVersion: "go1.26.8", Start: start, Draining: true},
		Reload:  status.Reload{Generation: 3, Attempts: 3},
		Listeners: []status.Listener{
			{Name: "https", Addr: "127.0.0.1:8443", Conns: 12, Total: perSecond * n},
		},
		Routes: []status.Route{
			{Site: "chat.example.com", Path: "/wss", Kind: "gateway", Conns: 7, MessagesIn: perSecond * n},
		},
		Upstreams: []status.Upstream{
			{Site: "chat.example.com", Route: "/api", URL: "ws://127.0.0.1:9001", Healthy: true, Total: perSecond * n},
		},
		Gateway: &status.Gateway{Node: "127.0.0.1:9181", Clients: 11, UIDs: 9, Groups: 2, PushCalls: perSecond * n},
	}
}

// startServer returns a Server with opts (Snapshot defaulting to a
// fakeState's) behind a real loopback HTTP server, closed at cleanup.
func startServer(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	if opts.Snapshot == nil {
		opts.Snapshot = (&fakeState{}).snapshot
	}
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(t)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

// answer is a response read whole.
type answer struct {
	status int
	header http.Header
	body   string
}

// do sends method url with token (if any) through ts's client.
func do(t *testing.T, ts *httptest.Server, method, path, authorization string) answer {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}
