package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/internal/testutil"
)

func TestClientIDs(t *testing.T) {
	node := netip.MustParseAddrPort("10.1.2.3:2900")
	th := gatewaytest.New(t, gateway.Options{Node: node})
	seen := make(map[string]bool)
	for i := range 20 {
		kind := "websocket"
		if i%2 == 1 {
			kind = "text"
		}
		_, id := th.Connect(t, kind)
		if seen[id] {
			t.Fatalf("id %s given twice", id)
		}
		seen[id] = true
		gotNode, counter, err := gateway.ParseClientID(id)
		if err != nil {
			t.Fatalf("ParseClientID(%q): %v", id, err)
		}
		if gotNode != node || counter != uint32(i+1) {
			t.Errorf("ParseClientID(%q) = %v, %d; want %v, %d", id, gotNode, counter, node, i+1)
		}
	}
	if id := "0a0102030b5400000001"; !seen[id] {
		t.Errorf("first id is not %s (GatewayWorker's layout): %v", id, seen)
	}
	for _, bad := range []string{"", "7f000001", "zz0000010b5600000001", "7f0000010b56000000011"} {
		if _, _, err := gateway.ParseClientID(bad); !errors.Is(err, gateway.ErrBadClientID) {
			t.Errorf("ParseClientID(%q) error = %v, want ErrBadClientID", bad, err)
		}
	}
}

func TestIDCounterWrapSkipsIDsInUse(t *testing.T) {
	var opts gateway.Options
	gateway.SetFirstCounter(&opts, 0xFFFFFFFE)
	th := gatewaytest.New(t, opts)
	_, a := th.Connect(t, "text") // ...fffffffe
	_, b := th.Connect(t, "text") // ...ffffffff
	_, c := th.Connect(t, "text") // wraps past 0, never an id, to ...00000001
	if !strings.HasSuffix(a, "fffffffe") || !strings.HasSuffix(b, "ffffffff") || !strings.HasSuffix(c, "00000001") {
		t.Fatalf("ids %s %s %s do not wrap as expected", a, b, c)
	}
	// Wrap again, with the counter at a value still in use.
	th.Hub.SetNextCounter(0xFFFFFFFE)
	_, d := th.Connect(t, "text")
	if d == a || d == b || d == c || !strings.HasSuffix(d, "00000002") {
		t.Fatalf("after the wrap got %s, want the first counter in use by nobody, 0 skipped (…00000002)", d)
	}
	// A first counter of 0 is 1.
	th.Hub.SetNextCounter(0)
	_, e := th.Connect(t, "text")
	if !strings.HasSuffix(e, "00000003") {
		t.Fatalf("from counter 0 got %s, want …00000003 (0 skipped, 1 and 2 in use)", e)
	}
}

