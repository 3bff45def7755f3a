package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/internal/testutil"
)

// closer is a hub Handler that records events and tells the node of
// every close, as cmd's wiring does until the hub reports membership
// changes itself.
type closer struct {
	*gatewaytest.Recorder
	node atomic.Pointer[Node]
}

func (h *closer) OnClose(c gateway.ClientInfo) {
	if n := h.node.Load(); n != nil {
		n.ClientClosed(c)
	}
	h.Recorder.OnClose(c)
}

// testNode is a real hub served on loopback, joined to a cluster.
type testNode struct {
	*Node
	env *gatewaytest.Env
}

// nodeAddr is the i-th test node's address (only its bytes matter: the
// cluster names nodes by them).
func nodeAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, 0, byte(i + 1)}), 2900)
}

// testConfig is a config for node i of a cluster on redis addrs.
func testConfig(t testing.TB, i int, addrs ...string) Config {
	return Config{
		Node:        nodeAddr(i),
		Redis:       RedisConfig{Addrs: addrs},
		Prefix:      "t",
		NodeTTL:     2 * time.Second,
		CallTimeout: 2 * time.Second,
		Logger:      testutil.Logger(t),
	}
}

// startNode starts a hub served on loopback and a node joining it to
// cfg's cluster, and waits until the node is up. Both stop when the test
// ends (the node first, gracefully).
func startNode(t testing.TB, cfg Config) *testNode {
	t.Helper()
	h := &closer{Recorder: &gatewaytest.Recorder{}}
	env := gatewaytest.New(t, gateway.Options{Node: cfg.Node, Handler: h, Logger: cfg.Logger})
	env.Events = h.Recorder
	n, err := New(env.Hub, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.node.Store(n)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { n.Run(ctx) })
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := n.Shutdown(sctx); err != nil {
			t.Errorf("node %s: Shutdown: %v", n.id, err)
		}
		cancel()
		wg.Wait()
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := n.WaitUp(wctx); err != nil {
		t.Fatalf("node %s not up: %v (%+v)", n.id, err, n.Status())
	}
	return &testNode{Node: n, env: env}
}

// startCluster starts k nodes on redis addrs; mod, if not nil, changes
// each node's config.
func startCluster(t testing.TB, k int, mod func(*Config), addrs ...string) []*testNode {
	t.Helper()
	var nodes []*testNode
	for i := range k {
		cfg := testConfig(t, i, addrs...)
		if mod != nil {
			mod(&cfg)
		}
		nodes = append(nodes, startNode(t, cfg))
	}
	return nodes
}

// connect connects a WebSocket client to the node and returns it with
// its id.
func (tn *testNode) connect(t testing.TB) (*gatewaytest.Peer, string) {
	t.Helper()
	return tn.env.Connect(t, "websocket")
}

// call runs c on the node and fails the test on error.
func (tn *testNode) call(t testing.TB, c gateway.Call) any {
	t.Helper()
	res, err := tn.Call(c)
	if err != nil {
		t.Fatalf("node %s: %s: %v", tn.id, c.Method, err)
	}
	return res
}

// expect reads the next message of p and fails unless it is want.
func expect(t testing.TB, p *gatewaytest.Peer, want string) {
	t.Helper()
	if got := p.Read(); got != want {
		t.Fatalf("peer %s got %q, want %q", p.ID, got, want)
	}
}

// expectNothing fails if p gets a message within wait.
func expectNothing(t testing.TB, p *gatewaytest.Peer, wait time.Duration) {
	t.Helper()
	if got, err := p.ReadErr(wait); err == nil {
		t.Fatalf("peer %s got %q, want nothing", p.ID, got)
	}
}

// same fails unless every node answers c with want.
func same(t testing.TB, nodes []*testNode, c gateway.Call, want any) {
	t.Helper()
	for _, tn := range nodes {
		got := tn.call(t, c)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("node %s: %s(%s%s) = %#v, want %#v", tn.id, c.Method, c.Group, c.UID, got, want)
		}
	}
}

// waitFor polls cond every 20ms until it holds, failing after wait.
func waitFor(t testing.TB, wait time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > wait {
			t.Fatalf("timed out after %v waiting for %s", wait, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func data(s string) gateway.Data { return gateway.Data(s) }

func msg(i int) string { return fmt.Sprintf("m%03d", i) }
