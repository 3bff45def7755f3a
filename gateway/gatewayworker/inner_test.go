package gatewayworker

import (
	"bytes"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/internal/testutil"
)

// TestInnerCommands runs a BusinessWorker stand-in and GatewayClient
// calls against a real hub with WebSocket and text clients on loopback.
func TestInnerCommands(t *testing.T) {
	for _, key := range []string{"", "S3cr3t-K3y"} {
		t.Run("key="+key, func(t *testing.T) { testInnerCommands(t, key) })
	}
}

func testInnerCommands(t *testing.T, key string) {
	e := startInner(t, InnerConfig{SecretKey: key})
	w := e.dialWorker(t, "ChatBusinessWorker:0", key)

	// A WebSocket client: CMD_ON_CONNECT, then CMD_ON_WEBSOCKET_CONNECT,
	// with the port it connected to.
	a := gatewaytest.DialWS(t, e.wsURL+"/chat?token=abc&x[]=1", nil)
	on := w.expect(CmdOnConnect)
	idA := on.ClientID().String()
	if on.LocalAddr().String() != e.innerAddr || on.GatewayPort != e.wsAddr.Port() || !on.Scalar() || len(on.ExtData) != 0 || len(on.Body) != 0 {
		t.Errorf("CMD_ON_CONNECT: got %+v, want gateway_port %d", on, e.wsAddr.Port())
	}
	if on.ClientAddr().Addr() != netip.MustParseAddr("127.0.0.1") || on.ClientPort == 0 {
		t.Errorf("client address: got %v", on.ClientAddr())
	}
	hs := w.expect(CmdOnWebSocketConnect)
	if hs.Flag != 0 || hs.ConnectionID != on.ConnectionID {
		t.Errorf("CMD_ON_WEBSOCKET_CONNECT: flag %d, connection %d", hs.Flag, hs.ConnectionID)
	}
	v, err := Unserialize(hs.Body)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := ToJSON(v)
	for _, want := range []string{
		`"get":{"token":"abc","x":["1"]}`,
		`"QUERY_STRING":"token=abc&x[]=1"`,
		`"REQUEST_METHOD":"GET"`,
		`"REQUEST_URI":"\/chat?token=abc&x[]=1"`, // as sent, not re-encoded
		`"SERVER_PROTOCOL":"HTTP\/1.1"`,
		`"SERVER_NAME":"` + e.wsAddr.String() + `"`, // workerman's host(): the Host header, port included
		`"REMOTE_ADDR":"127.0.0.1"`,
		`"SERVER_PORT":` + strconv.Itoa(int(e.wsAddr.Port())),
		`"HTTP_HOST":"` + e.wsAddr.String() + `"`,
		`"HTTP_SEC_WEBSOCKET_VERSION":"13"`,
		`"cookie":[]`,
	} {
		if !strings.Contains(string(j), want) {
			t.Errorf("handshake %s lacks %s", j, want)
		}
	}

	// The worker answers; the client gets it.
	w.send(Packet{Cmd: CmdSendToOne, ConnectionID: on.ConnectionID, Flag: FlagBodyIsScalar, Body: []byte("id:" + idA)})
	if got := a.Read(); got != "id:"+idA {
		t.Errorf("client got %q", got)
	}
	// Messages go to the worker with the session; SET_SESSION stores it.
	a.Send("hello")
	if m := w.expect(CmdOnMessage); string(m.Body) != "hello" || len(m.ExtData) != 0 {
		t.Errorf("CMD_ON_MESSAGE: got body %q session %q", m.Body, m.ExtData)
	}
	sess := `a:1:{s:4:"name";s:5:"alice";}`
	w.send(Packet{Cmd: CmdSetSession, ConnectionID: on.ConnectionID, Flag: FlagBodyIsScalar, ExtData: []byte(sess)})
	// The worker's command and the client's next message race, as with
	// PHP; wait until the session is stored.
	getA := Packet{Cmd: CmdGetSessionByClientID, ConnectionID: on.ConnectionID, Flag: FlagBodyIsScalar}
	waitFor(t, "the session", func() bool { return string(e.call(t, getA)) == string(AppendReply(nil, []byte(sess))) })
	a.WS().WriteMessage(websocket.BinaryMessage, []byte("bin\x00\x01\xff"))
	if m := w.expect(CmdOnMessage); string(m.Body) != "bin\x00\x01\xff" || string(m.ExtData) != sess {
		t.Errorf("CMD_ON_MESSAGE: got body %q session %q", m.Body, m.ExtData)
	}

	// A text client.
	b := gatewaytest.DialText(t, e.textAddr)
	onB := w.expect(CmdOnConnect)
	idB := onB.ClientID().String()
	if want := netip.MustParseAddrPort(e.textAddr).Port(); onB.GatewayPort != want {
		t.Errorf("text CMD_ON_CONNECT: gateway_port %d, want %d", onB.GatewayPort, want)
	}
	b.Send("hi from telnet")
	if m := w.expect(CmdOnMessage); string(m.Body) != "hi from telnet" || m.ConnectionID != onB.ConnectionID {
		t.Errorf("text CMD_ON_MESSAGE: got %q from %d", m.Body, m.ConnectionID)
	}

	connA, connB := int64(on.ConnectionID), int64(onB.ConnectionID)
	cmd := func(c Cmd, conn int64, ext, body string) Packet {
		return Packet{Cmd: c, ConnectionID: uint32(conn), Flag: FlagBodyIsScalar, ExtData: []byte(ext), Body: []byte(body)}
	}
	// Groups and uids, as BusinessWorker and GatewayClient send them.
	w.send(cmd(CmdJoinGroup, connA, "g1", ""))
	e.call(t, cmd(CmdJoinGroup, connB, "g1", ""), cmd(CmdJoinGroup, connB, "g2", ""))
	e.call(t, cmd(CmdBindUID, connA, "u1", ""))
	e.call(t, cmd(CmdBindUID, connB, "u2", ""))

	checks := []struct {
		name string
		p    Packet
		want string
	}{
		{"isOnline", cmd(CmdIsOnline, connA, "", ""), "i:1;"},
		{"isOnline offline", cmd(CmdIsOnline, 255, "", ""), "i:0;"},
		{"getAllClientIdCount", cmd(CmdGetClientCountByGroup, 0, "", ""), "i:2;"},
		{"getClientIdCountByGroup", cmd(CmdGetClientCountByGroup, 0, "g1", ""), "i:2;"},
		{"getClientSessionsByGroup", cmd(CmdGetClientSessionsByGroup, 0, "g2", ""), serialized(t, byConn(connB, ""))},
		{"getClientSessionsByGroup unknown", cmd(CmdGetClientSessionsByGroup, 0, "nope", ""), "a:0:{}"},
		{"getAllClientSessions", cmd(CmdGetAllClientSessions, 0, "", ""), serialized(t, byConn(connA, sess, connB, ""))},
		{"getClientIdByUid", cmd(CmdGetClientIDByUID, 0, "u1", ""), serialized(t, List(connA))},
		{"batchGetClientIdByUid", cmd(CmdBatchGetClientIDByUID, 0, `["u1","u2","u3"]`, ""),
			serialized(t, byName("u1", List(connA), "u2", List(connB), "u3", List()))},
		{"batchGetClientIdCountByGroup", cmd(CmdBatchGetClientCountByGroup, 0, `["g1","g2","g3"]`, ""),
			serialized(t, byName("g1", int64(2), "g2", int64(1), "g3", int64(0)))},
		{"getSession", cmd(CmdGetSessionByClientID, connA, "", ""), sess},
		{"getSession empty", cmd(CmdGetSessionByClientID, connB, "", ""), "a:0:{}"},
		{"getSession offline", cmd(CmdGetSessionByClientID, 255, "", ""), "N;"},
		{"getAllGroupIdList", cmd(CmdGetGroupIDList, 0, "", ""), serialized(t, []string{"g1", "g2"})},
		{"select all uids", cmd(CmdSelect, 0, `{"fields":["uid"],"where":[]}`, ""),
			serialized(t, byConn(connA, byName("uid", "u1"), connB, byName("uid", "u2")))},
		{"select by group", cmd(CmdSelect, 0, `{"fields":["uid","groups"],"where":{"groups":["g2"]}}`, ""),
			serialized(t, byConn(connB, byName("uid", "u2", "groups", byName("g1", "g1", "g2", "g2"))))},
		{"select by connection id", cmd(CmdSelect, 0, `{"fields":["session"],"where":{"connection_id":{"`+itoa(connA)+`":`+itoa(connA)+`}}}`, ""),
			serialized(t, byConn(connA, byName("session", sess)))},
		{"select by uid", cmd(CmdSelect, 0, `{"fields":["uid"],"where":{"uid":["u2"]}}`, ""),
			serialized(t, byConn(connB, byName("uid", "u2")))},
		{"select garbage", cmd(CmdSelect, 0, `nope`, ""), "a:0:{}"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			got := e.call(t, c.p)
			want := string(AppendReply(nil, []byte(c.want)))
			if string(got) != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}

	// Sends.
	sends := []struct {
		name    string
		p       Packet
		a, b    []string // what each client then reads
		binaryA bool
	}{
		{"sendToAll", cmd(CmdSendToAll, 0, "", "all"), []string{"all"}, []string{"all"}, false},
		{"sendToAll list", cmd(CmdSendToAll, 0, `{"connections":{"`+itoa(connB)+`":`+itoa(connB)+`}}`, "list"), nil, []string{"list"}, false},
		{"sendToAll exclude", cmd(CmdSendToAll, 0, `{"exclude":{"`+itoa(connB)+`":`+itoa(connB)+`}}`, "excl"), []string{"excl"}, nil, false},
		{"sendToAll raw", Packet{Cmd: CmdSendToAll, Flag: FlagBodyIsScalar | FlagNotCallEncode, Body: []byte("\x81\x06gc-raw")}, []string{"gc-raw"}, []string{"gc-raw"}, false},
		{"sendToUid", cmd(CmdSendToUID, 0, `["u1","u2"]`, "uids"), []string{"uids"}, []string{"uids"}, false},
		{"sendToGroup twice for two groups", cmd(CmdSendToGroup, 0, `{"group":["g1","g2"],"exclude":{"`+itoa(connA)+`":`+itoa(connA)+`}}`, "grp"), nil, []string{"grp", "grp"}, false},
		{"sendToGroup", cmd(CmdSendToGroup, 0, `{"group":["g1"],"exclude":null}`, "g1"), []string{"g1"}, []string{"g1"}, false},
		{"sendToClient serialized", Packet{Cmd: CmdSendToOne, ConnectionID: uint32(connA), Body: []byte(`s:3:"ser";`)}, []string{"ser"}, nil, false},
	}
	for _, s := range sends {
		t.Run(s.name, func(t *testing.T) {
			e.call(t, s.p)
			for _, m := range s.a {
				if got := a.Read(); got != m {
					t.Errorf("A got %q, want %q", got, m)
				}
			}
			for _, m := range s.b {
				if got := b.Read(); got != m {
					t.Errorf("B got %q, want %q", got, m)
				}
			}
		})
	}

	// Sessions: update merges, set replaces.
	e.call(t, cmd(CmdSetSession, connB, `a:2:{s:4:"role";s:1:"x";s:1:"n";i:1;}`, ""))
	e.call(t, cmd(CmdUpdateSession, connB, `a:2:{s:1:"n";i:2;s:4:"tags";a:2:{i:0;s:1:"a";i:1;s:1:"b";}}`, ""))
	merged := `a:3:{s:4:"role";s:1:"x";s:1:"n";i:2;s:4:"tags";a:2:{i:0;s:1:"a";i:1;s:1:"b";}}`
	if got := e.call(t, cmd(CmdGetSessionByClientID, connB, "", "")); string(got) != string(AppendReply(nil, []byte(merged))) {
		t.Errorf("after updateSession: got %q", got)
	}

	// Leave, unbind, ungroup.
	e.call(t, cmd(CmdLeaveGroup, connB, "g2", ""), cmd(CmdUnbindUID, connB, "ignored", ""))
	if got, err := e.hub.GetUIDByClientID(idB); err != nil || got != "" {
		t.Errorf("after unbindUid: uid %q, %v", got, err)
	}
	e.call(t, cmd(CmdUngroup, 0, "g1", ""))
	if got := e.hub.GetAllGroupIDList(); len(got) != 0 {
		t.Errorf("after ungroup: groups %v", got)
	}

	// closeClient with a message: it arrives, then CMD_ON_CLOSE with the
	// session.
	e.call(t, cmd(CmdKick, connB, "", "kicked"))
	if got := b.Read(); got != "kicked" {
		t.Errorf("kicked client got %q", got)
	}
	b.Close() // at EOF, as telnet does
	if c := w.expect(CmdOnClose); c.ConnectionID != uint32(connB) || string(c.ExtData) != merged {
		t.Errorf("CMD_ON_CLOSE: connection %d session %q", c.ConnectionID, c.ExtData)
	}
	// destroyClient.
	e.call(t, cmd(CmdDestroy, connA, "", ""))
	if c := w.expect(CmdOnClose); c.ConnectionID != uint32(connA) || string(c.ExtData) != sess {
		t.Errorf("CMD_ON_CLOSE: connection %d session %q", c.ConnectionID, c.ExtData)
	}
	if s := e.in.Stats(); s.EventsDropped != 0 || s.BadPackets != 0 {
		t.Errorf("stats: %+v", s)
	}
	// A session command for a client that left stores nothing, and
	// nothing is kept of the clients that left.
	e.call(t, cmd(CmdSetSession, connA, sess, ""), cmd(CmdUpdateSession, connB, sess, ""))
	e.in.mu.Lock()
	left := len(e.in.sticky)
	e.in.mu.Unlock()
	if left != 0 {
		t.Errorf("state kept for %d clients that left", left)
	}
}

func byConn(kv ...any) *Array {
	a := &Array{}
	for i := 0; i < len(kv); i += 2 {
		a.Set(IntKey(kv[i].(int64)), kv[i+1])
	}
	return a
}

func byName(kv ...any) *Array {
	a := &Array{}
	for i := 0; i < len(kv); i += 2 {
		a.Set(StringKey(kv[i].(string)), kv[i+1])
	}
	return a
}

func itoa(i int64) string { return strings.TrimSuffix(strings.TrimPrefix(serializedInt(i), "i:"), ";") }

func serializedInt(i int64) string { b, _ := Serialize(i); return string(b) }

// TestInnerSecretKey: the right key works; a wrong or missing key, and
// any command before the key, close the connection.
func TestInnerSecretKey(t *testing.T) {
	e := startInner(t, InnerConfig{SecretKey: "k"})
	isOnline := Packet{Cmd: CmdIsOnline, Flag: FlagBodyIsScalar}
	auth := func(key string) Packet {
		return Packet{Cmd: CmdGatewayClientConnect, Flag: FlagBodyIsScalar, Body: []byte(`{"secret_key":"` + key + `"}`)}
	}
	enc := func(ps ...Packet) []byte {
		var b []byte
		for _, p := range ps {
			b, _ = p.AppendEncode(b)
		}
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"right key", enc(auth("k"), isOnline), "\x00\x00\x00\x04i:0;"},
		{"wrong key", enc(auth("x"), isOnline), ""},
		{"no auth", enc(isOnline), ""},
		{"empty key", enc(auth(""), isOnline), ""},
		{"key not a string", enc(Packet{Cmd: CmdGatewayClientConnect, Body: []byte(`{"secret_key":1}`)}, isOnline), ""},
		{"auth not JSON", enc(Packet{Cmd: CmdGatewayClientConnect, Body: []byte(`k`)}, isOnline), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.rawCall(t, tt.in); string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// A worker with the wrong key is refused: it is not counted.
	bad := e.dialRawWorker(t, "W:0", "wrong")
	bad.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bad.r.ReadPacket(); err == nil {
		t.Errorf("worker with a wrong key: connection still open")
	}
	if n := e.in.Stats().Workers; n != 0 {
		t.Errorf("workers: got %d, want 0", n)
	}
	e.dialWorker(t, "W:0", "k")

	// Without a key on the gateway, a worker sending one is refused.
	e2 := startInner(t, InnerConfig{})
	w := e2.dialRawWorker(t, "W:0", "k")
	w.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := w.r.ReadPacket(); err == nil {
		t.Errorf("worker with a key where none is set: connection still open")
	}
}

// TestInnerBadInput: garbage, a bad pack_len, an unknown command and a
// truncated packet each close that connection alone, with the hub and
// the other connections untouched.
func TestInnerBadInput(t *testing.T) {
	e := startInner(t, InnerConfig{})
	w := e.dialWorker(t, "W:0", "")
	a := gatewaytest.DialWS(t, e.wsURL, nil)
	conn := w.expect(CmdOnConnect).ConnectionID
	w.expect(CmdOnWebSocketConnect)
	good, _ := (&Packet{Cmd: CmdSendToOne, ConnectionID: conn, Flag: FlagBodyIsScalar, Body: []byte("late")}).Encode()
	tests := []struct {
		name string
		in   []byte
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")},
		{"pack_len 27", header28(27, CmdSendToOne, 0)},
		{"pack_len over 10 MiB", header28(MaxPacketSize+1, CmdSendToOne, 0)},
		{"unknown command", header28(28, 17, 0)},
		{"bad ext_len", header28(28, CmdJoinGroup, 5)},
		{"truncated", good[:len(good)-2]}, // then the stream ends
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The bad bytes first, then a good packet that must not run.
			in := bytes.Clone(tt.in)
			if tt.name != "truncated" {
				in = append(in, good...)
			}
			if got := e.rawCall(t, in); len(got) != 0 {
				t.Errorf("got %q, want the connection closed", got)
			}
			if n := e.in.Stats().BadPackets; n != int64(i+1) {
				t.Errorf("bad packets: got %d, want %d", n, i+1)
			}
		})
	}
	// The client and the worker are fine.
	a.Send("still here")
	if m := w.expect(CmdOnMessage); string(m.Body) != "still here" {
		t.Errorf("got %q", m.Body)
	}
	if _, err := a.ReadErr(100 * time.Millisecond); err == nil {
		t.Errorf("a packet after the bad bytes was executed")
	}
}

