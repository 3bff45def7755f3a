package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	testhelp "github.com/wssgate/wssgate/internal/testutil"
	"github.com/wssgate/wssgate/status"
)

func TestEndpoints(t *testing.T) {
	const token = "s3cret-admin-token"
	for _, tc := range []struct {
		name       string
		opts       Options
		method     string
		path       string
		auth       string
		wantStatus int
		wantBody   string // contained in the body
		wantHeader map[string]string
	}{
		{name: "healthz", path: "/healthz", wantStatus: 200, wantBody: "ok\n"},
		{name: "healthz HEAD", method: "HEAD", path: "/healthz", wantStatus: 200},
		{name: "readyz with nil Ready", path: "/readyz", wantStatus: 200, wantBody: "ready\n"},
		{name: "status", path: "/status", wantStatus: 200, wantBody: `"clients": 11`,
			wantHeader: map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"}},
		{name: "status HEAD", method: "HEAD", path: "/status", wantStatus: 200,
			wantHeader: map[string]string{"Content-Type": "application/json"}},
		{name: "metrics", path: "/metrics", wantStatus: 200, wantBody: "wssgate_gateway_clients 11"},
		{name: "unknown path", path: "/nope", wantStatus: 404},
		{name: "status subpath", path: "/status/x", wantStatus: 404},
		{name: "POST refused", method: "POST", path: "/status", wantStatus: 405,
			wantHeader: map[string]string{"Allow": "GET, HEAD"}},
		{name: "PUT refused on healthz", method: "PUT", path: "/healthz", wantStatus: 405},
		{name: "DELETE refused on unknown path", method: "DELETE", path: "/nope", wantStatus: 405},

		{name: "pprof off", path: "/debug/pprof/", wantStatus: 404},
		{name: "pprof off: cmdline", path: "/debug/pprof/cmdline", wantStatus: 404},
		{name: "pprof off: heap", path: "/debug/pprof/heap", wantStatus: 404},
		{name: "pprof on: index", opts: Options{Pprof: true}, path: "/debug/pprof/", wantStatus: 200, wantBody: "goroutine"},
		{name: "pprof on: cmdline", opts: Options{Pprof: true}, path: "/debug/pprof/cmdline", wantStatus: 200, wantBody: "admin.test"},
		{name: "pprof on: heap", opts: Options{Pprof: true}, path: "/debug/pprof/heap?debug=1", wantStatus: 200, wantBody: "heap profile"},
		{name: "pprof on: goroutine", opts: Options{Pprof: true}, path: "/debug/pprof/goroutine?debug=1", wantStatus: 200, wantBody: "goroutine profile"},
		{name: "pprof on: symbol POST refused", opts: Options{Pprof: true}, method: "POST", path: "/debug/pprof/symbol", wantStatus: 405},

		{name: "token: none sent", opts: Options{Token: token}, path: "/status", wantStatus: 401,
			wantHeader: map[string]string{"WWW-Authenticate": "Bearer"}},
		{name: "token: wrong", opts: Options{Token: token}, path: "/status", auth: "Bearer nope", wantStatus: 401,
			wantHeader: map[string]string{"WWW-Authenticate": "Bearer"}},
		{name: "token: prefix of the right one", opts: Options{Token: token}, path: "/status", auth: "Bearer s3cret", wantStatus: 401},
		{name: "token: right one as Basic", opts: Options{Token: token}, path: "/status", auth: "Basic " + token, wantStatus: 401},
		{name: "token: right", opts: Options{Token: token}, path: "/status", auth: "Bearer " + token, wantStatus: 200, wantBody: `"pid": 4242`},
		{name: "token: scheme in any case", opts: Options{Token: token}, path: "/healthz", auth: "bearer " + token, wantStatus: 200},
		{name: "token: healthz needs it too", opts: Options{Token: token}, path: "/healthz", wantStatus: 401},
		{name: "token: metrics needs it too", opts: Options{Token: token}, path: "/metrics", wantStatus: 401},
		{name: "token: readyz needs it too", opts: Options{Token: token}, path: "/readyz", wantStatus: 401},
		{name: "token: unknown path answers 401 before 404", opts: Options{Token: token}, path: "/nope", wantStatus: 401},
		{name: "token: POST answers 401 before 405", opts: Options{Token: token}, method: "POST", path: "/status", wantStatus: 401},
		{name: "token: pprof needs it too", opts: Options{Token: token, Pprof: true}, path: "/debug/pprof/", wantStatus: 401},
		{name: "token: right, pprof", opts: Options{Token: token, Pprof: true}, path: "/debug/pprof/", auth: "Bearer " + token, wantStatus: 200},
		{name: "token: right, metrics", opts: Options{Token: token}, path: "/metrics", auth: "Bearer " + token, wantStatus: 200, wantBody: "wssgate_build_info"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ts := startServer(t, tc.opts)
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			got := do(t, ts, method, tc.path, tc.auth)
			if got.status != tc.wantStatus {
				t.Errorf("%s %s: status %d, want %d (body %q)", method, tc.path, got.status, tc.wantStatus, got.body)
			}
			if !strings.Contains(got.body, tc.wantBody) {
				t.Errorf("%s %s: body %q, want it to contain %q", method, tc.path, got.body, tc.wantBody)
			}
			if method == http.MethodHead && got.body != "" {
				t.Errorf("HEAD %s: body %q, want none", tc.path, got.body)
			}
			for k, want := range tc.wantHeader {
				if v := got.header.Get(k); v != want {
					t.Errorf("%s %s: header %s = %q, want %q", method, tc.path, k, v, want)
				}
			}
		})
	}
}

