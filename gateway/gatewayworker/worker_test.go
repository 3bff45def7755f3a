package gatewayworker

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/internal/testutil"
)

// The Worker against the package's own Register and Inner over a real
// hub on loopback, with WebSocket and text clients.

// echoEvents greets each client with its id, answers each message with
// "echo <message>", and records every event it gets.
type echoEvents struct {
	mu     sync.Mutex
	events []string // "<cmd> <client id>[ <message>]"
}

func (h *echoEvents) note(e *Event, extra string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, strings.TrimSpace(e.Cmd.String()+" "+e.ClientID+" "+extra))
}

// of returns the events recorded for a client.
func (h *echoEvents) of(id string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, ev := range h.events {
		if strings.Contains(ev, " "+id) {
			out = append(out, ev)
		}
	}
	return out
}

func (h *echoEvents) OnConnect(e *Event) {
	h.note(e, "")
	e.Worker.SendToClient(e.ClientID, []byte("Hello "+e.ClientID))
}

func (h *echoEvents) OnWebSocketConnect(e *Event) {
	get, _ := e.Data.Get(StringKey("get"))
	token, _ := get.(*Array).Get(StringKey("token"))
	h.note(e, "token="+scalarString(token))
}

func (h *echoEvents) OnMessage(e *Event) {
	h.note(e, string(e.Message))
	e.Worker.SendToClient(e.ClientID, []byte("echo "+string(e.Message)))
}

func (h *echoEvents) OnClose(e *Event) { h.note(e, "") }

// gatewayWithRegister is an inner listener over a hub, and a Register
// that lists it.
func gatewayWithRegister(t *testing.T, key string) (*innerEnv, *Register, string) {
	t.Helper()
	e := startInner(t, InnerConfig{SecretKey: key, GatewayPort: 8282})
	reg, regAddr := startRegister(t, RegisterConfig{SecretKey: key})
	reg.AddGateway(e.innerAddr)
	return e, reg, regAddr
}

// TestWorkerTwoWorkers runs two Workers against one Gateway: each
// client's events go to one of them and stay there, both get clients,
// and when one Worker stops its clients' events go to the other.
func TestWorkerTwoWorkers(t *testing.T) {
	const key = "S3cr3t-K3y"
	e, _, regAddr := gatewayWithRegister(t, key)
	ha, hb := &echoEvents{}, &echoEvents{}
	_, stopA := startWorker(t, WorkerConfig{RegisterAddress: regAddr, SecretKey: key, WorkerKey: "Test:a", Handler: ha})
	wb, _ := startWorker(t, WorkerConfig{RegisterAddress: regAddr, SecretKey: key, WorkerKey: "Test:b", Handler: hb})
	waitFor(t, "two workers", func() bool { return e.in.Stats().Workers == 2 })
	if got := wb.Gateways(); !slices.Equal(got, []string{e.innerAddr}) {
		t.Errorf("Gateways() = %q, want [%s]", got, e.innerAddr)
	}

	// Six clients, one after the other; each says two things.
	type client struct {
		p   *gatewaytest.Peer
		id  string
		ws  bool
		got *echoEvents // the worker that has it
	}
	var clients []*client
	for i := range 6 {
		c := &client{ws: i%3 != 2}
		if c.ws {
			c.p = gatewaytest.DialWS(t, e.wsURL+"/wss?token=t", nil)
		} else {
			c.p = gatewaytest.DialText(t, e.textAddr)
		}
		c.id = c.p.ReadID("Hello ")
		for _, m := range []string{"m1", "m2"} {
			c.p.Send(m)
			if got := c.p.Read(); got != "echo "+m {
				t.Fatalf("client %d: got %q, want echo %s", i, got, m)
			}
		}
		clients = append(clients, c)
	}
	n := map[*echoEvents]int{}
	for i, c := range clients {
		want := []string{"CMD_ON_CONNECT " + c.id}
		if c.ws {
			want = append(want, "CMD_ON_WEBSOCKET_CONNECT "+c.id+" token=t")
		}
		want = append(want, "CMD_ON_MESSAGE "+c.id+" m1", "CMD_ON_MESSAGE "+c.id+" m2")
		a, b := ha.of(c.id), hb.of(c.id)
		switch {
		case slices.Equal(a, want) && b == nil:
			c.got = ha
		case slices.Equal(b, want) && a == nil:
			c.got = hb
		default:
			t.Fatalf("client %d's events: worker a got %q, worker b got %q; want %q on one of them", i, a, b, want)
		}
		n[c.got]++
	}
	if n[ha] == 0 || n[hb] == 0 {
		t.Fatalf("clients per worker: a %d, b %d; want both used", n[ha], n[hb])
	}
	t.Logf("clients per worker: a %d, b %d", n[ha], n[hb])

	// Worker a goes: its clients' events move to b.
	stopA()
	waitFor(t, "worker a's departure", func() bool { return e.in.Stats().Workers == 1 })
	for i, c := range clients {
		c.p.Send("m3")
		if got := c.p.Read(); got != "echo m3" {
			t.Fatalf("client %d after worker a left: got %q, want echo m3", i, got)
		}
		if last := hb.of(c.id); len(last) == 0 || last[len(last)-1] != "CMD_ON_MESSAGE "+c.id+" m3" {
			t.Errorf("client %d: worker b's events %q, want m3 last", i, last)
		}
	}
	for _, c := range clients {
		if c.got == ha {
			c.p.Close()
			waitFor(t, "the close at worker b", func() bool {
				ev := hb.of(c.id)
				return len(ev) > 0 && ev[len(ev)-1] == "CMD_ON_CLOSE "+c.id
			})
			break
		}
	}
}

