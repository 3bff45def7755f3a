package gatewaytest

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/internal/testutil"
)

// shutdownWait bounds the hub's Shutdown when a test ends.
const shutdownWait = 5 * time.Second

// Env is a hub served on loopback: WebSocket on an httptest server and
// the text protocol on a listener, with Run going.
type Env struct {
	Hub      *gateway.Hub
	Server   *httptest.Server // the HTTP side; Server.Certificate() over TLS
	WSURL    string           // Server.URL with ws:// or wss://
	TextAddr string           // the text listener's "127.0.0.1:port"
	// Events records the hub's events when [New] built the hub with a
	// Recorder as its Handler; nil otherwise. A test whose handler wraps
	// a Recorder sets it, for [Env.Connect].
	Events *Recorder
}

// New builds a hub from opts and serves it as [Start] does. A nil
// opts.Handler becomes a new [Recorder]; Env.Events holds it, or
// opts.Handler if that is a *Recorder. A nil opts.Logger becomes one
// that logs through t.
func New(t testing.TB, opts gateway.Options) *Env {
	t.Helper()
	rec, _ := opts.Handler.(*Recorder)
	if opts.Handler == nil {
		rec = &Recorder{}
		opts.Handler = rec
	}
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(t)
	}
	e := Start(t, gateway.New(opts))
	e.Events = rec
	return e
}

// Start serves hub's WebSocket handler on every path of a plain-HTTP
// httptest server; see [Serve].
func Start(t testing.TB, hub *gateway.Hub) *Env {
	t.Helper()
	return Serve(t, hub, httptest.NewServer(hub.WebSocketHandler(nil)))
}

// Serve runs hub (Run, and ServeText on a loopback listener) behind srv,
// a started httptest server whose handler serves the hub's WebSocket
// handler where the test wants it. The hub must be fully wired (its
// Handler told about it) before Serve, since clients may connect at once.
//
// When the test ends, Serve shuts the hub down, failing the test if
// Shutdown returns an error within 5s, waits for Run and ServeText to
// return, and closes srv.
func Serve(t testing.TB, hub *gateway.Hub, srv *httptest.Server) *Env {
	t.Helper()
	t.Cleanup(srv.Close) // runs after the shutdown below
	ln := testutil.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { hub.Run(ctx) })
	wg.Go(func() { hub.ServeText(ctx, ln) })
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), shutdownWait)
		defer scancel()
		if err := hub.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		cancel()
		wg.Wait()
	})
	return &Env{
		Hub:      hub,
		Server:   srv,
		WSURL:    "ws" + strings.TrimPrefix(srv.URL, "http"),
		TextAddr: ln.Addr().String(),
	}
}

// DialWS connects a WebSocket peer to the hub at path /wss, with no
// request header.
func (e *Env) DialWS(t testing.TB) *Peer {
	t.Helper()
	return DialWS(t, e.WSURL+"/wss", nil)
}

// DialText connects a text-protocol peer to the hub.
func (e *Env) DialText(t testing.TB) *Peer {
	t.Helper()
	return DialText(t, e.TextAddr)
}

// Connect dials a peer of the given transport ("websocket" or "text"),
// waits until Events has recorded its OnConnect, and returns it with its
// client id, which it also sets as the peer's ID. Connect clients one at
// a time: the id is the next one Events records.
func (e *Env) Connect(t testing.TB, transport string) (*Peer, string) {
	t.Helper()
	if e.Events == nil {
		t.Fatal("gatewaytest: Connect needs Env.Events")
	}
	n := len(e.Events.Connects())
	var p *Peer
	switch transport {
	case "text":
		p = e.DialText(t)
	case "websocket":
		p = e.DialWS(t)
	default:
		t.Fatalf("gatewaytest: Connect: transport %q, want websocket or text", transport)
	}
	p.ID = e.Events.WaitConnects(t, n+1)[n]
	return p, p.ID
}