func TestReadyzFlips(t *testing.T) {
	var ready atomic.Bool
	_, ts := startServer(t, Options{Ready: ready.Load})
	for i, want := range []struct {
		ready  bool
		status int
		body   string
	}{
		{false, 503, "not ready\n"},
		{true, 200, "ready\n"},
		{false, 503, "not ready\n"}, // draining after an upgrade
	} {
		ready.Store(want.ready)
		got := do(t, ts, "GET", "/readyz", "")
		if got.status != want.status || got.body != want.body {
			t.Errorf("step %d, ready %v: %d %q, want %d %q", i, want.ready, got.status, got.body, want.status, want.body)
		}
		if h := do(t, ts, "GET", "/healthz", ""); h.status != 200 {
			t.Errorf("step %d: healthz %d, want 200 whatever readiness", i, h.status)
		}
	}
}

func TestStatusJSON(t *testing.T) {
	_, ts := startServer(t, Options{})
	got := do(t, ts, "GET", "/status", "")
	var snap status.Snapshot
	if err := json.Unmarshal([]byte(got.body), &snap); err != nil {
		t.Fatalf("decode /status: %v\n%s", err, got.body)
	}
	if snap.Process.PID != 4242 || snap.Gateway == nil || snap.Gateway.Clients != 11 || len(snap.Routes) != 1 {
		t.Errorf("status = %+v; want the fake's PID 4242, 11 clients, 1 route", snap)
	}
	if snap.QPSInterval != 0 || snap.Listeners[0].QPS != 0 {
		t.Errorf("QPS interval %v, listener QPS %v; want zeros before Run has sampled", snap.QPSInterval, snap.Listeners[0].QPS)
	}
}