// TestWorkerQueriesAndCommands runs the Worker's commands and queries
// against a real hub, and follows the Register: a Gateway listed after
// the Worker started is connected to.
func TestWorkerQueriesAndCommands(t *testing.T) {
	e := startInner(t, InnerConfig{})
	reg, regAddr := startRegister(t, RegisterConfig{})
	w, _ := startWorker(t, WorkerConfig{RegisterAddress: regAddr, Handler: &echoEvents{}})
	// The Register lists nothing yet; then the Gateway comes.
	time.Sleep(50 * time.Millisecond)
	if n := e.in.Stats().Workers; n != 0 {
		t.Fatalf("workers before the gateway registered: %d", n)
	}
	reg.AddGateway(e.innerAddr)
	waitFor(t, "the worker", func() bool { return e.in.Stats().Workers == 1 })

	ctx := context.Background()
	a := gatewaytest.DialWS(t, e.wsURL+"/?token=x", nil)
	idA := a.ReadID("Hello ")
	b := gatewaytest.DialText(t, e.textAddr)
	idB := b.ReadID("Hello ")

	if err := w.BindUID(idA, "u1"); err != nil {
		t.Fatal(err)
	}
	w.JoinGroup(idA, "g1")
	w.JoinGroup(idB, "g1")
	w.JoinGroup(idB, "g2")
	waitFor(t, "the groups", func() bool { n, _ := w.GetClientIDCountByGroup(ctx, "g1"); return n == 2 })

	check := func(what string, got, want any, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		} else if !equalAny(got, want) {
			t.Errorf("%s: got %v, want %v", what, got, want)
		}
	}
	ids, err := w.GetAllClientIDList(ctx)
	slices.Sort(ids)
	want := []string{idA, idB}
	slices.Sort(want)
	check("GetAllClientIDList", ids, want, err)
	n, err := w.GetAllClientIDCount(ctx)
	check("GetAllClientIDCount", n, 2, err)
	on, err := w.IsOnline(ctx, idA)
	check("IsOnline", on, true, err)
	uidIDs, err := w.GetClientIDByUID(ctx, "u1")
	check("GetClientIDByUID", uidIDs, []string{idA}, err)
	uid, err := w.GetUIDByClientID(ctx, idA)
	check("GetUIDByClientID", uid, "u1", err)
	uid, err = w.GetUIDByClientID(ctx, idB)
	check("GetUIDByClientID without uid", uid, "", err)
	g2, err := w.GetClientIDListByGroup(ctx, "g2")
	check("GetClientIDListByGroup", g2, []string{idB}, err)
	groups, err := w.GetAllGroupIDList(ctx)
	slices.Sort(groups)
	check("GetAllGroupIDList", groups, []string{"g1", "g2"}, err)

	// Sends.
	w.SendToGroup([]byte("to g1 but b"), []string{"g1"}, []string{idB})
	if got := a.Read(); got != "to g1 but b" {
		t.Errorf("a got %q", got)
	}
	w.SendToUID([]byte("to u1"), "u1")
	if got := a.Read(); got != "to u1" {
		t.Errorf("a got %q", got)
	}
	w.SendToAll([]byte("to all but a"), nil, []string{idA})
	if got := b.Read(); got != "to all but a" {
		t.Errorf("b got %q", got)
	}
	w.SendToAll([]byte("to all"), nil, nil)
	for _, p := range []*gatewaytest.Peer{a, b} {
		if got := p.Read(); got != "to all" {
			t.Errorf("%s got %q, want to all", p.ID, got)
		}
	}

	// Sessions.
	s := &Array{}
	s.Set(StringKey("name"), "bob")
	w.SetSession(idB, s)
	upd := &Array{}
	upd.Set(StringKey("age"), int64(3))
	w.UpdateSession(idB, upd)
	waitFor(t, "the session", func() bool {
		got, err := w.GetSession(ctx, idB)
		b, _ := Serialize(got)
		return err == nil && string(b) == `a:2:{s:4:"name";s:3:"bob";s:3:"age";i:3;}`
	})
	empty, err := w.GetSession(ctx, idA)
	check("GetSession without a session", empty.Len(), 0, err)

	// Close with a last message.
	w.CloseClient(idB, []byte("bye"))
	if got := b.Read(); got != "bye" {
		t.Errorf("b got %q, want bye", got)
	}
	b.Close() // the hub waits for the client's side of the close
	waitFor(t, "b's departure", func() bool { on, _ := w.IsOnline(ctx, idB); return !on })
	gone, err := w.GetSession(ctx, idB)
	check("GetSession of a client that left", gone == nil, true, err)
	if err := w.SendToClient("nothex", nil); !errors.Is(err, ErrBadClientID) {
		t.Errorf("SendToClient(bad id) = %v, want ErrBadClientID", err)
	}
	other := ClientID{Addr: netip.MustParseAddrPort("10.9.9.9:1"), ConnectionID: 1}.String()
	if err := w.SendToClient(other, []byte("x")); !errors.Is(err, ErrNoGateway) {
		t.Errorf("SendToClient(id of an unknown gateway) = %v, want ErrNoGateway", err)
	}
}