// TestInnerWorkers: events are spread over two BusinessWorker
// connections, stick to one per client, move when it goes away, and are
// dropped and counted while there is none.
func TestInnerWorkers(t *testing.T) {
	e := startInner(t, InnerConfig{})
	// No worker: events are dropped, the client is not blocked and still
	// gets what the API sends it.
	c0 := gatewaytest.DialWS(t, e.wsURL, nil)
	waitFor(t, "the client", func() bool { return e.hub.GetAllClientIDCount() == 1 })
	c0.Send("nobody listens")
	waitFor(t, "dropped events", func() bool { return e.in.Stats().EventsDropped >= 3 })
	e.hub.SendToAll([]byte("still served"), nil, nil)
	if got := c0.Read(); got != "still served" {
		t.Errorf("got %q", got)
	}
	c0.Close()
	waitFor(t, "the client to go", func() bool { return e.hub.GetAllClientIDCount() == 0 })
	if s := e.in.Stats(); s.EventsDropped != 4 || s.EventsSent != 0 {
		t.Errorf("stats without workers: %+v, want 4 dropped", s)
	}

	w1 := e.dialWorker(t, "W:1", "")
	w2 := e.dialWorker(t, "W:2", "")
	var clients []*gatewaytest.Peer
	owner := map[uint32]*businessWorker{}
	for range 4 {
		clients = append(clients, gatewaytest.DialText(t, e.textAddr))
		// Least connections: W:1, W:2, W:1, W:2.
		want := w1
		if len(clients)%2 == 0 {
			want = w2
		}
		p := want.expect(CmdOnConnect)
		owner[p.ConnectionID] = want
	}
	// Sticky: each client's messages go to its worker.
	for round := range 2 {
		for i, c := range clients {
			c.Send("m")
			w := w1
			if i%2 == 1 {
				w = w2
			}
			m := w.expect(CmdOnMessage)
			if owner[m.ConnectionID] != w {
				t.Errorf("round %d: client %d's message went to another worker", round, i)
			}
		}
	}
	// W:1 goes: its clients move to W:2.
	w1.nc.Close()
	waitFor(t, "one worker", func() bool { return e.in.Stats().Workers == 1 })
	for _, c := range clients {
		c.Send("moved")
		if m := w2.expect(CmdOnMessage); string(m.Body) != "moved" {
			t.Errorf("got %q", m.Body)
		}
	}
	// A worker with the name of a connected one replaces it.
	w3 := e.dialRawWorker(t, "W:2", "")
	w2.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := w2.r.ReadPacket(); err != nil {
			break
		}
	}
	waitFor(t, "the replacement", func() bool { return e.in.Stats().Workers == 1 })
	clients[0].Send("to w3")
	if m := w3.expect(CmdOnMessage); string(m.Body) != "to w3" {
		t.Errorf("got %q", m.Body)
	}
}

