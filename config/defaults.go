package config

// This file holds the defaults and the values derived from settled
// configuration: Default, SetDefaults and the accessors run reads.

import (
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Default returns the configuration used for keys a file leaves out.
func Default() Config {
	return Config{
		Listen:          Listen{HTTPS: ":443", HTTP: ":80"},
		TLS:             TLS{MinVersion: "1.2", ACME: ACME{DirectoryURL: LetsEncryptProduction}},
		ShutdownTimeout: 10 * time.Second,
		Limits: Limits{
			HandshakeTimeout: 10 * time.Second,
			ReadTimeout:      60 * time.Second,
			KeepaliveTimeout: 75 * time.Second,
			MaxHeaderBytes:   64 << 10,
			DialTimeout:      5 * time.Second,
			ResponseTimeout:  60 * time.Second,
			SendTimeout:      60 * time.Second,
		},
		Log:   Log{Format: "text", Level: "info"},
		Admin: Admin{Listen: "127.0.0.1:9180"},
		Gateway: Gateway{
			SendQueue:       1024,
			SendTimeout:     10 * time.Second,
			MaxMessageBytes: 1 << 20,
			PushAPI:         PushAPI{Listen: "127.0.0.1:9181"},
			Webhook:         Webhook{Timeout: 5 * time.Second},
		},
	}
}

// Default values of the gateway keys that are pointers, so that an
// explicit zero can be told from a key left out.
const (
	DefaultPingInterval         = 25 * time.Second
	DefaultPingNotResponseLimit = 2
	DefaultPingData             = `{"type":"ping"}`
	DefaultWebhookRetries       = 3
	DefaultDrainTimeout         = 5 * time.Minute
)

// SetDefaults fills zero fields of c and its sites and routes with their
// defaults. [Load] calls it; call it on a Config built in code.
func (c *Config) SetDefaults() {
	d := Default()
	if c.Listen.HTTPS == "" {
		c.Listen.HTTPS = d.Listen.HTTPS
	}
	if c.TLS.MinVersion == "" {
		c.TLS.MinVersion = d.TLS.MinVersion
	}
	if c.TLS.ACME.DirectoryURL == "" {
		c.TLS.ACME.DirectoryURL = d.TLS.ACME.DirectoryURL
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	setDuration(&c.Limits.HandshakeTimeout, d.Limits.HandshakeTimeout)
	setDuration(&c.Limits.ReadTimeout, d.Limits.ReadTimeout)
	setDuration(&c.Limits.KeepaliveTimeout, d.Limits.KeepaliveTimeout)
	setDuration(&c.Limits.DialTimeout, d.Limits.DialTimeout)
	setDuration(&c.Limits.ResponseTimeout, d.Limits.ResponseTimeout)
	setDuration(&c.Limits.SendTimeout, d.Limits.SendTimeout)
	if c.Limits.MaxHeaderBytes == 0 {
		c.Limits.MaxHeaderBytes = d.Limits.MaxHeaderBytes
	}
	if c.Log.Format == "" {
		c.Log.Format = d.Log.Format
	}
	if c.Log.Level == "" {
		c.Log.Level = d.Log.Level
	}
	g := &c.Gateway
	if g.SendQueue == 0 {
		g.SendQueue = d.Gateway.SendQueue
	}
	setDuration(&g.SendTimeout, d.Gateway.SendTimeout)
	if g.MaxMessageBytes == 0 {
		g.MaxMessageBytes = d.Gateway.MaxMessageBytes
	}
	setDuration(&g.Webhook.Timeout, d.Gateway.Webhook.Timeout)
	for i := range c.Sites {
		for j := range c.Sites[i].Routes {
			r := &c.Sites[i].Routes[j]
			if r.MaxFails == 0 {
				r.MaxFails = 1
			}
			setDuration(&r.FailTimeout, 10*time.Second)
			if r.PingInterval > 0 {
				setDuration(&r.PingTimeout, 3*r.PingInterval)
			}
			if r.Respond != nil {
				if r.Respond.Status == 0 {
					r.Respond.Status = 200
				}
				if r.Respond.ContentType == "" {
					r.Respond.ContentType = "text/plain; charset=utf-8"
				}
			}
		}
	}
}

func setDuration(p *time.Duration, def time.Duration) {
	if *p == 0 {
		*p = def
	}
}

// Drain returns DrainTimeout with its default applied.
func (c *Config) Drain() time.Duration {
	if c.DrainTimeout == nil {
		return DefaultDrainTimeout
	}
	return *c.DrainTimeout
}

// PingSettings returns the heartbeat settings with defaults applied.
func (g Gateway) PingSettings() (interval time.Duration, limit int, data string) {
	interval, limit, data = DefaultPingInterval, DefaultPingNotResponseLimit, DefaultPingData
	if g.PingInterval != nil {
		interval = *g.PingInterval
	}
	if g.PingNotResponseLimit != nil {
		limit = *g.PingNotResponseLimit
	}
	if g.PingData != nil {
		data = *g.PingData
	}
	return interval, limit, data
}

// EventsMode returns Events with its default applied.
func (g Gateway) EventsMode() string {
	switch {
	case g.Events != "":
		return g.Events
	case g.GatewayWorker != nil:
		return "gatewayworker"
	case g.Webhook.URL != "":
		return "webhook"
	default:
		return "chat"
	}
}

// RetryCount returns Retries with its default applied.
func (w Webhook) RetryCount() int {
	if w.Retries == nil {
		return DefaultWebhookRetries
	}
	return *w.Retries
}

// UsesGateway reports whether anything reaches the gateway: a route with
// gateway: true, or one of its own listeners.
func (c *Config) UsesGateway() bool {
	if c.Gateway.TextListen != "" || c.Gateway.WebSocketListen != "" || c.Gateway.GatewayWorker != nil {
		return true
	}
	for _, s := range c.Sites {
		for _, r := range s.Routes {
			if r.Gateway {
				return true
			}
		}
	}
	return false
}

// IsWebSocketOnly reports whether the route's upstreams are ws:// or wss://.
func (r Route) IsWebSocketOnly() bool {
	return len(r.Upstreams) > 0 && (hasScheme(r.Upstreams[0], "ws://") || hasScheme(r.Upstreams[0], "wss://"))
}

// AccessEnabled reports whether access lines are logged (default true).
func (l Log) AccessEnabled() bool { return l.Access == nil || *l.Access }

// GatewayNode is the address client ids carry: with gatewayworker set,
// its lan_ip and the port of inner_listen (GatewayClient routes by it);
// else gateway.node, else the push API's address when it is IPv4, else
// 127.0.0.1:0. The error, for an address that does not parse, is
// positioned.
func (c *Config) GatewayNode() (netip.AddrPort, error) {
	g := c.Gateway
	if gw := g.GatewayWorker; gw != nil {
		return gw.InnerAddress(c)
	}
	if g.Node != "" {
		ap, err := netip.ParseAddrPort(g.Node)
		if err != nil {
			return netip.AddrPort{}, c.Errorf("gateway.node", "%v", err)
		}
		return ap, nil
	}
	if ap, err := netip.ParseAddrPort(g.PushAPI.Listen); err == nil && ap.Addr().Unmap().Is4() {
		return ap, nil
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0), nil
}

// InnerAddress is the inner address announced to the Register and
// written into client ids: LanIP (default 127.0.0.1) and the port of
// InnerListen. A port of 0 (any free port, in tests) stays 0 here; the
// server puts the bound port in.
func (gw *GatewayWorker) InnerAddress(c *Config) (netip.AddrPort, error) {
	ip := gw.LanIP
	if ip == "" {
		ip = "127.0.0.1"
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil || !addr.Unmap().Is4() {
		return netip.AddrPort{}, c.Errorf("gateway.gatewayworker.lan_ip", "want an IPv4 address, got %q", gw.LanIP)
	}
	_, port, err := net.SplitHostPort(gw.InnerListen)
	if err != nil {
		return netip.AddrPort{}, c.Errorf("gateway.gatewayworker.inner_listen", "%v", err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, c.Errorf("gateway.gatewayworker.inner_listen", "bad port %q", port)
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(n)), nil
}

// Stream defaults of a route.
const (
	// DefaultIdleTimeout closes a stream from which nothing came either
	// way for this long. nginx's proxy_read_timeout is 60s, which a
	// WebSocket without heartbeats hits; ten minutes outlasts every
	// heartbeat interval in use (GatewayWorker's 25-55s, WeChat's) and
	// still reaps streams whose peers are gone without a word.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultMaxFrameBytes bounds one client frame on a relayed route.
	DefaultMaxFrameBytes = 16 << 20
)

// Idle is the route's idle_timeout with its default: DefaultIdleTimeout
// when it is not set, 0 (never) when it is 0s.
func (r Route) Idle() time.Duration {
	if r.IdleTimeout == nil {
		return DefaultIdleTimeout
	}
	return *r.IdleTimeout
}

// FrameLimit is the route's max_frame_bytes with its default:
// DefaultMaxFrameBytes when it is not set, 0 (no limit) when it is 0.
func (r Route) FrameLimit() int64 {
	if r.MaxFrameBytes == nil {
		return DefaultMaxFrameBytes
	}
	return *r.MaxFrameBytes
}
