package gatewayworker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wssgate/wssgate/internal/testutil"
)

// The Worker against a Register and a Gateway played by the test from
// the captured streams: what it sends must be what the PHP
// BusinessWorker and GatewayClient sent, byte for byte.

// startWorker runs a Worker until the test ends. stop ends it early
// and waits for Run to return.
func startWorker(t *testing.T, cfg WorkerConfig) (w *Worker, stop func()) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger(t)
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = 20 * time.Millisecond
	}
	w, err := NewWorker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Worker.Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Worker.Run did not return")
		}
	})
	t.Cleanup(stop)
	return w, stop
}

// listenOn listens on ip with a free port until the test ends.
func listenOn(t *testing.T, ip string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// acceptOne accepts one connection within 5 s; it is closed when the
// test ends.
func acceptOne(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	nc, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	return nc
}

func readStream(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// packets splits a stream of packets.
func packets(t *testing.T, b []byte) []Packet {
	t.Helper()
	var out []Packet
	for len(b) > 0 {
		p, n, err := Decode(b)
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		out = append(out, p)
		b = b[n:]
	}
	return out
}

func describe(ps []Packet) string {
	var sb strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&sb, "\n\t%v conn=%d flag=%d ext=%q body=%q", p.Cmd, p.ConnectionID, p.Flag, p.ExtData, p.Body)
	}
	return sb.String()
}

// capturedEvents is the Events class of the captured PHP BusinessWorker.
type capturedEvents struct{ NopWorkerHandler }

func (capturedEvents) OnConnect(e *Event) {
	e.Worker.SendToClient(e.ClientID, []byte("id:"+e.ClientID))
}

func (capturedEvents) OnMessage(e *Event) {
	w, id, msg := e.Worker, e.ClientID, string(e.Message)
	switch {
	case strings.HasPrefix(msg, "sess:"):
		k, v, _ := strings.Cut(msg[len("sess:"):], "=")
		if e.Session == nil {
			e.Session = &Array{}
		}
		e.Session.Set(StringKey(k), v)
		w.SendToClient(id, []byte("sessok:"+k))
	case strings.HasPrefix(msg, "join:"):
		w.JoinGroup(id, msg[len("join:"):])
		w.SendToClient(id, []byte("joined:"+msg[len("join:"):]))
	case strings.HasPrefix(msg, "bind:"):
		w.BindUID(id, msg[len("bind:"):])
		w.SendToClient(id, []byte("bound:"+msg[len("bind:"):]))
	case strings.HasPrefix(msg, "grp:"):
		g, m, _ := strings.Cut(msg[len("grp:"):], ":")
		w.SendToGroup([]byte(m), []string{g}, nil)
	case strings.HasPrefix(msg, "all:"):
		w.SendToAll(e.Message, nil, nil)
	default:
		w.SendToClient(id, e.Message)
	}
}

var captureScenarios = []struct{ name, key, lanIP string }{
	{"nosecret", "", "127.0.0.1"},
	{"secret", "S3cr3t-K3y", "127.0.0.3"},
}