// TestInnerPing: CMD_PING goes to every worker when asked (PHP: when
// lan_ip is not 127.0.0.1).
func TestInnerPing(t *testing.T) {
	e := startInner(t, InnerConfig{PingInterval: 10 * time.Millisecond})
	w := e.dialWorker(t, "W:0", "")
	w.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := w.r.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.Encode()
	captured := "\x00\x00\x00\x1c\xc9\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
	if string(b) != captured {
		t.Errorf("got %x, want the captured %x", b, captured)
	}
}

func TestNewInner(t *testing.T) {
	if _, err := NewInner(InnerConfig{}); err == nil || !strings.Contains(err.Error(), "IPv4") {
		t.Errorf("empty config: got %v, want the address named", err)
	}
	if _, err := NewInner(InnerConfig{Address: netip.MustParseAddrPort("[::1]:2900")}); err == nil {
		t.Errorf("IPv6 address: got no error")
	}
	in, err := NewInner(InnerConfig{Address: netip.MustParseAddrPort("127.0.0.1:2900")})
	if err != nil || in.pingEvery != 0 {
		t.Errorf("on 127.0.0.1: ping %v, %v; want none", in.pingEvery, err)
	}
	ln := testutil.Listen(t)
	if err := in.Serve(t.Context(), ln, nil); err == nil {
		t.Errorf("Serve without a hub: got no error")
	}
	ln = testutil.Listen(t)
	if err := in.Serve(t.Context(), ln, gateway.New(gateway.Options{})); err == nil || !strings.Contains(err.Error(), "SessionCodec") {
		t.Errorf("Serve with a hub without a session codec: got %v, want the option named", err)
	}
	in, _ = NewInner(InnerConfig{Address: netip.MustParseAddrPort("10.0.0.1:2900")})
	if in.pingEvery != DefaultPingInterval {
		t.Errorf("on 10.0.0.1: ping %v, want %v", in.pingEvery, DefaultPingInterval)
	}
}

