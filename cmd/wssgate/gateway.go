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
	"time"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/pushapi"
	"github.com/wssgate/wssgate/gateway/webhook"
	"github.com/wssgate/wssgate/proxy"
)

// gatewayServer is the bundled gateway: the hub, its own listeners (text
// protocol, standalone WebSocket) and the handler edge routes with
// gateway: true reach it through.
type gatewayServer struct {
	hub     *gateway.Hub
	handler http.Handler // WebSocket upgrades, for the edge and websocket_listen

	textLn net.Listener // nil when text_listen is ""
	wsLn   net.Listener // nil when websocket_listen is ""
	ws     *http.Server
	apiLn  net.Listener // nil when the push API is off
	api    *pushapi.Server
	hook   *webhook.Handler // nil unless events is webhook
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
	var hook *webhook.Handler
	switch gc.EventsMode() {
	case "chat":
		chat = &gateway.Chat{}
		handler = chat
	case "none":
		handler = gateway.NopHandler{}
	case "webhook":
		w := gc.Webhook
		secret, err := readSecret("gateway.webhook", w.Secret, w.SecretFile, w.SecretEnv)
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
		Hold:                 proxy.Hold, // edge connections keep their slot and access line
	})
	if chat != nil {
		chat.Hub = hub
	}
	if hook != nil {
		hook.SetHub(hub)
	}
	var trusted []netip.Prefix
	for _, s := range cfg.TrustedProxies {
		p, err := config.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %w", err)
		}
		trusted = append(trusted, p)
	}
	g = &gatewayServer{hub: hub, handler: hub.WebSocketHandler(proxy.ClientAddrFunc(trusted)), hook: hook}
	defer func() {
		if err != nil {
			g.closeListeners()
		}
	}()
	if p := gc.PushAPI; p.Listen != "" {
		secret, err := readSecret("gateway.push_api", p.Secret, p.SecretFile, p.SecretEnv)
		if err != nil {
			return nil, err
		}
		if secret == "" {
			log.Info("push API off: set gateway.push_api.secret, secret_file or secret_env to turn it on")
		} else {
			if g.api, err = pushapi.New(hub, pushapi.Options{Secret: secret, Logger: log}); err != nil {
				return nil, fmt.Errorf("gateway.push_api: %w", err)
			}
			if g.apiLn, err = net.Listen("tcp", p.Listen); err != nil {
				return nil, fmt.Errorf("gateway.push_api.listen %s: %w", p.Listen, err)
			}
		}
	}
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
			ReadTimeout:       lim.ReadTimeout, // cleared when the upgrade hijacks the connection
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
	for _, ln := range []net.Listener{g.textLn, g.wsLn, g.apiLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

// run serves the gateway's listeners and heartbeats until ctx is done.
// It returns the first listener failure, or nil.
func (g *gatewayServer) run(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 4)
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
	if g.api != nil {
		wg.Go(func() {
			if err := g.api.Serve(ctx, g.apiLn); err != nil {
				errc <- fmt.Errorf("push API listener: %w", err)
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// shutdown closes the listeners and sends every client close 1001,
// waiting for them until ctx is done. Their close events still go to the
// webhook until then; deliveries still retrying are cut when ctx ends.
func (g *gatewayServer) shutdown(ctx context.Context) error {
	// The standalone listener's Shutdown can wait seconds for a
	// connection that has sent nothing yet: the hub's clients must not
	// wait for it to hear 1001.
	var wg sync.WaitGroup
	defer wg.Wait()
	if g.ws != nil {
		wg.Go(func() { _ = g.ws.Shutdown(ctx) })
	}
	if g.textLn != nil {
		g.textLn.Close()
	}
	if g.hook != nil {
		stop := context.AfterFunc(ctx, g.hook.Close)
		defer func() {
			stop()
			g.hook.Close()
		}()
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

// secretProblems reads the gateway's secrets as run would, so that
// validate reports a missing file or unset variable with its line.
func secretProblems(cfg *config.Config) error {
	if !cfg.UsesGateway() {
		return nil
	}
	var errs []error
	check := func(key, value, file, env string) {
		if _, err := readSecret(key, value, file, env); err != nil {
			sub := "secret_file"
			if env != "" {
				sub = "secret_env"
			}
			ce := &config.Error{Key: key + "." + sub, Msg: strings.TrimPrefix(err.Error(), key+"."+sub+": ")}
			if cfg.Source != nil {
				ce.File, ce.Line = cfg.Source.File, cfg.Source.Line(ce.Key)
			}
			errs = append(errs, ce)
		}
	}
	g := cfg.Gateway
	if g.PushAPI.Listen != "" {
		check("gateway.push_api", g.PushAPI.Secret, g.PushAPI.SecretFile, g.PushAPI.SecretEnv)
	}
	if g.EventsMode() == "webhook" {
		check("gateway.webhook", g.Webhook.Secret, g.Webhook.SecretFile, g.Webhook.SecretEnv)
	}
	return errors.Join(errs...)
}