// TestWorkerMatchesCapturedBusinessWorker plays the captured Register
// and Gateway to the Worker, running the captured Events: its Register
// lines and everything it sends the Gateway (CMD_WORKER_CONNECT, the
// replies, CMD_SET_SESSION, groups, uids, group and all sends) must be
// the PHP BusinessWorker's bytes. The Gateway's port differs from the
// capture's (2000), so the events name the test's port, and the client
// ids the worker echoes have it too: that is the only change.
func TestWorkerMatchesCapturedBusinessWorker(t *testing.T) {
	for _, sc := range captureScenarios {
		t.Run(sc.name, func(t *testing.T) {
			regLn := testutil.Listen(t)
			gwLn := listenOn(t, sc.lanIP)
			gwAddr := gwLn.Addr().(*net.TCPAddr).AddrPort()
			cfg := WorkerConfig{RegisterAddress: regLn.Addr().String(), SecretKey: sc.key,
				WorkerKey: "ChatBusinessWorker:0", Handler: capturedEvents{}, PingInterval: -1}
			if sc.key != "" {
				cfg.PingInterval = 10 * time.Millisecond // the capture's Register was not on 127.0.0.1
			}
			startWorker(t, cfg)

			reg := acceptOne(t, regLn)
			br := bufio.NewReader(reg)
			wantLines := strings.SplitAfter(string(readStream(t, "streams/"+sc.name+"/register_0002_c2s.bin")), "\n")
			for i, want := range wantLines {
				if want == "" || (i > 0 && sc.key == "") {
					continue
				}
				got, err := br.ReadString('\n')
				if err != nil || got != want {
					t.Errorf("register line %d: got %q, %v; want %q", i, got, err, want)
				}
			}
			reg.Write(AppendBroadcastAddresses(nil, []string{gwAddr.String()}))

			gw := acceptOne(t, gwLn)
			var s2c []byte
			for _, p := range packets(t, readStream(t, "streams/"+sc.name+"/inner_0003_s2c.bin")) {
				if p.Cmd != CmdPing {
					p.LocalPort = gwAddr.Port()
				}
				s2c, _ = p.AppendEncode(s2c)
			}
			captured := ClientID{Addr: netip.AddrPortFrom(netip.MustParseAddr(sc.lanIP), 2000)}.String()[:12]
			ours := ClientID{Addr: gwAddr}.String()[:12]
			want := bytes.ReplaceAll(readStream(t, "streams/"+sc.name+"/inner_0003_c2s.bin"), []byte(captured), []byte(ours))
			if _, err := gw.Write(s2c); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(want))
			if n, err := io.ReadFull(gw, got); err != nil {
				t.Fatalf("after %d of %d bytes: %v; got%s", n, len(want), err, describe(packets(t, got[:n])))
			}
			if !bytes.Equal(got, want) {
				t.Errorf("worker sent%s\nwant%s", describe(packets(t, got)), describe(packets(t, want)))
			}
			gw.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if extra, _ := io.ReadAll(gw); len(extra) > 0 {
				t.Errorf("worker sent more: %q", extra)
			}
		})
	}
}

// fakeGateway is a Worker's only Gateway, played by the test.
type fakeGateway struct {
	t    *testing.T
	ln   net.Listener
	addr netip.AddrPort
	conn net.Conn // the Worker's connection
	r    *Reader
}

// startFakeGateway serves a Register that lists one Gateway on lanIP,
// starts a Worker with cfg (its RegisterAddress set) and accepts the
// Worker's connection, checking its CMD_WORKER_CONNECT.
func startFakeGateway(t *testing.T, lanIP string, cfg WorkerConfig) (*Worker, *fakeGateway) {
	t.Helper()
	reg, regAddr := startRegister(t, RegisterConfig{SecretKey: cfg.SecretKey})
	g := &fakeGateway{t: t, ln: listenOn(t, lanIP)}
	g.addr = g.ln.Addr().(*net.TCPAddr).AddrPort()
	reg.AddGateway(g.addr.String())
	cfg.RegisterAddress = regAddr
	w, _ := startWorker(t, cfg)
	g.conn = acceptOne(t, g.ln)
	g.r = NewReader(g.conn)
	auth := g.next()
	want := `{"worker_key":"` + w.WorkerKey() + `","secret_key":"` + cfg.SecretKey + `"}`
	if auth.Cmd != CmdWorkerConnect || string(auth.Body) != want || auth.Flag != FlagBodyIsScalar {
		t.Fatalf("first packet: %v %q, want CMD_WORKER_CONNECT %s", auth.Cmd, auth.Body, want)
	}
	waitFor(t, "the worker's connection", func() bool { return len(w.Gateways()) == 1 })
	return w, g
}

// next reads the next packet the Worker sends on its connection.
func (g *fakeGateway) next() *Packet {
	g.t.Helper()
	g.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := g.r.ReadPacket()
	if err != nil {
		g.t.Fatalf("gateway: reading the worker's packet: %v", err)
	}
	return p
}