// TestInnerPorts: events tell the port the client connected to, and
// InnerConfig.GatewayPort overrides it in gateway_port and SERVER_PORT.
func TestInnerPorts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		override uint16
	}{
		{"real ports", 0},
		{"override", 8282},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startInner(t, InnerConfig{GatewayPort: tc.override})
			w := e.dialWorker(t, "W:0", "")
			want := func(real uint16) uint16 {
				if tc.override != 0 {
					return tc.override
				}
				return real
			}

			gatewaytest.DialWS(t, e.wsURL+"/", nil)
			if p := w.expect(CmdOnConnect); p.GatewayPort != want(e.wsAddr.Port()) {
				t.Errorf("websocket CMD_ON_CONNECT: gateway_port %d, want %d", p.GatewayPort, want(e.wsAddr.Port()))
			}
			hs := w.expect(CmdOnWebSocketConnect)
			if hs.GatewayPort != want(e.wsAddr.Port()) {
				t.Errorf("CMD_ON_WEBSOCKET_CONNECT: gateway_port %d, want %d", hs.GatewayPort, want(e.wsAddr.Port()))
			}
			v, err := Unserialize(hs.Body)
			if err != nil {
				t.Fatal(err)
			}
			server, _ := v.(*Array).Get(StringKey("server"))
			port, _ := server.(*Array).Get(StringKey("SERVER_PORT"))
			if port != int64(want(e.wsAddr.Port())) {
				t.Errorf("SERVER_PORT %v, want %d", port, want(e.wsAddr.Port()))
			}

			text := netip.MustParseAddrPort(e.textAddr).Port()
			gatewaytest.DialText(t, e.textAddr)
			if p := w.expect(CmdOnConnect); p.GatewayPort != want(text) {
				t.Errorf("text CMD_ON_CONNECT: gateway_port %d, want %d", p.GatewayPort, want(text))
			}
		})
	}
}

