package cluster

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/internal/testutil"
)

// TestEveryMethodAcrossNodes runs every API method from a node that does
// not hold the target, and checks deliveries on real WebSocket clients
// and answers on every node.
func TestEveryMethodAcrossNodes(t *testing.T) {
	r := testutil.StartRedis(t)
	nodes := startCluster(t, 3, nil, r.Addr)
	a, b, c := nodes[0], nodes[1], nodes[2]
	pa, ida := a.connect(t)
	pb1, idb1 := b.connect(t)
	pb2, idb2 := b.connect(t)
	pc, idc := c.connect(t)
	all := []string{ida, idb1, idb2, idc}
	slices.Sort(all)

	// Client methods, called from a node that does not hold the client.
	a.call(t, gateway.Call{Method: "sendToClient", ClientID: idb1, Data: data("hello b1")})
	expect(t, pb1, "hello b1")
	if got := a.call(t, gateway.Call{Method: "bindUid", ClientID: idb1, UID: "u1"}); got != true {
		t.Fatalf("bindUid = %v, want true", got)
	}
	c.call(t, gateway.Call{Method: "bindUid", ClientID: ida, UID: "u2"})
	if got := a.call(t, gateway.Call{Method: "joinGroup", ClientID: idb2, Group: "g"}); got != true {
		t.Fatalf("joinGroup = %v, want true", got)
	}
	a.call(t, gateway.Call{Method: "joinGroup", ClientID: idc, Groups: []string{"g", "h"}})
	c.call(t, gateway.Call{Method: "setSession", ClientID: idb1, Session: gateway.Session{"k": "v"}})
	a.call(t, gateway.Call{Method: "updateSession", ClientID: idb1, Session: gateway.Session{"n": 1.0}})
	same(t, nodes, gateway.Call{Method: "getSession", ClientID: idb1}, gateway.Session{"k": "v", "n": 1.0})
	same(t, nodes, gateway.Call{Method: "isOnline", ClientID: idb1}, true)
	same(t, nodes, gateway.Call{Method: "getUidByClientId", ClientID: idb1}, "u1")
	same(t, nodes, gateway.Call{Method: "getUidByClientId", ClientID: idb2}, nil)

	// Sends by uid and group, from nodes that hold no member.
	c.call(t, gateway.Call{Method: "sendToUid", UID: "u1", Data: data("to u1")})
	expect(t, pb1, "to u1")
	b.call(t, gateway.Call{Method: "sendToUid", UIDs: []string{"u1", "u2"}, Data: data("to u1 u2")})
	expect(t, pb1, "to u1 u2")
	expect(t, pa, "to u1 u2")
	a.call(t, gateway.Call{Method: "sendToGroup", Group: "g", Data: data("to g")})
	expect(t, pb2, "to g")
	expect(t, pc, "to g")
	a.call(t, gateway.Call{Method: "sendToGroup", Groups: []string{"g", "h"}, Exclude: []string{idb2}, Data: data("to g h")})
	expect(t, pc, "to g h") // once, though in both groups
	a.call(t, gateway.Call{Method: "sendToAll", Data: data("to all")})
	for _, p := range []*gatewaytest.Peer{pa, pb1, pb2, pc} {
		expect(t, p, "to all")
	}
	c.call(t, gateway.Call{Method: "sendToAll", ClientIDs: []string{idb2, ida}, Exclude: []string{ida}, Data: data("only")})
	expect(t, pb2, "only")

	// Counts and lists agree on every node.
	same(t, nodes, gateway.Call{Method: "getAllClientIdCount"}, 4)
	same(t, nodes, gateway.Call{Method: "getAllClientIdList"}, all)
	same(t, nodes, gateway.Call{Method: "getAllUidList"}, []string{"u1", "u2"})
	same(t, nodes, gateway.Call{Method: "getAllUidCount"}, 2)
	same(t, nodes, gateway.Call{Method: "isUidOnline", UID: "u1"}, true)
	same(t, nodes, gateway.Call{Method: "isUidOnline", UID: "nobody"}, false)
	same(t, nodes, gateway.Call{Method: "getClientIdByUid", UID: "u1"}, []string{idb1})
	same(t, nodes, gateway.Call{Method: "getAllGroupIdList"}, []string{"g", "h"})
	gmembers := []string{idb2, idc}
	slices.Sort(gmembers)
	same(t, nodes, gateway.Call{Method: "getClientIdListByGroup", Group: "g"}, gmembers)
	same(t, nodes, gateway.Call{Method: "getClientIdCountByGroup", Group: "g"}, 2)
	same(t, nodes, gateway.Call{Method: "getUidListByGroup", Group: "g"}, []string{})
	b.call(t, gateway.Call{Method: "bindUid", ClientID: idc, UID: "u1"}) // u1 on two nodes
	same(t, nodes, gateway.Call{Method: "getUidListByGroup", Group: "g"}, []string{"u1"})
	same(t, nodes, gateway.Call{Method: "getUidCountByGroup", Group: "g"}, 1)
	same(t, nodes, gateway.Call{Method: "getAllUidCount"}, 2)
	wantU1 := []string{idb1, idc}
	slices.Sort(wantU1)
	same(t, nodes, gateway.Call{Method: "getClientIdByUid", UID: "u1"}, wantU1)
	sessions := map[string]gateway.Session{ida: {}, idb1: {"k": "v", "n": 1.0}, idb2: {}, idc: {}}
	same(t, nodes, gateway.Call{Method: "getAllClientSessions"}, sessions)
	same(t, nodes, gateway.Call{Method: "getClientSessionsByGroup", Group: "h"}, map[string]gateway.Session{idc: {}})

	// Undo: leave, unbind, ungroup.
	if got := a.call(t, gateway.Call{Method: "leaveGroup", ClientID: idc, Group: "h"}); got != true {
		t.Fatalf("leaveGroup = %v, want true", got)
	}
	same(t, nodes, gateway.Call{Method: "getAllGroupIdList"}, []string{"g"})
	if got := a.call(t, gateway.Call{Method: "unbindUid", ClientID: idc, UID: "u1"}); got != true {
		t.Fatalf("unbindUid = %v, want true", got)
	}
	same(t, nodes, gateway.Call{Method: "getClientIdByUid", UID: "u1"}, []string{idb1})
	if got := a.call(t, gateway.Call{Method: "ungroup", Group: "g"}); got != 2 {
		t.Fatalf("ungroup = %v, want 2", got)
	}
	same(t, nodes, gateway.Call{Method: "getAllGroupIdList"}, []string{})

	// Errors travel with their kind.
	_, err := a.Call(gateway.Call{Method: "setSession", ClientID: idb1})
	if !errors.Is(err, gateway.ErrBadCall) {
		t.Errorf("setSession without session: err = %v, want ErrBadCall", err)
	}
	gone := idb1[:12] + "ffffffff"
	_, err = a.Call(gateway.Call{Method: "sendToClient", ClientID: gone, Data: data("x")})
	if !errors.Is(err, gateway.ErrClientNotFound) {
		t.Errorf("sendToClient to an unknown client of b: err = %v, want ErrClientNotFound", err)
	}
	same(t, nodes, gateway.Call{Method: "isOnline", ClientID: gone}, false)
	same(t, nodes, gateway.Call{Method: "isOnline", ClientID: "0a0a0a0a0b0b00000001"}, false) // no such node

	// closeClient and destroyClient on another node.
	a.call(t, gateway.Call{Method: "closeClient", ClientID: idc, Data: data("bye")})
	expect(t, pc, "bye")
	if _, err := pc.ReadErr(5 * time.Second); err == nil {
		t.Fatal("client c still open after closeClient")
	}
	c.call(t, gateway.Call{Method: "destroyClient", ClientID: idb2})
	if _, err := pb2.ReadErr(5 * time.Second); err == nil {
		t.Fatal("client b2 still open after destroyClient")
	}
	waitFor(t, 5*time.Second, "two clients gone", func() bool {
		n, err := a.Call(gateway.Call{Method: "getAllClientIdCount"})
		return err == nil && n == 2
	})
	same(t, nodes, gateway.Call{Method: "getAllClientIdList"}, sortedIDs(ida, idb1))
}

func sortedIDs(ids ...string) []string {
	slices.Sort(ids)
	return ids
}
