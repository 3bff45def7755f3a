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
