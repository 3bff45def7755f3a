package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wssgate/wssgate/cmd/wssgate/internal/server"
	"github.com/wssgate/wssgate/cmd/wssgate/internal/server/servertest"
	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/gateway/gatewayworker"
	"github.com/wssgate/wssgate/internal/testutil"
)

// gwConfig serves the edge with a gateway route, the text protocol and
// GatewayWorker's Register and inner listener, all on free ports.
const gwConfig = `listen: { https: "127.0.0.1:0", http: "" }
admin: { listen: "127.0.0.1:0" }
gateway:
  text_listen: "127.0.0.1:0"
  gatewayworker:
    register_listen: "127.0.0.1:0"
    inner_listen: "127.0.0.1:0"
    secret_key: %s
sites:
  - hosts: [localhost]
    tls: { internal: true }
    routes:
      - { path: /wss, gateway: true }
`

// registerAddresses asks the Register at addr for the gateways' inner
// addresses, as GatewayClient does (worker_connect).
func registerAddresses(t *testing.T, addr, secret string) ([]string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(gatewayworker.AppendWorkerConnect(nil, secret)); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	msg, err := gatewayworker.ParseRegisterLine(line)
	if err != nil {
		return nil, err
	}
	return msg.Addresses, nil
}

// innerClient is a GatewayClient connection to a gateway's inner port.
type innerClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// dialInner connects to the inner address and authenticates with
// secret (CMD_GATEWAY_CLIENT_CONNECT), as GatewayClient does.
func dialInner(t *testing.T, addr, secret string) *innerClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ic := &innerClient{t: t, c: c, r: bufio.NewReader(c)}
	ic.send(&gatewayworker.Packet{Cmd: gatewayworker.CmdGatewayClientConnect, Flag: gatewayworker.FlagBodyIsScalar,
		Body: fmt.Appendf(nil, `{"secret_key":%q}`, secret)})
	return ic
}

func (ic *innerClient) send(p *gatewayworker.Packet) {
	ic.t.Helper()
	b, err := p.Encode()
	if err != nil {
		ic.t.Fatal(err)
	}
	_ = ic.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := ic.c.Write(b); err != nil {
		ic.t.Fatalf("write %s: %v", p.Cmd, err)
	}
}

// reply reads a query's reply, unserialized.
func (ic *innerClient) reply() (any, error) {
	_ = ic.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := gatewayworker.ReadReply(ic.r, 0)
	if err != nil {
		return nil, err
	}
	return gatewayworker.Unserialize(b)
}

// TestGatewayWorkerThroughTheEdge runs the server with GatewayWorker's
// protocols: the Register it serves announces its inner address, which
// is the one in the status and the address client ids carry; a
// GatewayClient push through the inner port reaches a wss client
// through the edge and a telnet client; a query counts them; events
// with no BusinessWorker are dropped and counted; a wrong secret is
// refused by both the Register and the inner port.
func TestGatewayWorkerThroughTheEdge(t *testing.T) {
	const secret = "S3cr3t-K3y"
	srv, _ := servertest.ServeFile(t, fmt.Sprintf(gwConfig, secret), server.Options{})
	st := srv.Snapshot().Gateway
	if st == nil || st.GatewayWorker == nil {
		t.Fatalf("status has no gatewayworker block: %+v", st)
	}
	inner := st.GatewayWorker.InnerAddr
	if got, want := inner, srv.Addr(config.ListenerGWInner); got != want {
		t.Errorf("announced inner address %s, want the inner listener's %s", got, want)
	}
	if st.Node != inner {
		t.Errorf("client ids carry %s, want the inner address %s", st.Node, inner)
	}
	addrs, err := registerAddresses(t, srv.Addr(config.ListenerGWRegister), secret)
	if err != nil || len(addrs) != 1 || addrs[0] != inner {
		t.Fatalf("the Register answered %v, %v; want [%s]", addrs, err, inner)
	}

	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: srv.Roots()}, HandshakeTimeout: 5 * time.Second}
	ws := gatewaytest.DialWSWith(t, &d, "wss://localhost"+portOf(srv.Addr(config.ListenerHTTPS))+"/wss", nil)
	text := gatewaytest.DialText(t, srv.Addr(config.ListenerGatewayText))
	testutil.WaitFor(t, "both clients in the hub", func() bool { return srv.Snapshot().Gateway.Clients == 2 })

	gc := dialInner(t, inner, secret)
	gc.send(&gatewayworker.Packet{Cmd: gatewayworker.CmdGetClientCountByGroup, Flag: gatewayworker.FlagBodyIsScalar})
	if n, err := gc.reply(); err != nil || n != int64(2) {
		t.Errorf("getAllClientIdCount: got %v, %v; want 2", n, err)
	}
	gc.send(&gatewayworker.Packet{Cmd: gatewayworker.CmdSendToAll, Flag: gatewayworker.FlagBodyIsScalar, Body: []byte("hello from PHP")})
	if got := ws.Read(); got != "hello from PHP" {
		t.Errorf("the wss client got %q, want the GatewayClient push", got)
	}
	if got := text.Read(); got != "hello from PHP" {
		t.Errorf("the text client got %q, want the GatewayClient push", got)
	}

	gw := srv.Snapshot().Gateway.GatewayWorker
	if gw.Workers != 0 || gw.EventsSent != 0 || gw.EventsDropped < 2 || gw.Commands < 2 {
		t.Errorf("gatewayworker status %+v: want no workers, the two connects dropped, the two commands counted", gw)
	}

	// A wrong key: the Register and the inner port close the connection.
	if addrs, err := registerAddresses(t, srv.Addr(config.ListenerGWRegister), "wrong"); err == nil {
		t.Errorf("the Register answered a wrong key with %v", addrs)
	}
	bad := dialInner(t, inner, "wrong")
	bad.send(&gatewayworker.Packet{Cmd: gatewayworker.CmdGetClientCountByGroup, Flag: gatewayworker.FlagBodyIsScalar})
	if n, err := bad.reply(); err == nil {
		t.Errorf("the inner port answered a wrong key with %v", n)
	}
	if gw := srv.Snapshot().Gateway.GatewayWorker; gw.Commands != 2 {
		t.Errorf("commands %d after the refused ones, want still 2", gw.Commands)
	}
	if s := srv.Snapshot(); !strings.Contains(fmt.Sprint(s.Listeners), "gw_inner") || !strings.Contains(fmt.Sprint(s.Listeners), "gw_register") {
		t.Errorf("status listeners %+v lack gw_inner and gw_register", s.Listeners)
	}
}

