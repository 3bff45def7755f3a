package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/internal/testutil"
)

// TestSendsContactOnlyHolders proves with counters that sendToGroup and
// sendToUid reach only the nodes that hold a member, once per node.
func TestSendsContactOnlyHolders(t *testing.T) {
	r := testutil.StartRedis(t)
	nodes := startCluster(t, 3, nil, r.Addr)
	a, b, c := nodes[0], nodes[1], nodes[2]
	var published sync.Map // channel → *atomic.Int64, of node a
	a.onPublish = func(ch string) {
		v, _ := published.LoadOrStore(ch, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	count := func(ch string) int64 {
		v, ok := published.Load(ch)
		if !ok {
			return 0
		}
		return v.(*atomic.Int64).Load()
	}
	for range 3 { // three members on c, one client on b outside the group
		p, id := c.connect(t)
		c.call(t, gateway.Call{Method: "joinGroup", ClientID: id, Group: "only-c"})
		c.call(t, gateway.Call{Method: "bindUid", ClientID: id, UID: "uc"})
		t.Cleanup(p.Close)
	}
	pb, _ := b.connect(t)
	before := []Stats{a.Stats(), b.Stats(), c.Stats()}

	tests := []struct {
		name string
		call gateway.Call
	}{
		{"sendToGroup", gateway.Call{Method: "sendToGroup", Group: "only-c", Data: data("g")}},
		{"sendToUid", gateway.Call{Method: "sendToUid", UID: "uc", Data: data("u")}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.call(t, tt.call)
			waitFor(t, 5*time.Second, "c to receive the send", func() bool {
				return c.Stats().SendsReceived == before[2].SendsReceived+int64(i+1)
			})
			if got := b.Stats().SendsReceived; got != before[1].SendsReceived {
				t.Errorf("node b received %d sends, want %d: it holds no member", got, before[1].SendsReceived)
			}
			if got := count(a.k.inbox(c.id)); got != int64(i+1) {
				t.Errorf("node a published %d times to c's inbox, want %d (once per node, not per client)", got, i+1)
			}
			if got := count(a.k.inbox(b.id)) + count(a.k.all()); got != 0 {
				t.Errorf("node a published %d times to b or everyone, want 0", got)
			}
		})
	}
	expectNothing(t, pb, 200*time.Millisecond)
}

// TestKilledNodeDisappears kills a node without a leave: within node_ttl
// + 1s its uids and groups are gone from the index, and at once from
// counts; the others keep working.
func TestKilledNodeDisappears(t *testing.T) {
	r := testutil.StartRedis(t)
	nodes := startCluster(t, 3, nil, r.Addr)
	a, b, c := nodes[0], nodes[1], nodes[2]
	pa, ida := a.connect(t)
	_, idc := c.connect(t)
	c.call(t, gateway.Call{Method: "bindUid", ClientID: idc, UID: "uc"})
	c.call(t, gateway.Call{Method: "joinGroup", ClientID: idc, Group: "gc"})
	a.call(t, gateway.Call{Method: "bindUid", ClientID: ida, UID: "ua"})
	same(t, nodes, gateway.Call{Method: "getAllClientIdCount"}, 2)

	killed := time.Now()
	c.kill()
	live := nodes[:2]
	same(t, live, gateway.Call{Method: "getAllClientIdCount"}, 1)
	same(t, live, gateway.Call{Method: "getAllUidList"}, []string{"ua"})
	ttl := c.cfg.NodeTTL
	waitFor(t, ttl+time.Second, "c's entries removed", func() bool {
		u, _ := r.Do("SMEMBERS", a.k.uid("uc"))
		g, _ := r.Do("SMEMBERS", a.k.group("gc"))
		return u == "" && g == ""
	})
	took := time.Since(killed)
	t.Logf("index entries of the killed node removed %v after the kill (node_ttl %v)", took.Round(time.Millisecond), ttl)
	same(t, live, gateway.Call{Method: "isUidOnline", UID: "uc"}, false)
	if got, _ := r.Do("SISMEMBER", a.k.nodes(), c.id); got != "0" {
		t.Errorf("killed node still in %s", a.k.nodes())
	}
	if a.Stats().JanitorRemoved+b.Stats().JanitorRemoved != 1 {
		t.Errorf("janitor removals = %d + %d, want 1 in all", a.Stats().JanitorRemoved, b.Stats().JanitorRemoved)
	}
	b.call(t, gateway.Call{Method: "sendToUid", UID: "ua", Data: data("still here")})
	expect(t, pa, "still here")
	if st := a.Status(); st.Nodes != 2 {
		t.Errorf("status nodes = %d, want 2", st.Nodes)
	}
}

// TestGracefulLeave: a node that shuts down removes its entries at once.
func TestGracefulLeave(t *testing.T) {
	r := testutil.StartRedis(t)
	nodes := startCluster(t, 2, nil, r.Addr)
	a, b := nodes[0], nodes[1]
	_, idb := b.connect(t)
	b.call(t, gateway.Call{Method: "bindUid", ClientID: idb, UID: "ub"})
	b.call(t, gateway.Call{Method: "joinGroup", ClientID: idb, Group: "gb"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, k := range []string{a.k.uid("ub"), a.k.group("gb"), a.k.node(b.id), a.k.nodeUIDs(b.id), a.k.nodeGroups(b.id)} {
		if got, _ := r.Do("EXISTS", k); got != "0" {
			t.Errorf("%s exists after b left", k)
		}
	}
	if st := b.Status(); st.State != StateClosed {
		t.Errorf("b's state = %v, want closed", st.State)
	}
	same(t, nodes[:1], gateway.Call{Method: "isUidOnline", UID: "ub"}, false)
	same(t, nodes[:1], gateway.Call{Method: "getAllClientIdCount"}, 0)
}

// TestRedisRestartUnderLoad stops Redis while clients are pushed to:
// local delivery never stops, cross-node calls fail with ErrUnavailable
// and resume when Redis is back, and no goroutine is left behind.
func TestRedisRestartUnderLoad(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t.Run("restart", func(t *testing.T) { redisRestart(t) })
}

func redisRestart(t *testing.T) {
	r := testutil.StartRedis(t)
	nodes := startCluster(t, 2, nil, r.Addr)
	a, b := nodes[0], nodes[1]
	pa, ida := a.connect(t)
	pb, idb := b.connect(t)

	// Readers count what each client gets.
	var gotLocal, gotRemote atomic.Int64
	var wg sync.WaitGroup
	for _, x := range []struct {
		p interface {
			ReadErr(time.Duration) (string, error)
		}
		n *atomic.Int64
	}{{pa, &gotLocal}, {pb, &gotRemote}} {
		wg.Go(func() {
			for {
				if _, err := x.p.ReadErr(3 * time.Second); err != nil {
					return
				}
				x.n.Add(1)
			}
		})
	}
	// The load: a's caller pushes to its own client and to b's, every 5ms,
	// for a bounded time.
	stop := make(chan struct{})
	var unavailable, otherErr atomic.Int64
	var lastErr atomic.Value
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case <-stop:
				return
			case <-deadline:
				return
			case <-tick.C:
			}
			if _, err := a.Call(gateway.Call{Method: "sendToClient", ClientID: ida, Data: data("l")}); err != nil {
				otherErr.Add(1)
				lastErr.Store(err.Error())
			}
			_, err := a.Call(gateway.Call{Method: "sendToClient", ClientID: idb, Data: data("r")})
			switch {
			case errors.Is(err, ErrUnavailable):
				unavailable.Add(1)
				if !strings.HasPrefix(err.Error(), "cluster unavailable: ") {
					lastErr.Store("bad text: " + err.Error())
					otherErr.Add(1)
				}
			case err != nil:
				otherErr.Add(1)
				lastErr.Store(err.Error())
			}
		}
	})
	waitFor(t, 5*time.Second, "remote deliveries", func() bool { return gotRemote.Load() > 10 })

	r.Stop()
	waitFor(t, 5*time.Second, "a to notice Redis is down", func() bool { return a.Status().State == StateDown })
	local0 := gotLocal.Load()
	un0 := unavailable.Load()
	waitFor(t, 3*time.Second, "cross-node calls to fail with ErrUnavailable", func() bool {
		return unavailable.Load() > un0+10
	})
	if gotLocal.Load()-local0 < 10 {
		t.Errorf("local deliveries while Redis was down: %d, want ≥ 10", gotLocal.Load()-local0)
	}
	if st := a.Status(); st.Err == "" {
		t.Errorf("status while down has no error: %+v", st)
	}

	r.Start()
	waitFor(t, 10*time.Second, "both nodes up again", func() bool {
		return a.Status().State == StateUp && b.Status().State == StateUp
	})
	remote0 := gotRemote.Load()
	waitFor(t, 5*time.Second, "cross-node delivery to resume", func() bool { return gotRemote.Load() > remote0+10 })
	// The index is rewritten: Redis came back empty.
	a.call(t, gateway.Call{Method: "bindUid", ClientID: idb, UID: "ub"})
	waitFor(t, 5*time.Second, "b's index entries back", func() bool {
		got, _ := r.Do("SMEMBERS", a.k.uid("ub"))
		return got == b.id
	})
	close(stop)
	if n := otherErr.Load(); n > 0 {
		t.Errorf("%d calls failed with an error other than ErrUnavailable; last: %v", n, lastErr.Load())
	}
	pa.Close()
	pb.Close()
	wg.Wait()
	t.Logf("local deliveries %d, remote %d, unavailable answers %d", gotLocal.Load(), gotRemote.Load(), unavailable.Load())
}
