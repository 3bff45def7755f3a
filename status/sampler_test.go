package status

import (
	"sync"
	"testing"
	"time"
)

// t0 returns the time of the first snapshot in the sampler tests.
func t0() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }

// counted returns a snapshot at t0+at whose rate-bearing counters are
// n, n*2, n*3 ... so that rates are easy to predict.
func counted(at time.Duration, n int64) Snapshot {
	return Snapshot{
		Time:      t0().Add(at),
		Listeners: []Listener{{Name: "https", Addr: ":443", Total: n}},
		Routes:    []Route{{Site: "a.example", Path: "/wss", Requests: n, MessagesIn: n, MessagesOut: 2 * n, Streams: 1000 * n}},
		Upstreams: []Upstream{{Site: "a.example", Route: "/wss", URL: "ws://127.0.0.1:8282", Total: n}},
		Gateway:   &Gateway{MessagesIn: n, MessagesOut: n, PushCalls: n, SendFail: 1000 * n},
	}
}

// qpsOf returns the QPS of every row of s, in a fixed order.
func qpsOf(s Snapshot) [4]float64 {
	var q [4]float64
	if len(s.Listeners) > 0 {
		q[0] = s.Listeners[0].QPS
	}
	if len(s.Routes) > 0 {
		q[1] = s.Routes[0].QPS
	}
	if len(s.Upstreams) > 0 {
		q[2] = s.Upstreams[0].QPS
	}
	if s.Gateway != nil {
		q[3] = s.Gateway.QPS
	}
	return q
}

func TestSamplerObserve(t *testing.T) {
	type step struct {
		snap     Snapshot
		want     [4]float64 // listener, route, upstream, gateway
		interval time.Duration
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"first snapshot has no rates", []step{
			{counted(0, 100), [4]float64{}, 0},
		}},
		{"rates over the last interval", []step{
			{counted(0, 100), [4]float64{}, 0},
			{counted(10*time.Second, 200), [4]float64{10, 40, 10, 30}, 10 * time.Second},
			{counted(15*time.Second, 200), [4]float64{0, 0, 0, 0}, 5 * time.Second},
			{counted(17*time.Second, 201), [4]float64{0.5, 2, 0.5, 1.5}, 2 * time.Second},
		}},
		{"counter restarted from zero", []step{
			{counted(0, 500), [4]float64{}, 0},
			{counted(10*time.Second, 50), [4]float64{5, 20, 5, 15}, 10 * time.Second},
		}},
		{"zero time is not recorded", []step{
			{counted(0, 100), [4]float64{}, 0},
			{Snapshot{Listeners: []Listener{{Name: "https", Addr: ":443", Total: 9999}}}, [4]float64{}, 0},
			{counted(10*time.Second, 200), [4]float64{10, 40, 10, 30}, 10 * time.Second},
		}},
		{"time going backwards is not recorded", []step{
			{counted(10*time.Second, 100), [4]float64{}, 0},
			{counted(20*time.Second, 200), [4]float64{10, 40, 10, 30}, 10 * time.Second},
			{counted(5*time.Second, 0), [4]float64{10, 40, 10, 30}, 10 * time.Second},
			{counted(30*time.Second, 250), [4]float64{5, 20, 5, 15}, 10 * time.Second},
		}},
		{"new rows start at zero", []step{
			{Snapshot{Time: t0()}, [4]float64{}, 0},
			{counted(10*time.Second, 200), [4]float64{}, 10 * time.Second},
			{counted(20*time.Second, 300), [4]float64{10, 40, 10, 30}, 10 * time.Second},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sm Sampler
			for i, st := range tc.steps {
				got := sm.Observe(st.snap)
				if q := qpsOf(got); q != st.want {
					t.Errorf("step %d: QPS (listener, route, upstream, gateway) = %v, want %v", i, q, st.want)
				}
				if time.Duration(got.QPSInterval) != st.interval {
					t.Errorf("step %d: QPSInterval = %v, want %v", i, got.QPSInterval, st.interval)
				}
			}
		})
	}
}

func TestSamplerMatchesRowsByIdentity(t *testing.T) {
	var sm Sampler
	sm.Observe(Snapshot{Time: t0(), Routes: []Route{
		{Site: "a", Path: "/x", Requests: 10},
		{Site: "b", Path: "/x", Requests: 10},
	}})
	got := sm.Observe(Snapshot{Time: t0().Add(time.Second), Routes: []Route{
		{Site: "b", Path: "/x", Requests: 13}, // order changed
		{Site: "a", Path: "/x", Requests: 11},
		{Site: "a", Path: "/y", Requests: 50}, // new
	}})
	for i, want := range []float64{3, 1, 0} {
		if got.Routes[i].QPS != want {
			t.Errorf("route %s%s: QPS = %v, want %v", got.Routes[i].Site, got.Routes[i].Path, got.Routes[i].QPS, want)
		}
	}
}

func TestSamplerFill(t *testing.T) {
	var sm Sampler
	if got := sm.Fill(counted(0, 1)); got.QPSInterval != 0 || qpsOf(got) != [4]float64{} {
		t.Errorf("Fill before any observation: interval %v, QPS %v; want zeros", got.QPSInterval, qpsOf(got))
	}
	sm.Observe(counted(0, 100))
	sm.Observe(counted(10*time.Second, 200))

	// Fill reports the last interval's rates with current counters and
	// does not record: the next Observe measures from the 10s snapshot.
	now := counted(12*time.Second, 1_000_000)
	got := sm.Fill(now)
	if q := qpsOf(got); q != [4]float64{10, 40, 10, 30} {
		t.Errorf("Fill: QPS = %v, want the last interval's [10 40 10 30]", q)
	}
	if got.Listeners[0].Total != 1_000_000 {
		t.Errorf("Fill: Total = %d, want the current 1000000", got.Listeners[0].Total)
	}
	if got = sm.Observe(counted(20*time.Second, 300)); qpsOf(got) != [4]float64{10, 40, 10, 30} {
		t.Errorf("Observe after Fill: QPS = %v, want [10 40 10 30]", qpsOf(got))
	}
}

func TestSamplerDoesNotModifyInput(t *testing.T) {
	var sm Sampler
	sm.Observe(counted(0, 0))
	in := counted(time.Second, 10)
	out := sm.Observe(in)
	if out.Listeners[0].QPS != 10 || out.Gateway.QPS != 30 {
		t.Fatalf("QPS = %v, %v; want 10, 30", out.Listeners[0].QPS, out.Gateway.QPS)
	}
	if in.Listeners[0].QPS != 0 || in.Routes[0].QPS != 0 || in.Upstreams[0].QPS != 0 || in.Gateway.QPS != 0 {
		t.Errorf("input QPS = %v; want zeros: Observe must fill copies", qpsOf(in))
	}
}

func TestSamplerConcurrent(t *testing.T) {
	var sm Sampler
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				at := time.Duration(g*1000+i) * time.Millisecond
				if i%2 == 0 {
					sm.Observe(counted(at, int64(i)))
				} else {
					sm.Fill(counted(at, int64(i)))
				}
			}
		})
	}
	wg.Wait()
}
