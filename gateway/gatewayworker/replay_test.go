package gatewayworker

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// TestInnerReplayStreams replays a captured scenario against the inner
// listener and a real hub: the BusinessWorker's recorded packets on one
// connection, every GatewayClient call's recorded stream on a
// connection of its own, and WebSocket clients (connecting from
// 127.0.0.9, as in the capture) doing what the scenario's steps did,
// through the edge as wssgate serves them: TLS, a gateway: true route,
// the connection detached into the hub.
// The captured clients connected to 127.0.0.1:8282; ours reach a free
// port as through a port mapping from 8282: they send the captured
// Host header, and InnerConfig.GatewayPort is 8282. Checked:
//
//   - every event sent to the BusinessWorker matches the captured one
//     in cmd, local_ip, connection_id, flag, client_ip, gateway_port,
//     ext_data (the session) and body; in CMD_ON_WEBSOCKET_CONNECT's
//     body, every entry of get, cookie and server (SERVER_NAME,
//     HTTP_HOST, SERVER_PORT, REQUEST_METHOD, REQUEST_URI and
//     SERVER_PROTOCOL included), and the order of server's entries up to
//     the first HTTP_* one. The fields that must differ are local_port
//     (the captured Gateway listened on 2000, this one on a free port),
//     client_port and REMOTE_PORT (the kernel's choice),
//     HTTP_SEC_WEBSOCKET_KEY (per connection), and the order of the
//     HTTP_* entries (Go keeps no header order);
//   - every GatewayClient connection gets exactly the captured Gateway's
//     bytes back (the replies), byte for byte;
//   - every WebSocket client receives the messages the scenario sends it.
func TestInnerReplayStreams(t *testing.T) {
	for _, sc := range []struct{ name, key, lanIP string }{
		{"nosecret", "", "127.0.0.1"},
		{"secret", "S3cr3t-K3y", "127.0.0.3"},
	} {
		t.Run(sc.name, func(t *testing.T) { replayScenario(t, sc.name, sc.key, sc.lanIP) })
	}
}

// wsClient is a scenario client that records what it receives.
type wsClient struct {
	ws   *websocket.Conn
	mu   sync.Mutex
	got  []string
	done chan struct{}
}

func (c *wsClient) received() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

func replayScenario(t *testing.T, scenario, key, lanIP string) {
	ln, err := net.Listen("tcp", lanIP+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", lanIP, err)
	}
	t.Cleanup(func() { ln.Close() })
	e := startInnerServed(t, InnerConfig{SecretKey: key, GatewayPort: 8282}, ln, true)

	var vs []vector
	for _, v := range loadVectors(t) {
		if v.Scenario == scenario && v.Protocol != "register-text" {
			vs = append(vs, v)
		}
	}
	// The BusinessWorker connects with its captured first packet.
	bwConn := vs[0].Conn
	if vs[0].Command != "CMD_WORKER_CONNECT" {
		t.Fatalf("first vector %s, want CMD_WORKER_CONNECT", vs[0].File)
	}
	nc, err := net.Dial("tcp", e.innerAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	bw := &businessWorker{t: t, nc: nc, r: NewReader(nc)}
	nc.Write(vs[0].bytes(t))
	waitFor(t, "the worker", func() bool { return e.in.Stats().Workers == 1 })

	clients := map[uint32]*wsClient{}
	serverClosed := map[uint32]bool{}
	dirty := false // BusinessWorker packets written since the last barrier
	// barrier waits until the inner listener has run every packet the
	// BusinessWorker wrote: a query on the same connection is answered
	// only after them (no event is in flight at these points).
	barrier := func() {
		t.Helper()
		if !dirty {
			return
		}
		bw.send(Packet{Cmd: CmdGetClientCountByGroup, Flag: FlagBodyIsScalar})
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := ReadReply(bw.r.r, 0); err != nil {
			t.Fatalf("barrier: %v", err)
		}
		dirty = false
	}
	dialer := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}}
		return d.Dial(network, addr)
	}, TLSClientConfig: e.wsTLS}
	replayed := map[string]bool{}
	compared := 0

	for i := 1; i < len(vs); i++ {
		v := &vs[i]
		switch {
		case v.Direction == "BusinessWorker->Gateway":
			if v.Conn != bwConn {
				t.Fatalf("%s: on connection %s", v.File, v.Conn)
			}
			nc.Write(v.bytes(t))
			dirty = true

		case v.Direction == "GatewayClient->Gateway":
			if replayed[v.Conn] {
				continue
			}
			replayed[v.Conn] = true
			barrier()
			for _, p := range packetsOf(t, filepath.Join("testdata", v.Stream)) {
				if p.Cmd == CmdKick || p.Cmd == CmdDestroy {
					serverClosed[p.ConnectionID] = true
				}
			}
			c2s, err := os.ReadFile(filepath.Join("testdata", v.Stream))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", strings.Replace(v.Stream, "_c2s", "_s2c", 1)))
			if err != nil {
				t.Fatal(err)
			}
			if got := e.rawCall(t, c2s); !bytes.Equal(got, want) {
				t.Errorf("%s (%s): gateway answered %q, want the captured %q", v.Conn, v.Step, got, want)
			}

		case v.Direction == "Gateway->BusinessWorker":
			f := v.Fields
			conn := f.ConnectionID
			switch Cmd(f.Cmd) {
			case CmdPing:
				continue // the captured Gateway's 25 s timer; off here
			case CmdOnConnect:
				barrier()
				ws, _, err := dialer.Dial(e.wsURL+"/", http.Header{"Host": {"127.0.0.1:8282"}})
				if err != nil {
					t.Fatal(err)
				}
				c := &wsClient{ws: ws, done: make(chan struct{})}
				go func() {
					defer close(c.done)
					for {
						_, m, err := ws.ReadMessage()
						if err != nil {
							return
						}
						c.mu.Lock()
						c.got = append(c.got, string(m))
						c.mu.Unlock()
					}
				}()
				t.Cleanup(func() { ws.Close(); <-c.done })
				clients[conn] = c
			case CmdOnMessage:
				barrier()
				typ := websocket.TextMessage
				body := mustHex(t, f.BodyHex)
				if !utf8.Valid(body) {
					typ = websocket.BinaryMessage
				}
				clients[conn].ws.WriteMessage(typ, body)
			case CmdOnClose:
				if !serverClosed[conn] {
					barrier()
					c := clients[conn]
					c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				}
			}
			compareEvent(t, v, bw.next())
			compared++
		}
	}

	// What each client received.
	prefix := ClientID{Addr: netip.MustParseAddrPort(lanIP + ":2000")}.String()[:12]
	want := map[uint32][]string{
		1: {"id:" + prefix + "00000001", "hello", "bin\x00\x01\xff", "sessok:name", "hello-with-session", "joined:g1", "bound:u1", "hi-group", "all:hey-all",
			"gc-all", "gc-raw", "gc-list", "gc-excl", "gc-one", "gc-uid", "gc-uids", "gc-grp"},
		2: {"id:" + prefix + "00000002", "joined:g1", "hi-group", "all:hey-all", "gc-all", "gc-raw", "gc-list", "gc-uids", "gc-grp", "gc-grp-excl", "gc-grp-excl", "kicked"},
		3: {"id:" + prefix + "00000003", "all:hey-all", "gc-all", "gc-raw", "gc-excl"},
	}
	for conn, c := range clients {
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			t.Errorf("client %d still connected", conn)
		}
		if got := c.received(); !reflect.DeepEqual(got, want[conn]) {
			t.Errorf("client %d received\n%q\nwant\n%q", conn, got, want[conn])
		}
	}
	if s := e.in.Stats(); s.BadPackets != 0 {
		t.Errorf("stats: %+v", s)
	}
	events, captured := 0, 0
	for _, v := range vs {
		if v.Direction == "Gateway->BusinessWorker" && v.Command != "CMD_PING" {
			captured++
		}
	}
	events = compared
	if events != captured {
		t.Errorf("compared %d events, captured %d", events, captured)
	}
	// Every WebSocket client came through the edge's gateway route.
	streams := int64(0)
	for _, site := range e.edge.Stats().Sites {
		for _, rt := range site.Routes {
			streams += rt.Streams
		}
	}
	if streams != int64(len(clients)) {
		t.Errorf("the edge relayed %d WebSocket streams, want the %d clients", streams, len(clients))
	}
}