func TestAPI(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{})
	p1, id1 := th.Connect(t, "websocket")
	p2, id2 := th.Connect(t, "text")
	p3, id3 := th.Connect(t, "websocket")
	peers := map[string]*gatewaytest.Peer{id1: p1, id2: p2, id3: p3}

	call := func(c gateway.Call) any {
		t.Helper()
		got, err := th.Hub.Call(c)
		if err != nil {
			t.Fatalf("Call(%+v): %v", c, err)
		}
		return got
	}
	// expect reads one message on each listed client and checks that the
	// others got nothing (a marker sent to all afterwards arrives first).
	expect := func(data string, ids ...string) {
		t.Helper()
		want := make(map[string]bool)
		for _, id := range ids {
			want[id] = true
		}
		marker := fmt.Sprintf("marker-%d", time.Now().UnixNano())
		th.Hub.SendToAll([]byte(marker), nil, nil)
		for id, p := range peers {
			got := p.Read()
			if want[id] {
				if got != data {
					t.Errorf("client %s got %q, want %q", id, got, data)
				}
				got = p.Read()
			}
			if got != marker {
				t.Errorf("client %s got %q, want only the marker", id, got)
			}
		}
	}

	call(gateway.Call{Method: "sendToAll", Data: gateway.Data("all")})
	expect("all", id1, id2, id3)
	call(gateway.Call{Method: "sendToAll", Data: gateway.Data("some"), ClientIDs: []string{id1, id3, id3}})
	expect("some", id1, id3)
	call(gateway.Call{Method: "sendToAll", Data: gateway.Data("except"), Exclude: []string{id2}})
	expect("except", id1, id3)
	call(gateway.Call{Method: "sendToClient", ClientID: id2, Data: gateway.Data("to you")})
	expect("to you", id2)

	// Groups.
	for _, c := range []gateway.Call{
		{Method: "joinGroup", ClientID: id1, Group: "room"},
		{Method: "joinGroup", ClientID: id2, Groups: []string{"room", "lobby"}},
		{Method: "joinGroup", ClientID: id3, Group: "lobby"},
	} {
		if got := call(c); got != true {
			t.Errorf("%+v = %v, want true (changed)", c, got)
		}
	}
	if got := call(gateway.Call{Method: "joinGroup", ClientID: id1, Group: "room"}); got != false {
		t.Errorf("joining twice = %v, want false", got)
	}
	call(gateway.Call{Method: "sendToGroup", Group: "room", Data: gateway.Data("room")})
	expect("room", id1, id2)
	call(gateway.Call{Method: "sendToGroup", Groups: []string{"room", "lobby"}, Data: gateway.Data("both"), Exclude: []string{id1}})
	expect("both", id2, id3) // id2 is in both groups and gets it once
	checkEq(t, "getAllGroupIdList", call(gateway.Call{Method: "getAllGroupIdList"}), []string{"lobby", "room"})
	checkEq(t, "getClientIdCountByGroup", call(gateway.Call{Method: "getClientIdCountByGroup", Group: "room"}), 2)
	checkEq(t, "getClientIdListByGroup", call(gateway.Call{Method: "getClientIdListByGroup", Group: "lobby"}), sorted(id2, id3))
	checkEq(t, "leaveGroup", call(gateway.Call{Method: "leaveGroup", ClientID: id2, Group: "room"}), true)
	checkEq(t, "leaveGroup again", call(gateway.Call{Method: "leaveGroup", ClientID: id2, Group: "room"}), false)
	checkEq(t, "room after leave", call(gateway.Call{Method: "getClientIdListByGroup", Group: "room"}), []string{id1})
	for id, want := range map[string][]string{id1: {"room"}, id2: {"lobby"}, id3: {"lobby"}} {
		got, err := th.Hub.GetGroupsByClientID(id)
		if err != nil {
			t.Fatal(err)
		}
		checkEq(t, "GetGroupsByClientID", got, want)
	}
	th.Hub.JoinGroup(id2, "b")
	th.Hub.JoinGroup(id2, "a")
	if got, _ := th.Hub.GetGroupsByClientID(id2); !slices.Equal(got, []string{"a", "b", "lobby"}) {
		t.Errorf("GetGroupsByClientID = %q, want sorted [a b lobby]", got)
	}
	th.Hub.Ungroup("a")
	th.Hub.LeaveGroup(id2, "b")
	if got, _ := th.Hub.GetGroupsByClientID(id2); !slices.Equal(got, []string{"lobby"}) {
		t.Errorf("GetGroupsByClientID after Ungroup and LeaveGroup = %q, want [lobby]", got)
	}
	if _, err := th.Hub.GetGroupsByClientID("7f00000100000000ffff"); !errors.Is(err, gateway.ErrClientNotFound) {
		t.Errorf("GetGroupsByClientID of a missing client: error %v, want ErrClientNotFound", err)
	}

	// Uids: one uid, many clients; binding another uid replaces.
	checkEq(t, "bindUid", call(gateway.Call{Method: "bindUid", ClientID: id1, UID: "alice"}), true)
	checkEq(t, "bindUid", call(gateway.Call{Method: "bindUid", ClientID: id3, UID: "alice"}), true)
	checkEq(t, "bindUid", call(gateway.Call{Method: "bindUid", ClientID: id2, UID: "bob"}), true)
	checkEq(t, "bindUid same", call(gateway.Call{Method: "bindUid", ClientID: id2, UID: "bob"}), false)
	checkEq(t, "getClientIdByUid", call(gateway.Call{Method: "getClientIdByUid", UID: "alice"}), sorted(id1, id3))
	checkEq(t, "getUidByClientId", call(gateway.Call{Method: "getUidByClientId", ClientID: id2}), "bob")
	checkEq(t, "isUidOnline", call(gateway.Call{Method: "isUidOnline", UID: "alice"}), true)
	checkEq(t, "isUidOnline nobody", call(gateway.Call{Method: "isUidOnline", UID: "carol"}), false)
	checkEq(t, "getAllUidList", call(gateway.Call{Method: "getAllUidList"}), []string{"alice", "bob"})
	checkEq(t, "getAllUidCount", call(gateway.Call{Method: "getAllUidCount"}), 2)
	checkEq(t, "getUidListByGroup", call(gateway.Call{Method: "getUidListByGroup", Group: "lobby"}), []string{"alice", "bob"})
	checkEq(t, "getUidCountByGroup", call(gateway.Call{Method: "getUidCountByGroup", Group: "lobby"}), 2)
	call(gateway.Call{Method: "sendToUid", UID: "alice", Data: gateway.Data("hi alice")})
	expect("hi alice", id1, id3)
	call(gateway.Call{Method: "sendToUid", UIDs: []string{"alice", "bob", "alice"}, Data: gateway.Data("hi all")})
	expect("hi all", id1, id2, id3)
	checkEq(t, "rebind", call(gateway.Call{Method: "bindUid", ClientID: id3, UID: "bob"}), true)
	checkEq(t, "alice after rebind", call(gateway.Call{Method: "getClientIdByUid", UID: "alice"}), []string{id1})
	checkEq(t, "unbindUid wrong uid", call(gateway.Call{Method: "unbindUid", ClientID: id3, UID: "alice"}), false)
	checkEq(t, "unbindUid", call(gateway.Call{Method: "unbindUid", ClientID: id3, UID: "bob"}), true)
	checkEq(t, "getUidByClientId unbound", call(gateway.Call{Method: "getUidByClientId", ClientID: id3}), nil)

	// Sessions.
	call(gateway.Call{Method: "setSession", ClientID: id1, Session: gateway.Session{"name": "Alice", "n": 1.0}})
	call(gateway.Call{Method: "updateSession", ClientID: id1, Session: gateway.Session{"n": 2.0, "room": "r1"}})
	checkEq(t, "getSession", call(gateway.Call{Method: "getSession", ClientID: id1}), gateway.Session{"name": "Alice", "n": 2.0, "room": "r1"})
	checkEq(t, "getSession empty", call(gateway.Call{Method: "getSession", ClientID: id2}), gateway.Session{})
	all := call(gateway.Call{Method: "getAllClientSessions"}).(map[string]gateway.Session)
	if len(all) != 3 || all[id1]["name"] != "Alice" {
		t.Errorf("getAllClientSessions = %v", all)
	}
	byGroup := call(gateway.Call{Method: "getClientSessionsByGroup", Group: "room"}).(map[string]gateway.Session)
	checkEq(t, "getClientSessionsByGroup", byGroup, map[string]gateway.Session{id1: {"name": "Alice", "n": 2.0, "room": "r1"}})
	// Callers get copies.
	byGroup[id1]["name"] = "changed"
	if s, _ := th.Hub.GetSession(id1); s["name"] != "Alice" {
		t.Errorf("changing a returned session changed the hub's: %v", s)
	}

	checkEq(t, "isOnline", call(gateway.Call{Method: "isOnline", ClientID: id1}), true)
	checkEq(t, "getAllClientIdCount", call(gateway.Call{Method: "getAllClientIdCount"}), 3)
	checkEq(t, "getAllClientIdList", call(gateway.Call{Method: "getAllClientIdList"}), sorted(id1, id2, id3))
	checkEq(t, "ungroup", call(gateway.Call{Method: "ungroup", Group: "lobby"}), 2)
	checkEq(t, "groups after ungroup", call(gateway.Call{Method: "getAllGroupIdList"}), []string{"room"})

	// closeClient sends the last message, then closes (1000 for WebSocket).
	call(gateway.Call{Method: "closeClient", ClientID: id3, Data: gateway.Data("bye")})
	if got := p3.Read(); got != "bye" {
		t.Errorf("last message = %q, want bye", got)
	}
	_, err := p3.ReadErr(5 * time.Second)
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("after closeClient: %v, want close 1000", err)
	}
	call(gateway.Call{Method: "closeClient", ClientID: id2, Data: gateway.Data("bye text")})
	if got := p2.Read(); got != "bye text" {
		t.Errorf("last line = %q, want bye text", got)
	}
	if _, err := p2.ReadErr(5 * time.Second); err == nil {
		t.Errorf("text client still open after closeClient")
	}
	// As telnet does on EOF: otherwise the hub waits closeWait (5 s) for
	// the client's side, as long as waitCloses waits.
	p2.Close()
	// destroyClient cuts without a close frame.
	call(gateway.Call{Method: "destroyClient", ClientID: id1})
	_, err = p1.ReadErr(5 * time.Second)
	if err == nil || websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("after destroyClient: %v, want a cut connection", err)
	}
	closes := th.Events.WaitCloses(t, 3)
	byID := map[string]gateway.ClientInfo{}
	for _, c := range closes {
		byID[c.ID] = c
	}
	if c := byID[id1]; c.UID != "alice" || c.Session["name"] != "Alice" {
		t.Errorf("OnClose for %s got uid %q session %v; want its last uid and session", id1, c.UID, c.Session)
	}
	checkEq(t, "count after closes", call(gateway.Call{Method: "getAllClientIdCount"}), 0)
	checkEq(t, "groups after closes", call(gateway.Call{Method: "getAllGroupIdList"}), []string{})
	checkEq(t, "uids after closes", call(gateway.Call{Method: "getAllUidList"}), []string{})
}

