package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/proxy"
)

// gatewayServer is the bundled gateway: the hub, its own listeners (text
// protocol, standalone WebSocket) and the handler edge routes with
// gateway: true reach it through.
type gatewayServer struct {
	cfg     config.Gateway
	log     *slog.Logger
	hub     *gateway.Hub
	handler http.Handler // WebSocket upgrades, for the edge and websocket_listen

	textLn net.Listener // nil when text_listen is ""
	wsLn   net.Listener // nil when websocket_listen is ""
	ws     *http.Server
}

// newGateway builds the hub and opens the gateway's listeners. trusted
// are the proxies whose forwarding headers name a standalone WebSocket
// client's address.
func newGateway(cfg *config.Config, log *slog.Logger) (g *gatewayServer, err error) {
	gc := cfg.Gateway
	interval, limit, data := gc.PingSettings()
	node, err := gatewayNode(gc)
	if err != nil {
		return nil, err
	}
	var handler gateway.Handler
	var chat *gateway.Chat
	switch gc.EventsMode() {
	case "chat":
		chat = &gateway.Chat{}
		handler = chat
	case "none":
		handler = gateway.NopHandler{}
	default:
		return nil, fmt.Errorf("gateway.events: %q is not available yet", gc.EventsMode())
	}
	hub := gateway.New(gateway.Options{
		Node:                 node,
		Handler:              handler,
		PingInterval:         interval,
		PingNotResponseLimit: limit,
		PingData:             data,
		SendQueue:            gc.SendQueue,
		SendTimeout:          gc.SendTimeout,
		MaxMessageBytes:      gc.MaxMessageBytes,
		Logger:               log,
	})
	if chat != nil {
		chat.Hub = hub
	}
	var trusted []netip.Prefix
	for _, s := range cfg.TrustedProxies {
		p, err := config.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %w", err)
		}
		trusted = append(trusted, p)
	}
	g = &gatewayServer{cfg: gc, log: log, hub: hub, handler: hub.WebSocketHandler(proxy.ClientAddrFunc(trusted))}
	defer func() {
		if err != nil {
			g.closeListeners()
		}
	}()
	if gc.TextListen != "" {
		if g.textLn, err = net.Listen("tcp", gc.TextListen); err != nil {
			return nil, fmt.Errorf("gateway.text_listen %s: %w", gc.TextListen, err)
		}
	}
	if gc.WebSocketListen != "" {
		if g.wsLn, err = net.Listen("tcp", gc.WebSocketListen); err != nil {
			return nil, fmt.Errorf("gateway.websocket_listen %s: %w", gc.WebSocketListen, err)
		}
		lim := cfg.Limits
		g.ws = &http.Server{
			Handler:           g.handler,
			ReadHeaderTimeout: lim.HandshakeTimeout,
			IdleTimeout:       lim.KeepaliveTimeout,
			MaxHeaderBytes:    lim.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.With("component", "gateway-ws").Handler(), slog.LevelDebug),
		}
	}
	return g, nil
}

// gatewayNode is the address client ids carry: gateway.node, else the
// push API's address when it is IPv4, else 127.0.0.1:0.
func gatewayNode(gc config.Gateway) (netip.AddrPort, error) {
	if gc.Node != "" {
		ap, err := netip.ParseAddrPort(gc.Node)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("gateway.node: %w", err)
		}
		return ap, nil
	}
	if ap, err := netip.ParseAddrPort(gc.PushAPI.Listen); err == nil && ap.Addr().Unmap().Is4() {
		return ap, nil
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0), nil
}

func (g *gatewayServer) closeListeners() {
	if g == nil {
		return
	}
	for _, ln := range []net.Listener{g.textLn, g.wsLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

// run serves the gateway's listeners and heartbeats until ctx is done.
// It returns the first listener failure, or nil.
func (g *gatewayServer) run(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Go(func() { g.hub.Run(ctx) })
	if g.textLn != nil {
		wg.Go(func() {
			if err := g.hub.ServeText(ctx, g.textLn); err != nil {
				errc <- fmt.Errorf("gateway text listener: %w", err)
			}
		})
	}
	if g.ws != nil {
		wg.Go(func() {
			if err := g.ws.Serve(g.wsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("gateway websocket listener: %w", err)
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// shutdown closes the listeners and sends every client close 1001,
// waiting for them until ctx is done.
func (g *gatewayServer) shutdown(ctx context.Context) error {
	if g.ws != nil {
		_ = g.ws.Shutdown(ctx)
	}
	if g.textLn != nil {
		g.textLn.Close()
	}
	return g.hub.Shutdown(ctx)
}

// readSecret returns the secret given by exactly one of value, a file
// or an environment variable (validation checked that at most one is
// set); "" when none is.
func readSecret(key, value, file, env string) (string, error) {
	switch {
	case value != "":
		return value, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s.secret_file: %w", key, err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("%s.secret_file: %s is empty", key, file)
		}
		return s, nil
	case env != "":
		s := strings.TrimSpace(os.Getenv(env))
		if s == "" {
			return "", fmt.Errorf("%s.secret_env: environment variable %s is not set", key, env)
		}
		return s, nil
	}
	return "", nil
}