// TestInnerSessionsInHub: the sessions a BusinessWorker stores are the
// hub's raw sessions, kept byte for byte and seen by the hub's map API;
// a session set as a map reaches the BusinessWorker serialized.
func TestInnerSessionsInHub(t *testing.T) {
	e := startInner(t, InnerConfig{})
	w := e.dialWorker(t, "W:0", "")
	c := gatewaytest.DialText(t, e.textAddr)
	conn := w.expect(CmdOnConnect).ConnectionID
	id := e.clientID(conn)
	// Keys out of order, as PHP keeps them: a map cannot hold that.
	sess := `a:3:{s:4:"role";s:1:"x";s:1:"n";i:1;s:4:"tags";a:1:{i:0;s:1:"a";}}`
	w.send(Packet{Cmd: CmdSetSession, ConnectionID: conn, Flag: FlagBodyIsScalar, ExtData: []byte(sess)})
	waitFor(t, "the session", func() bool { s, _ := e.hub.GetSessionRaw(id); return string(s) == sess })
	m, err := e.hub.GetSession(id)
	if want := (gateway.Session{"role": "x", "n": 1.0, "tags": []any{"a"}}); err != nil || !reflect.DeepEqual(m, want) {
		t.Errorf("GetSession = %v, %v; want %v", m, err, want)
	}
	c.Send("raw")
	if p := w.expect(CmdOnMessage); string(p.ExtData) != sess {
		t.Errorf("CMD_ON_MESSAGE session %q, want %q", p.ExtData, sess)
	}

	// Set as a map (the push API's setSession): serialized, keys sorted.
	if err := e.hub.SetSession(id, gateway.Session{"name": "bob", "age": 7.0}); err != nil {
		t.Fatal(err)
	}
	c.Send("map")
	mapped := `a:2:{s:3:"age";i:7;s:4:"name";s:3:"bob";}`
	if p := w.expect(CmdOnMessage); string(p.ExtData) != mapped {
		t.Errorf("CMD_ON_MESSAGE session %q, want %q", p.ExtData, mapped)
	}
	// CMD_UPDATE_SESSION merges into the serialized map.
	w.send(Packet{Cmd: CmdUpdateSession, ConnectionID: conn, Flag: FlagBodyIsScalar, ExtData: []byte(`a:1:{s:4:"name";s:3:"eve";}`)})
	merged := `a:2:{s:3:"age";i:7;s:4:"name";s:3:"eve";}`
	waitFor(t, "the update", func() bool { s, _ := e.hub.GetSessionRaw(id); return string(s) == merged })
	// A map again, then the client goes: CMD_ON_CLOSE has it serialized.
	e.hub.UpdateSession(id, gateway.Session{"age": 8.0})
	c.Close()
	if p := w.expect(CmdOnClose); string(p.ExtData) != `a:2:{s:3:"age";i:8;s:4:"name";s:3:"eve";}` {
		t.Errorf("CMD_ON_CLOSE session %q", p.ExtData)
	}
}