func TestCallErrors(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{})
	_, id := th.Connect(t, "text")
	missing := "7f00000100000000ffff"
	for _, tc := range []struct {
		call gateway.Call
		want error
	}{
		{gateway.Call{Method: "nope"}, gateway.ErrBadCall},
		{gateway.Call{Method: "sendToClient", Data: gateway.Data("x")}, gateway.ErrBadCall},
		{gateway.Call{Method: "sendToClient", ClientID: missing, Data: gateway.Data("x")}, gateway.ErrClientNotFound},
		{gateway.Call{Method: "sendToUid", Data: gateway.Data("x")}, gateway.ErrBadCall},
		{gateway.Call{Method: "sendToGroup", Data: gateway.Data("x")}, gateway.ErrBadCall},
		{gateway.Call{Method: "joinGroup", ClientID: id}, gateway.ErrBadCall},
		{gateway.Call{Method: "joinGroup", ClientID: missing, Group: "g"}, gateway.ErrClientNotFound},
		{gateway.Call{Method: "bindUid", ClientID: id}, gateway.ErrBadCall},
		{gateway.Call{Method: "bindUid", ClientID: missing, UID: "u"}, gateway.ErrClientNotFound},
		{gateway.Call{Method: "getSession", ClientID: missing}, gateway.ErrClientNotFound},
		{gateway.Call{Method: "setSession", ClientID: missing, Session: gateway.Session{}}, gateway.ErrClientNotFound},
		{gateway.Call{Method: "closeClient", ClientID: missing}, gateway.ErrClientNotFound},
		{gateway.Call{Method: "destroyClient", ClientID: missing}, gateway.ErrClientNotFound},
		{gateway.Call{Method: "getUidByClientId", ClientID: missing}, gateway.ErrClientNotFound},
		{gateway.Call{Method: "ungroup"}, gateway.ErrBadCall},
		{gateway.Call{Method: "sendToAll"}, gateway.ErrBadCall},                   // no data
		{gateway.Call{Method: "sendToClient", ClientID: id}, gateway.ErrBadCall},  // no data
		{gateway.Call{Method: "setSession", ClientID: id}, gateway.ErrBadCall},    // no session
		{gateway.Call{Method: "updateSession", ClientID: id}, gateway.ErrBadCall}, // no session
	} {
		if _, err := th.Hub.Call(tc.call); !errors.Is(err, tc.want) {
			t.Errorf("Call(%+v) error = %v, want %v", tc.call, err, tc.want)
		}
	}
	// Every documented method is callable.
	for _, m := range gateway.Methods() {
		if _, err := th.Hub.Call(gateway.Call{Method: m}); err != nil && !errors.Is(err, gateway.ErrBadCall) && !errors.Is(err, gateway.ErrClientNotFound) {
			t.Errorf("Call(%s) = %v", m, err)
		}
		if !gateway.KnownMethod(m) {
			t.Errorf("Methods lists %s but Call does not know it", m)
		}
	}
}

func TestDataJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"data":"hello"}`, "hello"},
		{`{"data":"line\nbreak"}`, "line\nbreak"},
		{`{"data":{"type":"chat","text":"hi"}}`, `{"type":"chat","text":"hi"}`},
		{`{"data":[1,2]}`, `[1,2]`},
		{`{"data":42}`, `42`},
		{`{"data":null}`, ``},
	} {
		var c gateway.Call
		if err := json.Unmarshal([]byte(tc.in), &c); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if string(c.Data) != tc.want {
			t.Errorf("%s: data = %q, want %q", tc.in, c.Data, tc.want)
		}
	}
}

func TestOnWebSocketConnect(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{})
	h := map[string][]string{"Cookie": {"session=s1; theme=dark"}, "X-App": {"demo"}, "Host": {"chat.example:8443"}}
	// The raw target keeps its order and escapes; Query decodes them.
	const target = "/w%73s?token=abc&room=7&q=a%2Bb+c&t=%7e"
	ws, _, err := websocket.DefaultDialer.Dial(th.WSURL+target, h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ids := th.Events.WaitConnects(t, 1)
	var req *gateway.WebSocketRequest
	th.Events.Wait(t, "websocket connect", func() bool { req = th.Events.WebSocketRequest(ids[0]); return req != nil })
	if req.Path != "/wss" || req.Query.Get("token") != "abc" || req.Query.Get("room") != "7" || req.Query.Get("q") != "a+b c" ||
		req.Cookies["session"] != "s1" || req.Cookies["theme"] != "dark" || req.Header.Get("X-App") != "demo" {
		t.Errorf("OnWebSocketConnect got %+v", req)
	}
	for _, c := range []struct{ name, got, want string }{
		{"Method", req.Method, "GET"},
		{"RequestURI", req.RequestURI, target},
		{"Proto", req.Proto, "HTTP/1.1"},
		{"Host", req.Host, "chat.example:8443"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

// connectInfos records the ClientInfo of every OnConnect, beside what
// its Recorder records.
type connectInfos struct {
	gatewaytest.Recorder
	mu    sync.Mutex
	infos map[string]gateway.ClientInfo
}

func (r *connectInfos) OnConnect(c gateway.ClientInfo) {
	r.mu.Lock()
	if r.infos == nil {
		r.infos = make(map[string]gateway.ClientInfo)
	}
	r.infos[c.ID] = c
	r.mu.Unlock()
	r.Recorder.OnConnect(c)
}

func (r *connectInfos) info(id string) gateway.ClientInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.infos[id]
}

// TestLocalAddr checks that every event tells the address the client
// connected to: the text listener's, the WebSocket server's, or the one
// an edge's HTTP server put in the request's context.
func TestLocalAddr(t *testing.T) {
	edge := netip.MustParseAddrPort("192.0.2.7:443")
	for _, tc := range []struct {
		name string
		// serve mounts the hub's WebSocket handler, as an edge would.
		serve func(http.Handler) http.Handler
		dial  func(t *testing.T, e *gatewaytest.Env) *gatewaytest.Peer
		want  func(e *gatewaytest.Env) netip.AddrPort
	}{
		{
			name: "text",
			dial: func(t *testing.T, e *gatewaytest.Env) *gatewaytest.Peer { return e.DialText(t) },
			want: func(e *gatewaytest.Env) netip.AddrPort { return netip.MustParseAddrPort(e.TextAddr) },
		},
		{
			name: "websocket",
			dial: func(t *testing.T, e *gatewaytest.Env) *gatewaytest.Peer { return e.DialWS(t) },
			want: func(e *gatewaytest.Env) netip.AddrPort {
				return e.Server.Listener.Addr().(*net.TCPAddr).AddrPort()
			},
		},
		{
			name: "websocket through an edge",
			serve: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ctx := context.WithValue(r.Context(), http.LocalAddrContextKey, net.TCPAddrFromAddrPort(edge))
					next.ServeHTTP(w, r.WithContext(ctx))
				})
			},
			dial: func(t *testing.T, e *gatewaytest.Env) *gatewaytest.Peer { return e.DialWS(t) },
			want: func(*gatewaytest.Env) netip.AddrPort { return edge },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &connectInfos{}
			hub := gateway.New(gateway.Options{Handler: rec, Logger: testutil.Logger(t)})
			var handler http.Handler = hub.WebSocketHandler(nil)
			if tc.serve != nil {
				handler = tc.serve(handler)
			}
			e := gatewaytest.Serve(t, hub, httptest.NewServer(handler))
			e.Events = &rec.Recorder
			p := tc.dial(t, e)
			id := e.Events.WaitConnects(t, 1)[0]
			if got, want := rec.info(id).LocalAddr, tc.want(e); got != want {
				t.Errorf("OnConnect: LocalAddr = %v, want %v", got, want)
			}
			p.Close()
			if got, want := e.Events.WaitCloses(t, 1)[0].LocalAddr, tc.want(e); got != want {
				t.Errorf("OnClose: LocalAddr = %v, want %v", got, want)
			}
		})
	}
}

// TestConcurrentMembership joins, leaves, binds and unbinds from many
// goroutines while clients come and go; -race checks the locking, and
// the final state must be consistent.
func TestConcurrentMembership(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{})
	var ids []string
	for range 8 {
		_, id := th.Connect(t, "text")
		ids = append(ids, id)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				id := ids[(w+i)%len(ids)]
				g := fmt.Sprintf("g%d", i%5)
				switch i % 6 {
				case 0:
					th.Hub.JoinGroup(id, g)
				case 1:
					th.Hub.LeaveGroup(id, g)
				case 2:
					th.Hub.BindUID(id, fmt.Sprintf("u%d", i%3))
				case 3:
					th.Hub.UnbindUID(id, fmt.Sprintf("u%d", i%3))
				case 4:
					th.Hub.SendToGroup([]byte("x"), []string{g}, nil)
					th.Hub.GetUIDListByGroup(g)
				case 5:
					th.Hub.UpdateSession(id, gateway.Session{"k": i})
					th.Hub.GetAllClientSessions()
				}
			}
		}()
	}
	// Clients connecting and leaving meanwhile.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			p, id := th.Connect(t, "websocket")
			th.Hub.JoinGroup(id, "g1")
			th.Hub.BindUID(id, "u1")
			p.WS().Close()
		}
	}()
	wg.Wait()
	th.Events.WaitCloses(t, 20)
	// Consistency: every group member and uid binding is a connected
	// client that lists it.
	if n := th.Hub.GetAllClientIDCount(); n != len(ids) {
		t.Errorf("%d clients in the hub, want %d", n, len(ids))
	}
	if err := th.Hub.CheckIndexes(); err != nil {
		t.Error(err)
	}
}

func TestHeartbeat(t *testing.T) {
	const interval = 400 * time.Millisecond // the window is 800ms: wide enough for a loaded machine
	th := gatewaytest.New(t, gateway.Options{PingInterval: interval, PingNotResponseLimit: 2, PingData: `{"type":"ping"}`})

	silentWS, silentWSID := th.Connect(t, "websocket")
	silentText, silentTextID := th.Connect(t, "text")
	// The silent WebSocket client reads, but answers no ping: what a
	// dead browser tab looks like from the server.
	silentWS.WS().SetPingHandler(func(string) error { return nil })
	type result struct {
		sawPing bool
		err     error
	}
	silentDone := make(chan result, 1)
	go func() {
		var r result
		for {
			s, err := silentWS.ReadErr(5 * time.Second)
			if err != nil {
				r.err = err
				silentDone <- r
				return
			}
			r.sawPing = r.sawPing || s == `{"type":"ping"}`
		}
	}()
	talker, talkerID := th.Connect(t, "text")
	start := time.Now()

	// The talker answers every ping, as the chat page does.
	var talkerPings atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			s, err := talker.ReadErr(3 * time.Second)
			if err != nil {
				return
			}
			if s == `{"type":"ping"}` {
				talkerPings.Add(1)
				talker.Conn().Write([]byte("{\"type\":\"pong\"}\n"))
			}
		}
	}()
	// A browser-like client answers WebSocket pings (as gorilla's default
	// ping handler does), but sends no message: that counts as alive too.
	var pongPings atomic.Int64
	pongOnly := th.DialWS(t).WS()
	pongOnly.SetPingHandler(func(data string) error {
		pongPings.Add(1)
		pongOnly.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		return nil
	})
	pongDone := make(chan struct{})
	go func() {
		defer close(pongDone)
		for {
			if _, _, err := pongOnly.ReadMessage(); err != nil {
				return
			}
		}
	}()

	// The silent clients see ping_data, then are closed.
	if got := silentText.Read(); got != `{"type":"ping"}` {
		t.Errorf("text client got %q, want ping_data", got)
	}
	closes := th.Events.WaitCloses(t, 2)
	elapsed := time.Since(start)
	got := map[string]bool{closes[0].ID: true, closes[1].ID: true}
	if !got[silentWSID] || !got[silentTextID] {
		t.Fatalf("closed %v, want the two silent clients", got)
	}
	if min := 2 * interval; elapsed < min {
		t.Errorf("silent clients closed after %v, before interval × limit = %v", elapsed, min)
	}
	// The silent WebSocket client got ping_data and a close frame.
	r := <-silentDone
	if !websocket.IsCloseError(r.err, websocket.CloseGoingAway) {
		t.Errorf("silent WebSocket client: %v, want close 1001", r.err)
	}
	if !r.sawPing {
		t.Errorf("silent WebSocket client never got ping_data")
	}
	// The talker and the pong-only client stay through two more limits:
	// each gets five more pings, one per interval, which a client taken
	// for silent (closed within interval × limit + interval/2) would not.
	talkerFrom, pongFrom := talkerPings.Load(), pongPings.Load()
	testutil.WaitFor(t, "five more pings to each talking client", func() bool {
		return talkerPings.Load() >= talkerFrom+5 && pongPings.Load() >= pongFrom+5
	})
	if !th.Hub.IsOnline(talkerID) || th.Hub.GetAllClientIDCount() != 2 {
		t.Errorf("talking clients were closed: got %d clients, want 2", th.Hub.GetAllClientIDCount())
	}
	if n := len(th.Events.Closes()); n != 2 {
		t.Errorf("got %d closes, want 2 (the silent clients)", n)
	}
	if s := th.Hub.Stats(); s.HeartbeatClosed != 2 {
		t.Errorf("HeartbeatClosed = %d, want 2", s.HeartbeatClosed)
	}
	talker.Conn().Close()
	<-done
	pongOnly.Close()
	<-pongDone
}

func TestHeartbeatLimitZeroOnlySends(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{PingInterval: 100 * time.Millisecond, PingData: "ping"})
	p, id := th.Connect(t, "text")
	for range 4 {
		if got := p.Read(); got != "ping" {
			t.Fatalf("got %q, want ping", got)
		}
	}
	if !th.Hub.IsOnline(id) {
		t.Errorf("silent client closed with ping_not_response_limit 0")
	}
}

// TestSlowClientDropped: a client that stops reading is dropped when its
// queue overflows, while 1,000 others get every broadcast, in order.
func TestSlowClientDropped(t *testing.T) {
	const n, queue, rounds = 1000, 128, 300
	th := gatewaytest.New(t, gateway.Options{SendQueue: queue})
	stalled, stalledID := th.Connect(t, "websocket")
	_ = stalled // never reads
	clients := make([]*websocket.Conn, n)
	for i := range clients {
		ws, _, err := websocket.DefaultDialer.Dial(th.WSURL, nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer ws.Close()
		clients[i] = ws
	}
	th.Events.WaitConnects(t, n+1)
	// Fill the stalled client's socket buffers, so that its writer blocks
	// and the broadcasts below pile up in its queue.
	for range 64 {
		th.Hub.SendToClient(stalledID, make([]byte, 1<<20))
	}

	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	var mu sync.Mutex
	var last time.Time
	for _, ws := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws.SetReadDeadline(time.Now().Add(60 * time.Second))
			for i := range rounds {
				_, b, err := ws.ReadMessage()
				if err != nil {
					errs <- fmt.Errorf("message %d: %w", i, err)
					return
				}
				if want := fmt.Sprintf("%d:", i); !strings.HasPrefix(string(b), want) {
					errs <- fmt.Errorf("message %d starts %q", i, b[:8])
					return
				}
			}
			mu.Lock()
			last = time.Now()
			mu.Unlock()
		}()
	}
	payload := strings.Repeat("x", 200)
	for i := range rounds {
		th.Hub.SendToAll([]byte(fmt.Sprintf("%d:%s", i, payload)), nil, nil)
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond) // pushes come spaced, not in one burst
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d broadcasts reached all %d clients in %v", rounds, n, last.Sub(start))
	th.Events.Wait(t, "the stalled client's close", func() bool { return th.Events.Closed(stalledID) })
	if s := th.Hub.Stats(); s.SendFail != 1 {
		t.Errorf("SendFail = %d, want 1 (only the stalled client)", s.SendFail)
	}
}

func TestChatTextAndWebSocket(t *testing.T) {
	chat := &gateway.Chat{}
	th := gatewaytest.New(t, gateway.Options{Handler: chat})
	chat.Hub = th.Hub
	ws := th.DialWS(t)
	hello := ws.Read()
	wsID, ok := strings.CutPrefix(hello, "Hello ")
	if !ok {
		t.Fatalf("first line %q, want Hello <client_id>", hello)
	}
	if got := ws.Read(); got != "online" {
		t.Errorf("online list = %q, want none", got)
	}
	if got := ws.Read(); got != wsID+" login" {
		t.Errorf("got %q, want own login", got)
	}
	text := th.DialText(t)
	textID, _ := strings.CutPrefix(text.Read(), "Hello ")
	if got := text.Read(); got != "online "+wsID {
		t.Errorf("online list = %q, want %q", got, "online "+wsID)
	}
	for _, p := range []*gatewaytest.Peer{text, ws} {
		if got := p.Read(); got != textID+" login" {
			t.Errorf("got %q, want %s login", got, textID)
		}
	}
	for _, m := range []struct {
		from *gatewaytest.Peer
		text string
		want string
	}{
		{text, "hello from telnet", textID + " said hello from telnet"},
		{ws, "hello from the browser", wsID + " said hello from the browser"},
	} {
		m.from.Send(m.text)
		for _, p := range []*gatewaytest.Peer{text, ws} {
			if got := p.Read(); got != m.want {
				t.Errorf("got %q, want %q", got, m.want)
			}
		}
	}
	text.Conn().Close()
	if got := ws.Read(); got != textID+" logout" {
		t.Errorf("got %q, want %s logout", got, textID)
	}
}

func TestCloseFrames(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{MaxMessageBytes: 1024})
	// A message over max_message_bytes: close 1009.
	p, _ := th.Connect(t, "websocket")
	p.Send(strings.Repeat("a", 2000))
	if _, err := p.ReadErr(5 * time.Second); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Errorf("oversized message: %v, want close 1009", err)
	}
	// A text line over the limit: an error line, then the end.
	tp, _ := th.Connect(t, "text")
	tp.Send(strings.Repeat("a", 2000))
	if got := tp.Read(); !strings.Contains(got, "too big") {
		t.Errorf("got %q, want an error line", got)
	}
	if _, err := tp.ReadErr(5 * time.Second); err == nil {
		t.Errorf("text client still open")
	}
	// The client closes: the hub echoes its code, OnClose runs once.
	p2, id2 := th.Connect(t, "websocket")
	p2.WS().WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"), time.Now().Add(time.Second))
	if _, err := p2.ReadErr(5 * time.Second); !websocket.IsCloseError(err, 4000) {
		t.Errorf("client close: %v, want 4000 echoed", err)
	}
	th.Events.Wait(t, "close of "+id2, func() bool {
		n := 0
		for _, c := range th.Events.Closes() {
			if c.ID == id2 {
				n++
			}
		}
		return n == 1
	})
	// Shutdown: close 1001 to every client, OnClose for each. The clients
	// read meanwhile and answer as real ones do.
	p3, _ := th.Connect(t, "websocket")
	t3, _ := th.Connect(t, "text")
	wsErr, textErr := make(chan error, 1), make(chan error, 1)
	go func() { _, err := p3.ReadErr(5 * time.Second); wsErr <- err }()
	go func() { _, err := t3.ReadErr(5 * time.Second); t3.Conn().Close(); textErr <- err }()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if err := th.Hub.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-wsErr; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("on shutdown: %v, want close 1001", err)
	}
	if err := <-textErr; err == nil {
		t.Errorf("text client open after shutdown")
	}
	if n := th.Hub.GetAllClientIDCount(); n != 0 {
		t.Errorf("%d clients after Shutdown", n)
	}
	// gateway.New clients are refused once shut down: the upgrade succeeds, then
	// close 1001.
	ws, _, err := websocket.DefaultDialer.Dial(th.WSURL, nil)
	if err != nil {
		t.Fatalf("dial after shutdown: %v", err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err = ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("client after shutdown: %v, want close 1001", err)
	}
}

// answerWatch is a Recorder that notes whether the client had answered
// the hub's close frame (answered, which the test sets) when OnClose ran.
type answerWatch struct {
	gatewaytest.Recorder
	answered        atomic.Bool
	answeredAtClose atomic.Bool
}

func (w *answerWatch) OnClose(c gateway.ClientInfo) {
	w.answeredAtClose.Store(w.answered.Load())
	w.Recorder.OnClose(c)
}

// TestCloseWaitsForClient: after closeClient's close frame the hub waits
// for the client's answer (up to closeWait) before it ends the
// connection, so the last message is not lost to a reset.
func TestCloseWaitsForClient(t *testing.T) {
	w := &answerWatch{}
	th := gatewaytest.New(t, gateway.Options{Handler: w})
	th.Events = &w.Recorder
	p, id := th.Connect(t, "websocket")
	// The client answers the close frame itself, below, not on reading it.
	p.WS().SetCloseHandler(func(int, string) error { return nil })
	if err := th.Hub.CloseClient(id, []byte("bye")); err != nil {
		t.Fatal(err)
	}
	if got := p.Read(); got != "bye" {
		t.Fatalf("last message %q, want bye", got)
	}
	if _, err := p.ReadErr(5 * time.Second); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("got %v, want close 1000", err)
	}
	time.Sleep(300 * time.Millisecond) // a slow client: it answers late
	w.answered.Store(true)
	p.WS().WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	th.Events.WaitCloses(t, 1)
	if !w.answeredAtClose.Load() {
		t.Errorf("OnClose ran before the client answered the close frame, want after")
	}
}

// TestSlowReaderNotCut: send_timeout cuts a socket that takes nothing,
// not a client that reads slowly but steadily.
func TestSlowReaderNotCut(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{SendTimeout: time.Second, MaxMessageBytes: 8 << 20})
	p, id := th.Connect(t, "text")
	const size = 3 << 20
	th.Hub.SendToClient(id, bytes.Repeat([]byte("s"), size))
	buf := make([]byte, 32<<10)
	got := 0
	for got < size+1 { // the message and its line end
		time.Sleep(10 * time.Millisecond) // about 3 MB/s
		p.Conn().SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := p.Reader().Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		got += n
	}
	if s := th.Hub.Stats(); s.SendFail != 0 || !th.Hub.IsOnline(id) {
		t.Errorf("slow reader was cut: SendFail = %d, online %v", s.SendFail, th.Hub.IsOnline(id))
	}
}

func TestTextLineLimit(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{MaxMessageBytes: 4})
	p, id := th.Connect(t, "text")
	p.Conn().Write([]byte("abcd\n"))   // at the limit, bare \n
	p.Conn().Write([]byte("wxyz\r\n")) // at the limit, \r\n
	th.Events.Wait(t, "two messages", func() bool { return len(th.Events.Messages()) == 2 })
	checkEq(t, "messages", th.Events.Messages(), []string{id + ": abcd", id + ": wxyz"})
	p.Conn().Write([]byte("abcde\n")) // one over
	if got := p.Read(); !strings.Contains(got, "too big") {
		t.Errorf("got %q, want an error line", got)
	}
	th.Events.WaitCloses(t, 1)
}

// TestServeTextReturns: ServeText returns when its context ends, and the
// connections it accepted live on.
func TestServeTextReturns(t *testing.T) {
	h := gateway.New(gateway.Options{Handler: &gatewaytest.Recorder{}})
	defer h.Shutdown(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.ServeText(ctx, ln) }()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	testutil.WaitFor(t, "the client to connect", func() bool { return h.GetAllClientIDCount() == 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeText: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeText did not return after its context ended")
	}
	// Closing the listener itself also stops it, without an error.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done2 := make(chan error, 1)
	go func() { done2 <- h.ServeText(context.Background(), ln2) }()
	ln2.Close()
	if err := <-done2; err != nil {
		t.Errorf("ServeText after its listener closed: %v, want nil", err)
	}
	h.SendToAll([]byte("still here"), nil, nil)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil || line != "still here\n" {
		t.Errorf("got %q, %v; want the connection to live on", line, err)
	}
}

// panicky panics on the message "boom".
type panicky struct{ gatewaytest.Recorder }

func (p *panicky) OnMessage(c gateway.ClientInfo, data []byte) {
	if string(data) == "boom" {
		panic("boom")
	}
	p.Recorder.OnMessage(c, data)
}

// TestHandlerPanic: a handler's panic ends its client, not the process.
func TestHandlerPanic(t *testing.T) {
	h := &panicky{}
	th := gatewaytest.New(t, gateway.Options{Handler: h})
	th.Events = &h.Recorder
	bad, badID := th.Connect(t, "text")
	good, goodID := th.Connect(t, "text")
	bad.Send("boom")
	closes := th.Events.WaitCloses(t, 1)
	if closes[0].ID != badID {
		t.Errorf("closed %s, want %s", closes[0].ID, badID)
	}
	good.Send("fine")
	th.Events.Wait(t, "the other client's message", func() bool {
		return slices.Contains(th.Events.Messages(), goodID+": fine")
	})
}

func checkEq(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func sorted(ids ...string) []string {
	out := append([]string(nil), ids...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestSendTimeout: a client whose socket takes nothing is cut after
// send_timeout even when its queue never overflows, and the others
// still get their messages.
func TestSendTimeout(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{SendTimeout: 300 * time.Millisecond})
	_, stalledID := th.Connect(t, "websocket") // never reads
	other, otherID := th.Connect(t, "text")
	// More than loopback socket buffers hold, in one queued message.
	th.Hub.SendToClient(stalledID, make([]byte, 32<<20))
	start := time.Now()
	th.Events.Wait(t, "the stalled client's close", func() bool { return th.Events.Closed(stalledID) })
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("cut after %v, before send_timeout", d)
	}
	if s := th.Hub.Stats(); s.SendFail != 1 {
		t.Errorf("SendFail = %d, want 1", s.SendFail)
	}
	th.Hub.SendToClient(otherID, []byte("still here"))
	if got := other.Read(); got != "still here" {
		t.Errorf("other client got %q", got)
	}
}

// TestFrameLengths: the hub's own frame encoding (each length form of
// RFC 6455, text and binary) reads back intact in gorilla's client.
func TestFrameLengths(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{})
	p, id := th.Connect(t, "websocket")
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		for _, binary := range []bool{false, true} {
			data := bytes.Repeat([]byte("a"), n)
			wantType := websocket.TextMessage
			if binary && n > 0 {
				data[0] = 0xff // not UTF-8: a binary frame
				wantType = websocket.BinaryMessage
			}
			if err := th.Hub.SendToClient(id, data); err != nil {
				t.Fatal(err)
			}
			p.WS().SetReadDeadline(time.Now().Add(5 * time.Second))
			mt, got, err := p.WS().ReadMessage()
			if err != nil {
				t.Fatalf("length %d: %v", n, err)
			}
			if mt != wantType || !bytes.Equal(got, data) {
				t.Errorf("length %d binary %v: got type %d, %d bytes; want type %d, the same %d bytes", n, binary, mt, len(got), wantType, n)
			}
		}
	}
}

// TestShutdownStuckClient: a client that stopped reading cannot hold
// Shutdown past send_timeout, though Run's watchdog has stopped.
func TestShutdownStuckClient(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{SendTimeout: 300 * time.Millisecond})
	_, stuck := th.Connect(t, "websocket") // never reads
	th.Hub.SendToClient(stuck, make([]byte, 32<<20))
	// More than the socket buffers take: the writer blocks in this write.
	testutil.WaitFor(t, "the writer to start", func() bool { return th.Hub.Writing(stuck) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := th.Hub.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Shutdown took %v with a stuck client, want about send_timeout", d)
	}
}

// TestCloseClientLastIsLast: closeClient's last message is the last one
// the client gets, even while other sends race it.
func TestCloseClientLastIsLast(t *testing.T) {
	// A queue large enough that the flood never makes the client "slow".
	th := gatewaytest.New(t, gateway.Options{SendQueue: 1 << 20})
	for i := range 20 {
		p, id := th.Connect(t, "text")
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for range 100000 {
				select {
				case <-stop:
					return
				default:
					th.Hub.SendToClient(id, []byte("flood"))
				}
			}
		})
		if got := p.Read(); got != "flood" { // the flood is on
			t.Fatalf("round %d: first line %q, want flood", i, got)
		}
		th.Hub.CloseClient(id, []byte("last"))
		var lines []string
		for {
			l, err := p.ReadErr(5 * time.Second)
			if err != nil {
				break
			}
			lines = append(lines, l)
		}
		close(stop)
		wg.Wait()
		if len(lines) == 0 || lines[len(lines)-1] != "last" {
			t.Fatalf("round %d: the client's last lines were %q, want the last one to be \"last\"", i, lines[max(0, len(lines)-3):])
		}
	}
}

// TestWait: Wait returns at once for a hub without clients, returns once
// the last client has gone (OnClose included), and gives up when its
// context ends.
func TestWait(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel() // Wait must not need the context when there is nothing to wait for

	t.Run("no clients", func(t *testing.T) {
		th := gatewaytest.New(t, gateway.Options{})
		if err := th.Hub.Wait(canceled); err != nil {
			t.Errorf("Wait on a hub without clients: got %v, want nil", err)
		}
	})

	t.Run("last client leaves", func(t *testing.T) {
		th := gatewaytest.New(t, gateway.Options{})
		ws, _ := th.Connect(t, "websocket")
		text, _ := th.Connect(t, "text")
		waited := make(chan error, 1)
		go func() { waited <- th.Hub.Wait(context.Background()) }()

		ws.Close()
		th.Events.WaitCloses(t, 1)
		select {
		case err := <-waited:
			t.Fatalf("Wait returned %v with a client still connected", err)
		default:
		}

		text.Close()
		select {
		case err := <-waited:
			if err != nil {
				t.Fatalf("Wait: got %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Wait did not return after the last client left")
		}
		if n := len(th.Events.Closes()); n != 2 {
			t.Errorf("Wait returned after %d OnClose calls, want 2", n)
		}
		if n := th.Hub.Stats().Clients; n != 0 {
			t.Errorf("Wait returned with Stats().Clients = %d, want 0", n)
		}
		if err := th.Hub.Wait(canceled); err != nil {
			t.Errorf("Wait again: got %v, want nil", err)
		}
	})

	t.Run("context ends", func(t *testing.T) {
		th := gatewaytest.New(t, gateway.Options{})
		th.Connect(t, "text")
		if err := th.Hub.Wait(canceled); !errors.Is(err, context.Canceled) {
			t.Errorf("Wait with a canceled context: got %v, want context.Canceled", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := th.Hub.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait past its deadline: got %v, want context.DeadlineExceeded", err)
		}
	})
}