// id is the client id of connection n on this Gateway.
func (g *fakeGateway) id(n uint32) string { return ClientID{Addr: g.addr, ConnectionID: n}.String() }

// query runs call, which makes one query, and answers it as the
// Gateway did in the capture: the query's connection must carry the
// captured bytes (the auth packet with the command when there is a
// key), and gets the captured reply.
func (g *fakeGateway) query(stream string, call func() (any, error)) (any, error) {
	g.t.Helper()
	type result struct {
		v   any
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := call()
		done <- result{v, err}
	}()
	nc := acceptOne(g.t, g.ln)
	want := readStream(g.t, stream)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(nc, got); err != nil {
		g.t.Errorf("%s: reading the query: %v", stream, err)
	} else if !bytes.Equal(got, want) {
		g.t.Errorf("%s: query sent%s\nwant%s", stream, describe(packets(g.t, got)), describe(packets(g.t, want)))
	}
	nc.Write(readStream(g.t, strings.Replace(stream, "_c2s", "_s2c", 1)))
	nc.Close()
	r := <-done
	return r.v, r.err
}

// TestWorkerCommandsMatchGatewayClient sends, through the Worker's API,
// every command and query the capture made with GatewayClient (whose
// packets Lib\Gateway in a BusinessWorker shares): a command must go
// out on the Worker's connection as the captured packet, and a query
// on a connection of its own as the captured stream, whose captured
// reply must decode to the expected value.
func TestWorkerCommandsMatchGatewayClient(t *testing.T) {
	for _, sc := range captureScenarios {
		t.Run(sc.name, func(t *testing.T) { testWorkerCommands(t, sc.name, sc.key, sc.lanIP) })
	}
}

