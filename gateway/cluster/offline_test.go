package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/internal/testutil"
)

// TestOfflineMessages: messages for a uid offline everywhere are kept,
// and the next bind, on another node, gets them first, in order, once;
// none after the ttl.
func TestOfflineMessages(t *testing.T) {
	r := testutil.StartRedis(t)
	nodes := startCluster(t, 3, func(c *Config) {
		c.Offline = OfflineConfig{MaxPerUID: 5, TTL: 700 * time.Millisecond}
	}, r.Addr)
	a, b, c := nodes[0], nodes[1], nodes[2]

	t.Run("once in order on another node", func(t *testing.T) {
		for i := range 7 { // 7 sent, the last 5 kept
			a.call(t, gateway.Call{Method: "sendToUid", UID: "off", Data: data(msg(i))})
		}
		if got := a.Stats().OfflineStored; got != 7 {
			t.Errorf("OfflineStored = %d, want 7", got)
		}
		p, id := c.connect(t)
		b.call(t, gateway.Call{Method: "bindUid", ClientID: id, UID: "off"})
		for i := 2; i < 7; i++ {
			expect(t, p, msg(i))
		}
		a.call(t, gateway.Call{Method: "sendToUid", UID: "off", Data: data("live")})
		expect(t, p, "live")
		// A second bind, anywhere, gets nothing more.
		p2, id2 := b.connect(t)
		a.call(t, gateway.Call{Method: "bindUid", ClientID: id2, UID: "off"})
		expectNothing(t, p2, 300*time.Millisecond)
		expectNothing(t, p, 10*time.Millisecond)
	})

	t.Run("none after ttl", func(t *testing.T) {
		a.call(t, gateway.Call{Method: "sendToUid", UID: "late", Data: data("stale")})
		time.Sleep(900 * time.Millisecond) // past the 700ms ttl
		a.call(t, gateway.Call{Method: "sendToUid", UID: "late", Data: data("fresh")})
		p, id := c.connect(t)
		a.call(t, gateway.Call{Method: "bindUid", ClientID: id, UID: "late"})
		expect(t, p, "fresh")
		expectNothing(t, p, 300*time.Millisecond)
	})

	t.Run("kept after the last client closes", func(t *testing.T) {
		p, id := b.connect(t)
		c.call(t, gateway.Call{Method: "bindUid", ClientID: id, UID: "gone"})
		p.Close()
		waitFor(t, 5*time.Second, "uid gone offline", func() bool {
			on, err := a.Call(gateway.Call{Method: "isUidOnline", UID: "gone"})
			return err == nil && on == false
		})
		a.call(t, gateway.Call{Method: "sendToUid", UID: "gone", Data: data("later")})
		p2, id2 := a.connect(t)
		c.call(t, gateway.Call{Method: "bindUid", ClientID: id2, UID: "gone"})
		expect(t, p2, "later")
	})

	t.Run("order kept while a bind drains", func(t *testing.T) {
		// A caller keeps sending to the uid while it is bound: every
		// message arrives once, and the kept ones come first.
		for i := range 3 {
			a.call(t, gateway.Call{Method: "sendToUid", UID: "busy", Data: data(msg(i))})
		}
		p, id := c.connect(t)
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 3; i < 40; i++ {
				a.Call(gateway.Call{Method: "sendToUid", UID: "busy", Data: data(msg(i))})
			}
		})
		b.call(t, gateway.Call{Method: "bindUid", ClientID: id, UID: "busy"})
		wg.Wait()
		var got []string
		for {
			s, err := p.ReadErr(300 * time.Millisecond)
			if err != nil {
				break
			}
			got = append(got, s)
		}
		// Messages sent before the bind marked the uid online were kept
		// (the last 5: max_per_uid) and come first; those after come
		// live. So what arrives is the sequence's tail: in order, none
		// twice, none missing from the first kept one to the last sent.
		if len(got) < 5 || got[len(got)-1] != msg(39) {
			t.Fatalf("got %v, want at least the 5 kept and everything up to m039", got)
		}
		var first int
		fmt.Sscanf(got[0], "m%d", &first)
		for i, s := range got {
			if s != msg(first+i) {
				t.Fatalf("message %d is %s, want %s: out of order, repeated or lost in %v", i, s, msg(first+i), got)
			}
		}
		kept, _ := r.Do("LLEN", a.k.offline("busy"))
		t.Logf("received %d of 40 (the rest were sent before the client was bound and are %s kept)", len(got), kept)
	})
}