// TestWorkerSecretKey: a Worker with a wrong or missing key is refused
// by the Register (it gets no addresses) and by the Gateway's inner
// port (no events reach it, and its queries fail).
func TestWorkerSecretKey(t *testing.T) {
	const key = "S3cr3t-K3y"
	for _, bad := range []string{"wrong", ""} {
		t.Run("register/key="+bad, func(t *testing.T) {
			e, _, regAddr := gatewayWithRegister(t, key)
			logs := &testutil.LockedBuffer{}
			w, _ := startWorker(t, WorkerConfig{RegisterAddress: regAddr, SecretKey: bad, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			waitFor(t, "the refusal", func() bool { return strings.Contains(logs.String(), "wrong secret key?") })
			if got := w.Addresses(); len(got) != 0 {
				t.Errorf("addresses from a register that refused: %q", got)
			}
			if n := e.in.Stats().Workers; n != 0 {
				t.Errorf("workers: %d, want 0", n)
			}
		})
		t.Run("inner/key="+bad, func(t *testing.T) {
			// The Register takes the bad key; the Gateway does not.
			e := startInner(t, InnerConfig{SecretKey: key})
			reg, regAddr := startRegister(t, RegisterConfig{SecretKey: bad})
			reg.AddGateway(e.innerAddr)
			logs := &testutil.LockedBuffer{}
			h := &echoEvents{}
			w, _ := startWorker(t, WorkerConfig{RegisterAddress: regAddr, SecretKey: bad, Handler: h, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			waitFor(t, "the addresses", func() bool { return len(w.Addresses()) == 1 })
			waitFor(t, "the refusal", func() bool { return strings.Contains(logs.String(), "refused the worker") })
			p := gatewaytest.DialText(t, e.textAddr)
			waitFor(t, "the dropped event", func() bool { return e.in.Stats().EventsDropped >= 1 })
			if _, err := p.ReadErr(100 * time.Millisecond); err == nil {
				t.Errorf("the client got a greeting from a refused worker")
			}
			if n := e.in.Stats().Workers; n != 0 {
				t.Errorf("workers: %d, want 0", n)
			}
			if _, err := w.GetAllClientIDCount(context.Background()); !errors.Is(err, ErrSecretKey) {
				t.Errorf("query with the wrong key: %v, want ErrSecretKey", err)
			}
		})
	}
}

// TestWorkerRunTwice: a second Run while the first runs fails at once.
func TestWorkerRunTwice(t *testing.T) {
	_, regAddr := startRegister(t, RegisterConfig{})
	w, _ := startWorker(t, WorkerConfig{RegisterAddress: regAddr})
	waitFor(t, "Run", func() bool { return w.running.Load() })
	if err := w.Run(context.Background()); err == nil {
		t.Error("second Run: got nil, want an error")
	}
	if _, err := NewWorker(WorkerConfig{}); err == nil {
		t.Error("NewWorker without a register address: got nil, want an error")
	}
}

func equalAny(a, b any) bool {
	switch a := a.(type) {
	case []string:
		return slices.Equal(a, b.([]string))
	}
	return a == b
}

// TestWorkerFollowsRegister: the Worker reconnects to a Gateway the
// Register still lists, not to one it dropped, and connects again when
// the Register lists it again.
func TestWorkerFollowsRegister(t *testing.T) {
	reg, regAddr := startRegister(t, RegisterConfig{})
	gwLn := testutil.Listen(t)
	addr := gwLn.Addr().String()
	remove := reg.AddGateway(addr)
	w, _ := startWorker(t, WorkerConfig{RegisterAddress: regAddr})
	expectWorker := func(what string) net.Conn {
		t.Helper()
		nc := acceptOne(t, gwLn)
		if p, err := NewReader(nc).ReadPacket(); err != nil || p.Cmd != CmdWorkerConnect {
			t.Fatalf("%s: got %v, %v; want CMD_WORKER_CONNECT", what, p, err)
		}
		return nc
	}
	noWorker := func(what string) {
		t.Helper()
		gwLn.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond)) // 10 retry delays
		if nc, err := gwLn.Accept(); err == nil {
			nc.Close()
			t.Fatalf("%s: the worker connected", what)
		}
	}

	nc := expectWorker("listed")
	nc.Close()
	nc = expectWorker("still listed, connection closed")
	remove()
	waitFor(t, "the new list", func() bool { return len(w.Addresses()) == 0 })
	if got := w.Gateways(); !slices.Equal(got, []string{addr}) {
		t.Errorf("Gateways() after the Register dropped it: %q, want the open connection kept", got)
	}
	nc.Close()
	noWorker("dropped by the register")
	waitFor(t, "the closed connection", func() bool { return len(w.Gateways()) == 0 })
	reg.AddGateway(addr)
	expectWorker("listed again")
}
