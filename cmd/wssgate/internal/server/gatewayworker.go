package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/gateway/gatewayworker"
	"github.com/wssgate/wssgate/status"
)

// gatewayWorker is the gateway's GatewayWorker side: the inner listener
// BusinessWorkers and GatewayClient connect to, the Register wssgate
// serves, and the registration with an external Register. Its
// listeners are endpoints of the server.
type gatewayWorker struct {
	inner    *gatewayworker.Inner
	register *gatewayworker.Register       // nil unless register_listen is set
	client   *gatewayworker.RegisterClient // nil unless register_address is set
	addr     netip.AddrPort                // the inner address announced
}

// newGatewayWorker builds the GatewayWorker side for the inner address
// addr (lan_ip and the inner listener's bound port).
func newGatewayWorker(cfg *config.Config, addr netip.AddrPort, log *slog.Logger) (*gatewayWorker, error) {
	gc := cfg.Gateway.GatewayWorker
	secret, err := cfg.GatewayWorkerSecret()
	if err != nil {
		return nil, err
	}
	inner, err := gatewayworker.NewInner(gatewayworker.InnerConfig{Address: addr, SecretKey: secret, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("gateway.gatewayworker: %w", err)
	}
	gw := &gatewayWorker{inner: inner, addr: addr}
	if gc.RegisterListen != "" {
		gw.register = gatewayworker.NewRegister(gatewayworker.RegisterConfig{SecretKey: secret, Logger: log})
		gw.register.AddGateway(addr.String()) // as long as the process lives
	}
	if gc.RegisterAddress != "" {
		gw.client, err = gatewayworker.NewRegisterClient(gatewayworker.RegisterClientConfig{
			RegisterAddress: gc.RegisterAddress, Address: addr.String(), SecretKey: secret, Logger: log})
		if err != nil {
			return nil, cfg.Errorf("gateway.gatewayworker.register_address", "%v", err)
		}
	}
	return gw, nil
}

// run keeps the gateway registered with the external Register, if one
// is configured, until ctx is done.
func (gw *gatewayWorker) run(ctx context.Context) {
	if gw.client != nil {
		gw.client.Run(ctx)
	}
}

// specs lists the endpoints of the Register and the inner listener.
func (gw *gatewayWorker) specs(cfg *config.Config, hub gatewayworker.Hub) []endpointSpec {
	gc := cfg.Gateway.GatewayWorker
	specs := []endpointSpec{{name: config.ListenerGWInner, addr: gc.InnerListen, build: func() *endpoint {
		ctx, cancel := context.WithCancel(context.Background())
		return ctxEndpoint(cancel, func(l net.Listener) error { return gw.inner.Serve(ctx, l, hub) })
	}}}
	if gc.RegisterListen != "" {
		specs = append(specs, endpointSpec{name: config.ListenerGWRegister, addr: gc.RegisterListen, build: func() *endpoint {
			ctx, cancel := context.WithCancel(context.Background())
			return ctxEndpoint(cancel, func(l net.Listener) error { return gw.register.Serve(ctx, l) })
		}})
	}
	return specs
}

// status is the GatewayWorker block of status.
func (gw *gatewayWorker) status() *status.GatewayWorker {
	st := gw.inner.Stats()
	return &status.GatewayWorker{InnerAddr: gw.addr.String(), Workers: st.Workers, EventsSent: st.EventsSent,
		EventsDropped: st.EventsDropped, Commands: st.Commands, BadPackets: st.BadPackets}
}

// innerAddress is the inner address for cfg: lan_ip and the port of
// inner_listen, which it opens on sockets first when it asks for any
// free port (0), so that client ids carry the bound one.
func innerAddress(cfg *config.Config, open func(name config.Listener, addr string) (net.Addr, error)) (netip.AddrPort, error) {
	gc := cfg.Gateway.GatewayWorker
	addr, err := gc.InnerAddress(cfg)
	if err != nil || addr.Port() != 0 {
		return addr, err
	}
	bound, err := open(config.ListenerGWInner, gc.InnerListen)
	if err != nil {
		return netip.AddrPort{}, cfg.Errorf(config.ListenerGWInner.Key(), "%v", err)
	}
	ap, err := netip.ParseAddrPort(bound.String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("gateway.gatewayworker.inner_listen: bound to %s: %w", bound, err)
	}
	return netip.AddrPortFrom(addr.Addr(), ap.Port()), nil
}