func testWorkerCommands(t *testing.T, scenario, key, lanIP string) {
	w, g := startFakeGateway(t, lanIP, WorkerConfig{SecretKey: key})
	ctx := context.Background()
	vec := func(step string) *vector {
		t.Helper()
		for _, v := range loadVectors(t) {
			if v.Scenario == scenario && v.Step == "GatewayClient::"+step && v.Direction == "GatewayClient->Gateway" && v.Command != "CMD_GATEWAY_CLIENT_CONNECT" {
				return &v
			}
		}
		t.Fatalf("no vector for %s", step)
		return nil
	}
	session := func(kv ...any) *Array {
		a := &Array{}
		for i := 0; i < len(kv); i += 2 {
			a.Set(StringKey(kv[i].(string)), kv[i+1])
		}
		return a
	}

	commands := []struct {
		step string
		call func() error
	}{
		{"sendToAll", func() error { return w.SendToAll([]byte("gc-all"), nil, nil) }},
		{"sendToAll_client_id_array", func() error { return w.SendToAll([]byte("gc-list"), []string{g.id(1), g.id(2)}, nil) }},
		{"sendToAll_exclude", func() error { return w.SendToAll([]byte("gc-excl"), nil, []string{g.id(2)}) }},
		{"sendToClient", func() error { return w.SendToClient(g.id(1), []byte("gc-one")) }},
		{"bindUid", func() error { return w.BindUID(g.id(2), "u2") }},
		{"sendToUid", func() error { return w.SendToUID([]byte("gc-uid"), "u1") }},
		{"sendToUid_array", func() error { return w.SendToUID([]byte("gc-uids"), "u1", "u2") }},
		{"joinGroup", func() error { return w.JoinGroup(g.id(2), "g2") }},
		{"sendToGroup", func() error { return w.SendToGroup([]byte("gc-grp"), []string{"g1"}, nil) }},
		{"sendToGroup_exclude", func() error {
			return w.SendToGroup([]byte("gc-grp-excl"), []string{"g1", "g2"}, []string{g.id(1)})
		}},
		{"setSession", func() error { return w.SetSession(g.id(2), session("role", "x", "n", int64(1))) }},
		{"updateSession", func() error { return w.UpdateSession(g.id(2), session("n", int64(2), "tags", List("a", "b"))) }},
		{"leaveGroup", func() error { return w.LeaveGroup(g.id(2), "g2") }},
		{"unbindUid", func() error { return w.UnbindUID(g.id(2), "u2") }},
		{"ungroup", func() error { return w.Ungroup("g2") }},
		{"closeClient", func() error { return w.CloseClient(g.id(2), []byte("kicked")) }},
		{"destoryClient", func() error { return w.DestroyClient(g.id(3)) }},
	}
	for _, c := range commands {
		if err := c.call(); err != nil {
			t.Errorf("%s: %v", c.step, err)
			continue
		}
		v := vec(c.step)
		got, _ := g.next().Encode()
		if want := v.bytes(t); !bytes.Equal(got, want) {
			t.Errorf("%s: sent%s\nwant%s", c.step, describe(packets(t, got)), describe(packets(t, want)))
		}
	}

	// closeClient without a message: PHP's null, "N;" with flag 0.
	w.CloseClient(g.id(2), nil)
	if p := g.next(); p.Cmd != CmdKick || p.Flag != 0 || string(p.Body) != "N;" || p.ConnectionID != 2 {
		t.Errorf("closeClient(id, null): got %v flag %d body %q conn %d", p.Cmd, p.Flag, p.Body, p.ConnectionID)
	}
	// sendToAll to a list with exclusions: the excluded ids leave it.
	w.SendToAll([]byte("x"), []string{g.id(1), g.id(2), g.id(3)}, []string{g.id(2)})
	if p := g.next(); string(p.ExtData) != `{"connections":{"1":1,"3":3}}` {
		t.Errorf("sendToAll(only, exclude): ext_data %s", p.ExtData)
	}

	queries := []struct {
		step string
		call func() (any, error)
		want any
	}{
		{"isOnline", func() (any, error) { return w.IsOnline(ctx, g.id(1)) }, true},
		{"isOnline_offline", func() (any, error) { return w.IsOnline(ctx, g.id(255)) }, false},
		{"getAllClientIdCount", func() (any, error) { return w.GetAllClientIDCount(ctx) }, 3},
		{"getClientIdCountByGroup", func() (any, error) { return w.GetClientIDCountByGroup(ctx, "g1") }, 2},
		{"getClientIdByUid", func() (any, error) { return w.GetClientIDByUID(ctx, "u1") }, []string{g.id(1)}},
		{"getSession", func() (any, error) { return w.GetSession(ctx, g.id(1)) }, session("name", "alice")},
		{"getSession_after_update", func() (any, error) { return w.GetSession(ctx, g.id(2)) },
			session("role", "x", "n", int64(2), "tags", List("a", "b"))},
		{"getAllGroupIdList", func() (any, error) { return w.GetAllGroupIDList(ctx) }, []string{"g1", "g2"}},
		{"getAllClientIdList", func() (any, error) { return w.GetAllClientIDList(ctx) }, []string{g.id(1), g.id(2), g.id(3)}},
		// GatewayClient's getUidListByGroup sends getClientIdListByGroup's packet.
		{"getUidListByGroup", func() (any, error) { return w.GetClientIDListByGroup(ctx, "g1") }, []string{g.id(1), g.id(2)}},
		{"getUidByClientId", func() (any, error) { return w.GetUIDByClientID(ctx, g.id(1)) }, "u1"},
	}
	for _, q := range queries {
		got, err := g.query(vec(q.step).Stream, q.call)
		if err != nil {
			t.Errorf("%s: %v", q.step, err)
			continue
		}
		if !reflect.DeepEqual(got, q.want) {
			t.Errorf("%s: got %#v, want %#v", q.step, got, q.want)
		}
	}
}