// TestPushStream: entries XADDed to the stream are applied exactly once
// with three consumers; a consumer dying between apply and ack has its
// entry claimed and applied by another; a bad entry is dead-lettered.
func TestPushStream(t *testing.T) {
	r := testutil.StartRedis(t)
	var (
		hookMu  sync.Mutex
		crashed string
		crashID string
	)
	crashOnce := make(chan string, 1)
	// Node a holds the client and reads no stream, so that killing a
	// consumer never takes the client with it; b, c and d consume.
	all := startCluster(t, 4, func(c *Config) {
		if c.Node != nodeAddr(0) {
			c.PushStream = "push"
		}
	}, r.Addr)
	a, nodes := all[0], all[1:]
	for _, tn := range nodes {
		tn.beforeAck = func(id string) bool {
			hookMu.Lock()
			defer hookMu.Unlock()
			if crashed == "" && crashID != "" && id == crashID {
				crashed = tn.id
				crashOnce <- tn.id
				return false
			}
			return crashed != tn.id // a crashed node acknowledges nothing more
		}
	}
	p, id := a.connect(t)
	waitFor(t, 5*time.Second, "the consumer group", func() bool {
		got, err := r.Do("XINFO", "GROUPS", "push")
		return err == nil && strings.Contains(got, "t")
	})
	add := func(call string) string {
		t.Helper()
		got, err := r.Do("XADD", "push", "*", "call", call)
		if err != nil {
			t.Fatalf("XADD: %v", err)
		}
		return got
	}
	push := func(m string) string {
		b, _ := json.Marshal(map[string]any{"method": "sendToClient", "client_id": id, "data": m})
		return add(string(b))
	}

	t.Run("exactly once", func(t *testing.T) {
		const n = 60
		for i := range n {
			push(msg(i))
		}
		seen := make(map[string]int)
		for range n {
			seen[p.Read()]++
		}
		for i := range n {
			if seen[msg(i)] != 1 {
				t.Errorf("%s delivered %d times, want once", msg(i), seen[msg(i)])
			}
		}
		// (No read for "nothing more": a gorilla connection is unusable
		// after a read times out. The counters below prove it.)
		waitFor(t, 5*time.Second, "no entry pending", func() bool {
			got, _ := r.Do("XPENDING", "push", "t")
			return strings.HasPrefix(got, "0\n")
		})
		var applied int64
		consumers := 0
		// The counter moves just after the ack.
		waitFor(t, 5*time.Second, "the applied counters", func() bool {
			applied, consumers = 0, 0
			for _, tn := range nodes {
				applied += tn.Stats().StreamApplied
				if tn.Stats().StreamApplied > 0 {
					consumers++
				}
			}
			return applied >= n
		})
		if applied != n {
			t.Errorf("applied %d, want %d", applied, n)
		}
		t.Logf("%d consumers shared %d entries", consumers, n)
	})

	t.Run("bad entries dead-lettered", func(t *testing.T) {
		bad := []string{
			`{"method":"sendToClient"`,        // malformed
			`{"method":"noSuchMethod"}`,       // unknown method
			`{"method":"sendToUid","uid":""}`, // missing arguments
			`{"method":"sendToAll","data":"x","extra":1}`,
		}
		var ids []string
		for _, b := range bad {
			ids = append(ids, add(b))
		}
		waitFor(t, 5*time.Second, "four dead letters", func() bool {
			got, _ := r.Do("XLEN", "push:dead")
			return got == "4"
		})
		got, _ := r.Do("XRANGE", "push:dead", "-", "+")
		for i, b := range bad {
			if !strings.Contains(got, b) || !strings.Contains(got, ids[i]) {
				t.Errorf("dead-letter stream lacks entry %s %s:\n%s", ids[i], b, got)
			}
		}
		if !strings.Contains(got, "unknown method") || !strings.Contains(got, "bad JSON") {
			t.Errorf("dead letters lack their errors:\n%s", got)
		}
		waitFor(t, 5*time.Second, "no entry pending", func() bool {
			got, _ := r.Do("XPENDING", "push", "t")
			return strings.HasPrefix(got, "0\n")
		})
	})

	t.Run("dead consumer's entry claimed", func(t *testing.T) {
		hookMu.Lock()
		crashID = push("crash")
		hookMu.Unlock()
		var victim string
		select {
		case victim = <-crashOnce:
		case <-time.After(5 * time.Second):
			t.Fatal("no consumer read the entry")
		}
		expect(t, p, "crash") // applied by the node that then died before its ack
		for _, tn := range nodes {
			if tn.id == victim {
				tn.kill()
			}
		}
		// Another node claims it after node_ttl of idleness and applies
		// it again: at least once across a crash.
		start := time.Now()
		s, err := p.ReadErr(nodes[0].cfg.NodeTTL + 3*time.Second)
		if err != nil || s != "crash" {
			t.Fatalf("after the crash got %q, %v; want the entry applied again", s, err)
		}
		t.Logf("claimed and applied %v after the crash (node_ttl %v)", time.Since(start).Round(time.Millisecond), nodes[0].cfg.NodeTTL)
		waitFor(t, 5*time.Second, "no entry pending", func() bool {
			got, _ := r.Do("XPENDING", "push", "t")
			return strings.HasPrefix(got, "0\n")
		})
	})
}

// TestEpoch: every start of a node gets a new epoch.
func TestEpoch(t *testing.T) {
	r := testutil.StartRedis(t)
	cfg := testConfig(t, 0, r.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var prev uint64
	for i := range 3 {
		e, err := Epoch(ctx, cfg)
		if err != nil {
			t.Fatalf("Epoch: %v", err)
		}
		if e != prev+1 {
			t.Fatalf("start %d: epoch %d, want %d", i, e, prev+1)
		}
		prev = e
	}
	if got, want := FirstCounter(3), uint32(3)<<24; got != want {
		t.Errorf("FirstCounter(3) = %#x, want %#x", got, want)
	}
	cfg.Redis.Addrs = []string{testutil.FreeAddr(t)}
	if _, err := Epoch(ctx, cfg); err == nil || !strings.HasPrefix(err.Error(), "cluster unavailable") {
		t.Errorf("Epoch with Redis down: %v, want cluster unavailable", err)
	}
}