func TestHandshakeFromWebSocketRequest(t *testing.T) {
	remote := netip.MustParseAddrPort("192.0.2.9:40000")
	for _, tc := range []struct {
		name string
		r    *gateway.WebSocketRequest
		want Handshake
	}{
		{
			name: "as the hub fills it",
			r: &gateway.WebSocketRequest{
				Method: "GET", RequestURI: "/chat?a=%7e&b[]=1", Proto: "HTTP/1.1", Host: "example.com:8443",
				Path: "/chat", Query: url.Values{"a": {"~"}, "b[]": {"1"}},
				Header: http.Header{"User-Agent": {"ua"}, "Cookie": {"k=v"}, "X-Two": {"1", "2"}},
			},
			want: Handshake{
				Method: "GET", RequestURI: "/chat?a=%7e&b[]=1", Proto: "HTTP/1.1", Host: "example.com:8443",
				Header: []HeaderField{{"Host", "example.com:8443"}, {"Cookie", "k=v"}, {"User-Agent", "ua"}, {"X-Two", "1"}, {"X-Two", "2"}},
			},
		},
		{
			name: "without the request line",
			r:    &gateway.WebSocketRequest{Path: "/p", Query: url.Values{"q": {"a b"}}, Header: http.Header{"Host": {"h"}}},
			want: Handshake{Method: "GET", RequestURI: "/p?q=a+b", Proto: "HTTP/1.1", Host: "h", Header: []HeaderField{{"Host", "h"}}},
		},
		{
			name: "nil",
			want: Handshake{Method: "GET", RequestURI: "/", Proto: "HTTP/1.1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.RemoteAddr, tc.want.ServerPort = remote, 8443
			if got := HandshakeFromWebSocketRequest(tc.r, remote, 8443); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
