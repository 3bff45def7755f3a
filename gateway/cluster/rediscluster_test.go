package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/internal/testutil"
)

// TestRedisCluster runs three nodes on a Redis Cluster of three masters:
// keys spread over the masters' slots, channels are sharded (SSUBSCRIBE,
// SPUBLISH), and calls, index, offline messages and the push stream work.
func TestRedisCluster(t *testing.T) {
	rc := testutil.StartRedisCluster(t)
	nodes := startCluster(t, 3, func(c *Config) {
		c.Offline = OfflineConfig{MaxPerUID: 10, TTL: time.Minute}
		c.PushStream = "push"
	}, rc.Addrs...)
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, tn := range nodes {
		if !tn.sharded.Load() {
			t.Fatalf("node %s does not use sharded pub/sub on a Redis Cluster", tn.id)
		}
	}
	pb, idb := b.connect(t)
	pc, idc := c.connect(t)

	a.call(t, gateway.Call{Method: "sendToClient", ClientID: idb, Data: data("direct")})
	expect(t, pb, "direct")
	var users []string
	for i := range 20 { // uids and groups spread over the slots
		u := "user" + msg(i)
		users = append(users, u)
		a.call(t, gateway.Call{Method: "sendToUid", UID: u, Data: data("kept " + u)})
	}
	for _, u := range users {
		a.call(t, gateway.Call{Method: "bindUid", ClientID: idc, UID: u})
		expect(t, pc, "kept "+u)
	}
	b.call(t, gateway.Call{Method: "joinGroup", ClientID: idb, Groups: users})
	a.call(t, gateway.Call{Method: "sendToUid", UID: users[19], Data: data("live")})
	expect(t, pc, "live")
	a.call(t, gateway.Call{Method: "sendToGroup", Groups: users, Data: data("group")})
	expect(t, pb, "group")
	a.call(t, gateway.Call{Method: "sendToAll", Data: data("all")})
	expect(t, pb, "all")
	expect(t, pc, "all")
	same(t, nodes, gateway.Call{Method: "getAllClientIdCount"}, 2)
	same(t, nodes, gateway.Call{Method: "getAllGroupIdList"}, users)
	same(t, nodes, gateway.Call{Method: "isUidOnline", UID: users[19]}, true)
	// The group exists once a consumer has started (it is made with $:
	// entries added before the first node started are not applied).
	owner := streamOwner(t, rc, "push")
	waitFor(t, 5*time.Second, "the consumer group", func() bool {
		got, err := owner.Do("XINFO", "GROUPS", "push")
		return err == nil && strings.Contains(got, "consumers")
	})
	if _, err := rc.Nodes[0].Do("XADD", "push", "*", "call", `{"method":"sendToClient","client_id":"`+idb+`","data":"streamed"}`); err != nil {
		// XADD may be redirected (MOVED) when the stream's slot is elsewhere.
		for _, r := range rc.Nodes[1:] {
			if _, err = r.Do("XADD", "push", "*", "call", `{"method":"sendToClient","client_id":"`+idb+`","data":"streamed"}`); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("XADD: %v", err)
		}
	}
	expect(t, pb, "streamed")

	// Keys and shard channels live on more than one master.
	withKeys, withChannels := 0, 0
	for _, r := range rc.Nodes {
		if n, _ := r.Do("DBSIZE"); n != "0" {
			withKeys++
		}
		if ch, _ := r.Do("PUBSUB", "SHARDCHANNELS", "t:*"); ch != "" {
			withChannels++
		}
	}
	if withKeys < 2 {
		t.Errorf("keys on %d masters, want them spread over at least 2", withKeys)
	}
	if withChannels < 2 {
		t.Errorf("shard channels on %d masters, want at least 2 (3 nodes' inboxes and t:all)", withChannels)
	}
	var all []string
	for _, r := range rc.Nodes {
		ch, _ := r.Do("PUBSUB", "SHARDCHANNELS", "t:*")
		all = append(all, strings.Split(ch, "\n")...)
	}
	for _, want := range []string{a.k.all(), a.k.inbox(a.id), a.k.inbox(b.id), a.k.inbox(c.id)} {
		if !strings.Contains(strings.Join(all, " "), want) {
			t.Errorf("shard channel %s not subscribed on any master (have %v)", want, all)
		}
	}
	t.Logf("keys on %d masters, shard channels on %d", withKeys, withChannels)
}

// streamOwner returns the master that holds key's slot.
func streamOwner(t *testing.T, rc *testutil.RedisCluster, key string) *testutil.Redis {
	t.Helper()
	for _, r := range rc.Nodes {
		if _, err := r.Do("TYPE", key); err == nil {
			return r
		}
	}
	t.Fatalf("no master answers for %s", key)
	return nil
}