// TestGatewayWorkerChatThroughTheEdge runs the chat demo as a Go
// BusinessWorker (gatewayworker.Chat on a gatewayworker.Worker) against
// the server: it finds the inner port through the Register the server
// serves, and a wss client through the edge and a telnet client chat as
// they do with the built-in chat.
func TestGatewayWorkerChatThroughTheEdge(t *testing.T) {
	const secret = "S3cr3t-K3y"
	srv, _ := servertest.ServeFile(t, fmt.Sprintf(gwConfig, secret), server.Options{})
	w, err := gatewayworker.NewWorker(gatewayworker.WorkerConfig{
		RegisterAddress: srv.Addr(config.ListenerGWRegister),
		SecretKey:       secret,
		Handler:         gatewayworker.Chat{Logger: testutil.Logger(t)},
		Logger:          testutil.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ran })
	testutil.WaitFor(t, "the BusinessWorker connected", func() bool { return srv.Snapshot().Gateway.GatewayWorker.Workers == 1 })

	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: srv.Roots()}, HandshakeTimeout: 5 * time.Second}
	ws := gatewaytest.DialWSWith(t, &d, "wss://localhost"+portOf(srv.Addr(config.ListenerHTTPS))+"/wss", nil)
	wsID := ws.ReadID("Hello ")
	if got := ws.Read(); got != "online" {
		t.Errorf("the first client got %q, want an empty online list", got)
	}
	if got := ws.Read(); got != wsID+" login" {
		t.Errorf("got %q, want its own login", got)
	}
	text := gatewaytest.DialText(t, srv.Addr(config.ListenerGatewayText))
	textID := text.ReadID("Hello ")
	if got := text.Read(); got != "online "+wsID {
		t.Errorf("the telnet client got %q, want online %s", got, wsID)
	}
	for _, p := range []*gatewaytest.Peer{text, ws} {
		if got := p.Read(); got != textID+" login" {
			t.Errorf("%s got %q, want %s login", p.ID, got, textID)
		}
	}
	text.Send("hi from telnet")
	for _, p := range []*gatewaytest.Peer{ws, text} {
		if got := p.Read(); got != textID+" said hi from telnet" {
			t.Errorf("%s got %q", p.ID, got)
		}
	}
	ws.Send("hi from the browser")
	for _, p := range []*gatewaytest.Peer{ws, text} {
		if got := p.Read(); got != wsID+" said hi from the browser" {
			t.Errorf("%s got %q", p.ID, got)
		}
	}
	ws.Close()
	if got := text.Read(); got != wsID+" logout" {
		t.Errorf("the telnet client got %q, want %s logout", got, wsID)
	}
	// Events so far: the wss client's connect and websocket connect, the
	// telnet client's connect, two messages and the wss client's close.
	if gw := srv.Snapshot().Gateway.GatewayWorker; gw.EventsSent < 6 || gw.EventsDropped != 0 {
		t.Errorf("gatewayworker status %+v: want the 6 events sent, none dropped", gw)
	}
}
