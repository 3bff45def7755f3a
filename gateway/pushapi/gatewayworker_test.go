package pushapi

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/gateway/gatewayworker"
	"github.com/wssgate/wssgate/internal/testutil"
)

// gwEnv is the push API beside a GatewayWorker inner listener, on one
// hub that keeps sessions in PHP's form, as wssgate wires them.
type gwEnv struct {
	*env
	in   *gatewayworker.Inner
	addr string // the inner listener's
}

func startGatewayWorker(t *testing.T) *gwEnv {
	t.Helper()
	ln := testutil.Listen(t)
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	in, err := gatewayworker.NewInner(gatewayworker.InnerConfig{Address: addr, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	hub := gateway.New(gateway.Options{Node: addr, Handler: in, SessionCodec: gatewayworker.PHPSessionCodec{}, Logger: testutil.Logger(t)})
	api, err := New(hub, Options{Secret: testSecret, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := in.Serve(ctx, ln, hub); err != nil {
			t.Errorf("Inner.Serve: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() }) // after the hub's shutdown, registered below
	e := &env{Env: gatewaytest.Start(t, hub), api: api, apiURL: apiSrv.URL, client: apiSrv.Client()}
	return &gwEnv{env: e, in: in, addr: ln.Addr().String()}
}

// phpWorker is a BusinessWorker stand-in on the inner listener.
type phpWorker struct {
	t  *testing.T
	nc net.Conn
	r  *gatewayworker.Reader
}

func (e *gwEnv) dialWorker(t *testing.T) *phpWorker {
	t.Helper()
	nc, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	w := &phpWorker{t: t, nc: nc, r: gatewayworker.NewReader(nc)}
	w.send(gatewayworker.Packet{Cmd: gatewayworker.CmdWorkerConnect, Flag: gatewayworker.FlagBodyIsScalar,
		Body: []byte(`{"worker_key":"W:0","secret_key":""}`)})
	poll(t, "the worker", func() bool { return e.in.Stats().Workers == 1 })
	return w
}

func (w *phpWorker) send(p gatewayworker.Packet) {
	w.t.Helper()
	b, err := p.Encode()
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.nc.Write(b); err != nil {
		w.t.Fatal(err)
	}
}

// expect returns the next event, which must be cmd.
func (w *phpWorker) expect(cmd gatewayworker.Cmd) *gatewayworker.Packet {
	w.t.Helper()
	w.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := w.r.ReadPacket()
	if err != nil {
		w.t.Fatalf("worker: reading an event: %v", err)
	}
	if p.Cmd != cmd {
		w.t.Fatalf("worker: got %v, want %v", p.Cmd, cmd)
	}
	return p
}

// poll waits until cond holds, for at most 5s.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestGatewayWorkerSessions: a session a BusinessWorker stores (PHP
// serialized) is JSON to the push API, and one the push API sets or
// updates is what the BusinessWorker gets in the ext_data of the next
// event, serialized.
func TestGatewayWorkerSessions(t *testing.T) {
	e := startGatewayWorker(t)
	w := e.dialWorker(t)
	p := e.DialWS(t)
	conn := w.expect(gatewayworker.CmdOnConnect).ConnectionID
	w.expect(gatewayworker.CmdOnWebSocketConnect)
	id := gatewayworker.ClientID{Addr: netip.MustParseAddrPort(e.addr), ConnectionID: conn}.String()
	byID := func(body string) string { return fmt.Sprintf(`{"client_id":%q%s}`, id, body) }

	// $_SESSION = ['name' => 'alice', 'tags' => ['a', 'b'], 'n' => 1]
	// in Events.php: the BusinessWorker sends CMD_SET_SESSION.
	w.send(gatewayworker.Packet{Cmd: gatewayworker.CmdSetSession, ConnectionID: conn, Flag: gatewayworker.FlagBodyIsScalar,
		ExtData: []byte(`a:3:{s:4:"name";s:5:"alice";s:4:"tags";a:2:{i:0;s:1:"a";i:1;s:1:"b";}s:1:"n";i:1;}`)})
	want := normalize(`{"result":{"name":"alice","tags":["a","b"],"n":1}}`)
	poll(t, "the session over the push API", func() bool { return e.call(t, "getSession", byID("")).body == want })
	if got := e.call(t, "getAllClientSessions", ""); got.body != normalize(fmt.Sprintf(`{"result":{%q:{"name":"alice","tags":["a","b"],"n":1}}}`, id)) {
		t.Errorf("getAllClientSessions: got %d %s", got.status, got.body)
	}

	for _, step := range []struct {
		method, body string
		ext          string // ext_data of the next CMD_ON_MESSAGE
	}{
		{"setSession", `,"session":{"name":"bob","n":2}`, `a:2:{s:1:"n";i:2;s:4:"name";s:3:"bob";}`},
		{"updateSession", `,"session":{"room":"r1","n":3.5}`, `a:3:{s:1:"n";d:3.5;s:4:"name";s:3:"bob";s:4:"room";s:2:"r1";}`},
	} {
		if got := e.call(t, step.method, byID(step.body)); got.body != `{"ok":true}` {
			t.Fatalf("%s: got %d %s", step.method, got.status, got.body)
		}
		p.Send(step.method)
		if m := w.expect(gatewayworker.CmdOnMessage); string(m.ExtData) != step.ext {
			t.Errorf("after %s: the BusinessWorker got session %q, want %q", step.method, m.ExtData, step.ext)
		}
	}

	// CMD_UPDATE_SESSION merges into what the push API set, and the push
	// API sees the merge.
	w.send(gatewayworker.Packet{Cmd: gatewayworker.CmdUpdateSession, ConnectionID: conn, Flag: gatewayworker.FlagBodyIsScalar,
		ExtData: []byte(`a:1:{s:4:"name";s:3:"eve";}`)})
	want = normalize(`{"result":{"n":3.5,"name":"eve","room":"r1"}}`)
	poll(t, "the merged session", func() bool { return e.call(t, "getSession", byID("")).body == want })

	// The last session set over the push API reaches CMD_ON_CLOSE.
	e.call(t, "setSession", byID(`,"session":{"bye":true}`))
	p.Close()
	if c := w.expect(gatewayworker.CmdOnClose); string(c.ExtData) != `a:1:{s:3:"bye";b:1;}` {
		t.Errorf("CMD_ON_CLOSE: session %q", c.ExtData)
	}
}