func TestStatusSetsMissingTime(t *testing.T) {
	_, ts := startServer(t, Options{Snapshot: func() status.Snapshot { return status.Snapshot{} }})
	before := time.Now().Add(-time.Second)
	var snap status.Snapshot
	if err := json.Unmarshal([]byte(do(t, ts, "GET", "/status", "").body), &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Time.Before(before) {
		t.Errorf("time = %v, want now when the snapshot function leaves it zero", snap.Time)
	}
}

func TestRunFillsQPS(t *testing.T) {
	s, ts := startServer(t, Options{SampleInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	var snap status.Snapshot
	testhelp.WaitFor(t, "a measured interval in /status", func() bool {
		snap = status.Snapshot{}
		if err := json.Unmarshal([]byte(do(t, ts, "GET", "/status", "").body), &snap); err != nil {
			t.Fatal(err)
		}
		return snap.QPSInterval > 0
	})
	for name, q := range map[string]float64{
		"listener": snap.Listeners[0].QPS,
		"route":    snap.Routes[0].QPS,
		"upstream": snap.Upstreams[0].QPS,
		"gateway":  snap.Gateway.QPS,
	} {
		if q != perSecond {
			t.Errorf("%s QPS = %v, want %v", name, q, perSecond)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestMetricsOverHTTP(t *testing.T) {
	_, ts := startServer(t, Options{})
	const want = `
# HELP wssgate_gateway_clients Clients connected to the gateway now.
# TYPE wssgate_gateway_clients gauge
wssgate_gateway_clients 11
# HELP wssgate_gateway_uids Distinct uids bound now.
# TYPE wssgate_gateway_uids gauge
wssgate_gateway_uids 9
# HELP wssgate_draining 1 while the process drains: it accepts no new work and waits for connections to end.
# TYPE wssgate_draining gauge
wssgate_draining 1
# HELP wssgate_reload_generation Successful configuration reloads since the process started.
# TYPE wssgate_reload_generation gauge
wssgate_reload_generation 3
# HELP wssgate_listener_connections Connections open now on the listener.
# TYPE wssgate_listener_connections gauge
wssgate_listener_connections{addr="127.0.0.1:8443",listener="https"} 12
# HELP wssgate_upstream_up 1 while the upstream is healthy and in rotation, else 0.
# TYPE wssgate_upstream_up gauge
wssgate_upstream_up{route="/api",site="chat.example.com",upstream="ws://127.0.0.1:9001"} 1
`
	if err := testutil.ScrapeAndCompare(ts.URL+"/metrics", strings.NewReader(want),
		"wssgate_gateway_clients", "wssgate_gateway_uids", "wssgate_draining",
		"wssgate_reload_generation", "wssgate_listener_connections", "wssgate_upstream_up"); err != nil {
		t.Error(err)
	}
	body := do(t, ts, "GET", "/metrics", "").body
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_open_fds", "wssgate_build_info"} {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want []string // in the error
	}{
		{"no snapshot", Options{}, []string{"snapshot function is required"}},
		{"everything wrong", Options{Token: "tok\n", SampleInterval: -time.Second},
			[]string{"snapshot function is required", "white space", "negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New error %q, want it to name %q", err, w)
				}
			}
		})
	}
}

func TestServe(t *testing.T) {
	s, err := New(Options{Snapshot: (&fakeState{}).snapshot, SampleInterval: time.Millisecond, Logger: testhelp.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()

	// Serve samples by itself: QPS shows up without a Run of ours.
	testhelp.WaitFor(t, "QPS from Serve's sampler", func() bool {
		snap, err := Fetch(context.Background(), ln.Addr().String(), "")
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		return snap.QPSInterval > 0 && snap.Gateway.QPS == perSecond
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := Fetch(context.Background(), ln.Addr().String(), ""); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Fetch after Serve returned = %v, want ErrNotRunning: the listener is closed", err)
	}
}

// fakeListener is a listener that claims an address without binding it.
type fakeListener struct {
	net.Listener // nil: only Addr and Close are called
	addr         net.Addr
	closed       atomic.Bool
}

func (f *fakeListener) Addr() net.Addr { return f.addr }
func (f *fakeListener) Close() error   { f.closed.Store(true); return nil }

func TestServeRefusesOpenListenerWithoutToken(t *testing.T) {
	for _, ip := range []net.IP{net.IPv4zero, net.IPv6unspecified, net.IPv4(192, 0, 2, 1)} {
		t.Run(ip.String(), func(t *testing.T) {
			s, err := New(Options{Snapshot: (&fakeState{}).snapshot})
			if err != nil {
				t.Fatal(err)
			}
			ln := &fakeListener{addr: &net.TCPAddr{IP: ip, Port: 9180}}
			err = s.Serve(context.Background(), ln)
			if !errors.Is(err, ErrNeedsToken) {
				t.Errorf("Serve on %v without a token = %v, want ErrNeedsToken", ln.addr, err)
			}
			if !ln.closed.Load() {
				t.Error("Serve did not close the refused listener")
			}
		})
	}
}