// packetsOf decodes a captured stream of packets.
func packetsOf(t *testing.T, file string) []Packet {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []Packet
	for len(b) > 0 {
		p, n, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, p)
		b = b[n:]
	}
	return out
}

// compareEvent compares an event with the captured one, leaving out the
// fields that must differ (see TestInnerReplayStreams).
func compareEvent(t *testing.T, v *vector, got *Packet) {
	t.Helper()
	f := v.Fields
	checks := []struct {
		name      string
		got, want any
	}{
		{"cmd", got.Cmd.String(), f.CmdName},
		{"local_ip", got.LocalIP, f.LocalIP},
		{"client_ip", got.ClientIP, f.ClientIP},
		{"connection_id", got.ConnectionID, f.ConnectionID},
		{"flag", uint8(got.Flag), f.Flag},
		{"gateway_port", got.GatewayPort, f.GatewayPort},
		{"ext_data", string(got.ExtData), string(mustHex(t, f.ExtDataHex))},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %s: got %v, want %v", v.File, c.name, c.got, c.want)
		}
	}
	if got.Cmd != CmdOnWebSocketConnect {
		if want := mustHex(t, f.BodyHex); !bytes.Equal(got.Body, want) {
			t.Errorf("%s: body: got %q, want %q", v.File, got.Body, want)
		}
		return
	}
	var ours, theirs map[string]any
	j, err := SessionToJSON(got.Body)
	if err != nil {
		t.Fatalf("%s: our handshake: %v", v.File, err)
	}
	json.Unmarshal(j, &ours)
	json.Unmarshal(f.BodyUnserialized, &theirs)
	differ := []string{"REMOTE_PORT", "HTTP_SEC_WEBSOCKET_KEY"}
	for _, m := range []map[string]any{ours, theirs} {
		for _, k := range differ {
			delete(m["server"].(map[string]any), k)
		}
		// PHP decodes an empty array as a list, ours as an object.
		for _, k := range []string{"get", "cookie"} {
			if l, ok := m[k].([]any); ok && len(l) == 0 {
				m[k] = map[string]any{}
			}
		}
	}
	if !reflect.DeepEqual(ours, theirs) {
		t.Errorf("%s: handshake:\ngot  %v\nwant %v", v.File, ours, theirs)
	}
	if got, want := serverKeys(t, got.Body), serverKeys(t, mustHex(t, f.BodyHex)); !slices.Equal(got, want) {
		t.Errorf("%s: handshake server keys:\ngot  %q\nwant %q", v.File, got, want)
	}
}

// serverKeys returns the keys of a serialized handshake's server array
// up to the first HTTP_* one, in order.
func serverKeys(t *testing.T, body []byte) []string {
	t.Helper()
	v, err := Unserialize(body)
	if err != nil {
		t.Fatal(err)
	}
	server, _ := v.(*Array).Get(StringKey("server"))
	var keys []string
	for k := range server.(*Array).All() {
		if strings.HasPrefix(k.String(), "HTTP_") {
			break
		}
		keys = append(keys, k.String())
	}
	return keys
}
