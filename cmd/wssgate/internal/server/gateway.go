package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewayworker"
	"github.com/wssgate/wssgate/gateway/pushapi"
	"github.com/wssgate/wssgate/gateway/webhook"
	"github.com/wssgate/wssgate/proxy"
)

// gatewayServer is the bundled gateway: the hub and the handler edge
// routes with gateway: true reach it through. Its listeners (text
// protocol, standalone WebSocket, push API) are fronts of the server, so
// that a reload can move them.
type gatewayServer struct {
	hub     *gateway.Hub
	handler http.Handler     // WebSocket upgrades from the edge
	hook    *webhook.Handler // nil unless events is webhook
	node    netip.AddrPort   // written into client ids
	gw      *gatewayWorker   // nil unless gateway.gatewayworker is set

	mu   sync.Mutex
	apis []*pushapi.Server // every push API server so far, for the call counts
}

// newGateway builds the hub, whose client ids carry node.
func newGateway(cfg *config.Config, node netip.AddrPort, log *slog.Logger) (g *gatewayServer, err error) {
	gc := cfg.Gateway
	interval, limit, data := gc.PingSettings()
	var gw *gatewayWorker
	if gc.GatewayWorker != nil {
		if gw, err = newGatewayWorker(cfg, node, log); err != nil {
			return nil, err
		}
	}
	var handler gateway.Handler
	var chat *gateway.Chat
	var hook *webhook.Handler
	switch gc.EventsMode() {
	case "chat":
		chat = &gateway.Chat{}
		handler = chat
	case "none":
		handler = gateway.NopHandler{}
	case "gatewayworker":
		handler = gw.inner
	case "webhook":
		w := gc.Webhook
		secret, err := cfg.WebhookSecret()
		if err != nil {
			return nil, err
		}
		retries := w.RetryCount()
		if retries == 0 {
			retries = -1 // webhook.Options: 0 means the default, negative none
		}
		if hook, err = webhook.New(webhook.Options{URL: w.URL, Secret: secret, Timeout: w.Timeout, Retries: retries, Logger: log}); err != nil {
			return nil, fmt.Errorf("gateway.webhook: %w", err)
		}
		handler = hook
		// A client's reader waits for its webhook delivery; a delivery that
		// can outlast the heartbeat limit closes talking clients.
		worst := time.Duration(w.RetryCount()+1)*w.Timeout + time.Duration(w.RetryCount())*2*time.Second
		if interval > 0 && limit > 0 && worst >= interval*time.Duration(limit) {
			log.Warn("a webhook delivery with all its retries can last longer than the heartbeat allows silence; clients may be closed while their event is retried",
				"webhook_worst_case", worst, "heartbeat_limit", interval*time.Duration(limit))
		}
	}
	var sessions gateway.SessionCodec
	if gw != nil {
		sessions = gatewayworker.PHPSessionCodec{} // BusinessWorkers store them as PHP serialize() strings
	}
	hub := gateway.New(gateway.Options{
		SessionCodec:         sessions,
		Node:                 node,
		Handler:              handler,
		PingInterval:         interval,
		PingNotResponseLimit: limit,
		PingData:             data,
		SendQueue:            gc.SendQueue,
		SendTimeout:          gc.SendTimeout,
		MaxMessageBytes:      gc.MaxMessageBytes,
		Logger:               log,
		Detach:               proxy.Detach, // edge connections keep their slot and access line
	})
	if chat != nil {
		chat.Hub = hub
	}
	if hook != nil {
		hook.SetHub(hub)
	}
	// The edge tells the hub each client's address; trusted only matters
	// for the standalone listener, whose front has its own handler.
	return &gatewayServer{hub: hub, handler: hub.WebSocketHandler(proxy.ClientAddrFunc(nil)), hook: hook, node: node, gw: gw}, nil
}

// addAPI records a push API server, whose calls count in stats.
func (g *gatewayServer) addAPI(api *pushapi.Server) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.apis = append(g.apis, api)
}

// apiStats sums the calls of every push API server so far: a reload
// that changes the secret starts a new one.
func (g *gatewayServer) apiStats() pushapi.Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	var sum pushapi.Stats
	for _, a := range g.apis {
		st := a.Stats()
		sum.Calls += st.Calls
		sum.Failed += st.Failed
		sum.Unauthorized += st.Unauthorized
	}
	return sum
}

// run keeps the heartbeats and the send watchdog going, and the
// registration with an external Register, until ctx is done.
func (g *gatewayServer) run(ctx context.Context) {
	var wg sync.WaitGroup
	if g.gw != nil {
		wg.Go(func() { g.gw.run(ctx) })
	}
	g.hub.Run(ctx)
	wg.Wait()
}

// shutdown sends every client close 1001, waiting for them until ctx is
// done. Their close events still go to the webhook until then;
// deliveries still retrying are cut when ctx ends.
func (g *gatewayServer) shutdown(ctx context.Context) error {
	if g.hook != nil {
		stop := context.AfterFunc(ctx, g.hook.Close)
		defer func() {
			stop()
			g.hook.Close()
		}()
	}
	return g.hub.Shutdown(ctx)
}