// TestWorkerSessions checks the session of events: the ext_data the
// Gateway sends, changes sent back with CMD_SET_SESSION only when the
// handler made one, none after OnClose, and, when an event's session is
// not the version the Worker last sent (the Gateway sent the event
// before it ran the SET_SESSION), a fresh copy fetched from the Gateway
// as PHP does.
func TestWorkerSessions(t *testing.T) {
	h := &sessionEvents{seen: make(chan string, 10)}
	_, g := startFakeGateway(t, "127.0.0.1", WorkerConfig{Handler: h})
	ev := func(cmd Cmd, conn uint32, session, body string) {
		t.Helper()
		hd := EventHeader{ID: ClientID{Addr: g.addr, ConnectionID: conn}, Client: netip.MustParseAddrPort("10.0.0.1:5000")}
		p := hd.Event(cmd, []byte(session), []byte(body))
		b, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		g.conn.Write(b)
	}
	seen := func(want string) {
		t.Helper()
		select {
		case got := <-h.seen:
			if got != want {
				t.Errorf("handler saw %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("handler saw nothing, want %q", want)
		}
	}
	setSession := func(what, want string) {
		t.Helper()
		if p := g.next(); p.Cmd != CmdSetSession || p.ConnectionID != 7 || string(p.ExtData) != want {
			t.Errorf("%s: got %v conn %d ext %q, want CMD_SET_SESSION %s", what, p.Cmd, p.ConnectionID, p.ExtData, want)
		}
	}
	one := `a:1:{s:1:"n";i:1;}`
	two := `a:1:{s:1:"n";i:2;}`

	ev(CmdOnConnect, 7, "", "")
	seen("connect 7 session= from 10.0.0.1:5000")
	ev(CmdOnMessage, 7, "", "inc")
	seen("message 7 inc session=")
	setSession("after a change", one)
	// The Gateway's copy is the one sent: no query, no write.
	ev(CmdOnMessage, 7, one, "look")
	seen("message 7 look session=" + one)
	// A stale copy: the Worker asks the Gateway for the session.
	ev(CmdOnMessage, 7, "", "inc")
	nc := acceptOne(t, g.ln)
	if p, err := NewReader(nc).ReadPacket(); err != nil || p.Cmd != CmdGetSessionByClientID || p.ConnectionID != 7 {
		t.Fatalf("stale session: got %v, %v; want CMD_GET_SESSION_BY_CLIENT_ID for 7", p, err)
	}
	nc.Write(AppendReply(nil, []byte(one)))
	nc.Close()
	seen("message 7 inc session=" + one)
	setSession("after the fetched session", two)
	// OnClose: its changes are not sent.
	ev(CmdOnClose, 7, two, "")
	seen("close 7 session=" + two)
	ev(CmdOnConnect, 8, "", "")
	seen("connect 8 session= from 10.0.0.1:5000")
	g.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if p, err := g.r.ReadPacket(); err == nil {
		t.Errorf("after OnClose: got %v %q, want nothing", p.Cmd, p.ExtData)
	} else if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("after OnClose: %v", err)
	}
}

// sessionEvents counts "inc" messages in the session and tells what it
// saw.
type sessionEvents struct {
	NopWorkerHandler
	seen chan string
}

// what is an event's connection id and session.
func what(e *Event) string {
	id, _ := ParseClientID(e.ClientID)
	s := ""
	if e.Session != nil {
		b, _ := Serialize(e.Session)
		s = string(b)
	}
	return fmt.Sprintf("%d session=%s", id.ConnectionID, s)
}

func (h *sessionEvents) OnConnect(e *Event) {
	h.seen <- "connect " + what(e) + " from " + e.Client.String()
}

func (h *sessionEvents) OnMessage(e *Event) {
	id, _ := ParseClientID(e.ClientID)
	h.seen <- fmt.Sprintf("message %d %s %s", id.ConnectionID, e.Message, strings.SplitN(what(e), " ", 2)[1])
	if string(e.Message) == "inc" {
		n, _ := e.Session.Get(StringKey("n"))
		c, _ := n.(int64)
		if e.Session == nil {
			e.Session = &Array{}
		}
		e.Session.Set(StringKey("n"), c+1)
	}
}

func (h *sessionEvents) OnClose(e *Event) {
	h.seen <- "close " + what(e)
	e.Session = nil
}
