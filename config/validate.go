package config

import (
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// Validate checks c and returns every problem found, joined, each an
// [*Error] naming file, line and key when c came from [Load]. It checks
// the configuration as data; whether certificate files load is checked
// where they are used.
func (c *Config) Validate() error {
	p := &problems{src: c.Source}
	for _, name := range slices.Sorted(maps.Keys(c.Limits.ListenerConnections)) {
		key := "limits.listener_connections." + name
		if Listener(name).Order() == len(Listeners()) {
			p.add(key, "no listener is called %q (want one of %v)", name, Listeners())
		} else if c.Limits.ListenerConnections[name] < 0 {
			p.add(key, "must not be negative (0 = no cap of its own)")
		}
	}
	checkAddr(p, "listen.https", c.Listen.HTTPS, false)
	checkAddr(p, "listen.http", c.Listen.HTTP, true)
	if c.Listen.HTTP != "" && c.Listen.HTTP == c.Listen.HTTPS {
		p.add("listen.http", "same address as listen.https")
	}
	switch c.TLS.MinVersion {
	case "1.2", "1.3":
	default:
		p.add("tls.min_version", "want \"1.2\" or \"1.3\", got %q", c.TLS.MinVersion)
	}
	if _, err := c.TrustedPrefixes(); err != nil {
		p.errs = append(p.errs, Errors(err)...)
	}
	checkDurations(p, []namedDuration{
		{"shutdown_timeout", c.ShutdownTimeout},
		{"limits.handshake_timeout", c.Limits.HandshakeTimeout},
		{"limits.read_timeout", c.Limits.ReadTimeout},
		{"limits.keepalive_timeout", c.Limits.KeepaliveTimeout},
		{"limits.dial_timeout", c.Limits.DialTimeout},
		{"limits.response_timeout", c.Limits.ResponseTimeout},
		{"limits.send_timeout", c.Limits.SendTimeout},
	})
	if c.Limits.MaxHeaderBytes < 0 {
		p.add("limits.max_header_bytes", "must not be negative")
	}
	if c.Limits.MaxConnections < 0 {
		p.add("limits.max_connections", "must not be negative")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		p.add("log.format", "want \"text\" or \"json\", got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	c.Gateway.validate(p)
	c.Admin.validate(p)
	if c.DrainTimeout != nil {
		checkDurations(p, []namedDuration{{"drain_timeout", *c.DrainTimeout}})
	}
	addrs := map[string]string{} // listen address → its key
	for _, l := range []struct{ key, addr string }{
		{"listen.https", c.Listen.HTTPS},
		{"listen.http", c.Listen.HTTP},
		{"gateway.text_listen", c.Gateway.TextListen},
		{"gateway.websocket_listen", c.Gateway.WebSocketListen},
		{"gateway.push_api.listen", c.Gateway.PushAPI.Listen},
		{"admin.listen", c.Admin.Listen},
	} {
		if l.addr == "" || strings.HasSuffix(l.addr, ":0") { // port 0: any free port, never a clash
			continue
		}
		if prev, ok := addrs[l.addr]; ok && l.key != "listen.http" { // listen.http is reported above
			p.add(l.key, "same address as %s", prev)
		}
		addrs[l.addr] = l.key
	}
	if len(c.Sites) == 0 {
		p.add("sites", "at least one site is required")
	}
	owner := map[string]string{} // host → key of the site that has it
	for i := range c.Sites {
		c.Sites[i].validate(p, fmt.Sprintf("sites[%d]", i), owner)
	}
	c.checkUpstreamsAreNotGateway(p)
	if c.UsesACME() {
		c.TLS.ACME.validate(p)
	}
	return p.err()
}

func (g *Gateway) validate(p *problems) {
	checkAddr(p, "gateway.text_listen", g.TextListen, true)
	checkAddr(p, "gateway.websocket_listen", g.WebSocketListen, true)
	checkAddr(p, "gateway.push_api.listen", g.PushAPI.Listen, true)
	if g.Node != "" {
		if ap, err := netip.ParseAddrPort(g.Node); err != nil || !ap.Addr().Unmap().Is4() {
			p.add("gateway.node", "want an IPv4 address and port such as 10.0.0.5:2900, got %q", g.Node)
		}
	}
	if g.PingInterval != nil {
		checkDurations(p, []namedDuration{{"gateway.ping_interval", *g.PingInterval}})
		if d := *g.PingInterval; d > 0 && d < time.Second {
			p.add("gateway.ping_interval", "want 0s (off) or at least 1s, got %s", d)
		}
	}
	if g.SendTimeout > 0 && g.SendTimeout < 100*time.Millisecond {
		p.add("gateway.send_timeout", "want at least 100ms, got %s", g.SendTimeout)
	}
	if g.PingNotResponseLimit != nil && *g.PingNotResponseLimit < 0 {
		p.add("gateway.ping_not_response_limit", "must not be negative")
	}
	if g.SendQueue < 0 {
		p.add("gateway.send_queue", "must be positive")
	}
	if g.MaxMessageBytes < 0 {
		p.add("gateway.max_message_bytes", "must be positive")
	}
	checkDurations(p, []namedDuration{
		{"gateway.send_timeout", g.SendTimeout},
		{"gateway.webhook.timeout", g.Webhook.Timeout},
	})
	switch g.Events {
	case "", "chat", "none":
	case "gatewayworker":
		if g.GatewayWorker == nil {
			p.add("gateway.events", "gatewayworker needs the gateway.gatewayworker block")
		}
	case "webhook":
		if g.Webhook.URL == "" {
			p.add("gateway.events", "webhook needs gateway.webhook.url")
		}
	default:
		p.add("gateway.events", "want chat, webhook, gatewayworker or none, got %q", g.Events)
	}
	checkSecret(p, "gateway.push_api", g.PushAPI.Secret, g.PushAPI.SecretFile, g.PushAPI.SecretEnv, false)
	w := g.Webhook
	if w.URL != "" {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add("gateway.webhook.url", "want an http:// or https:// URL, got %q", w.URL)
		}
		checkSecret(p, "gateway.webhook", w.Secret, w.SecretFile, w.SecretEnv, true)
	}
	if w.Retries != nil && (*w.Retries < 0 || *w.Retries > 10) {
		p.add("gateway.webhook.retries", "want 0 to 10, got %d", *w.Retries)
	}
	if gw := g.GatewayWorker; gw != nil {
		gw.validate(p, g)
	}
}

func (gw *GatewayWorker) validate(p *problems, g *Gateway) {
	const key = "gateway.gatewayworker"
	checkAddr(p, key+".register_listen", gw.RegisterListen, true)
	checkAddr(p, key+".register_address", gw.RegisterAddress, true)
	if gw.InnerListen == "" {
		p.add(key+".inner_listen", "required: the address BusinessWorkers and GatewayClient connect to")
	} else {
		checkAddr(p, key+".inner_listen", gw.InnerListen, false)
	}
	if gw.RegisterListen == "" && gw.RegisterAddress == "" {
		p.add(key, "set register_listen (serve a Register) or register_address (use one), or both")
	}
	if gw.LanIP != "" {
		if a, err := netip.ParseAddr(gw.LanIP); err != nil || !a.Unmap().Is4() {
			p.add(key+".lan_ip", "want an IPv4 address such as 10.0.0.5, got %q", gw.LanIP)
		}
	}
	if g.Node != "" {
		p.add("gateway.node", "client ids carry gateway.gatewayworker's lan_ip and inner port; leave gateway.node out")
	}
	n := 0
	for _, v := range []string{gw.SecretKey, gw.SecretKeyFile, gw.SecretKeyEnv} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		p.add(key, "give only one of secret_key, secret_key_file or secret_key_env")
	}
}

func (a *Admin) validate(p *problems) {
	checkAddr(p, "admin.listen", a.Listen, true)
	n := 0
	for _, v := range []string{a.Token, a.TokenFile, a.TokenEnv} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		p.add("admin", "give only one of token, token_file or token_env")
	}
	if a.Listen != "" && n == 0 && !IsLoopback(a.Listen) {
		p.add("admin.listen", "%s is not a loopback address: anyone who reaches it could read status and metrics; set admin.token (or token_file, token_env) or listen on 127.0.0.1", a.Listen)
	}
}

// checkUpstreamsAreNotGateway refuses an upstream that is one of the
// gateway's own non-WebSocket listeners: an upgrade sent to the text
// protocol would arrive as chat lines ("GET /wss HTTP/1.1").
func (c *Config) checkUpstreamsAreNotGateway(p *problems) {
	own := map[string]string{
		c.Gateway.TextListen:     "gateway.text_listen",
		c.Gateway.PushAPI.Listen: "gateway.push_api.listen",
		c.Admin.Listen:           "admin.listen",
	}
	for i, s := range c.Sites {
		for j, r := range s.Routes {
			for k, u := range r.Upstreams {
				pu, err := ParseUpstream(u)
				if err != nil {
					continue
				}
				if key, ok := own[pu.Host]; ok && pu.Host != "" && !strings.HasSuffix(pu.Host, ":0") {
					p.add(fmt.Sprintf("sites[%d].routes[%d].upstreams[%d]", i, j, k),
						"%s is the gateway's %s, which does not speak HTTP; route to the gateway with gateway: true", pu.Host, key)
				}
			}
		}
	}
}

// checkSecret allows at most one of a secret's three sources, and
// requires one when required is set.
func checkSecret(p *problems, key, secret, file, env string, required bool) {
	n := 0
	for _, v := range []string{secret, file, env} {
		if v != "" {
			n++
		}
	}
	switch {
	case n > 1:
		p.add(key, "give only one of secret, secret_file or secret_env")
	case n == 0 && required:
		p.add(key+".secret", "required (or secret_file, or secret_env)")
	}
}

func (s *Site) validate(p *problems, key string, owner map[string]string) {
	if len(s.Hosts) == 0 {
		p.add(key+".hosts", "at least one host is required")
	}
	for j, h := range s.Hosts {
		hk := fmt.Sprintf("%s.hosts[%d]", key, j)
		if err := checkHost(h); err != nil {
			p.add(hk, "%v", err)
			continue
		}
		lh := strings.ToLower(strings.TrimSuffix(h, ".")) // as internal/hostmatch; config imports nothing of ours
		if prev, ok := owner[lh]; ok {
			p.add(hk, "host %q is already served by %s", h, prev)
			continue
		}
		owner[lh] = key
	}
	t := s.TLS
	switch {
	case t.ACME && (t.Internal || t.CertFile != "" || t.KeyFile != ""):
		p.add(key+".tls", "acme excludes internal and cert_file/key_file: give exactly one")
	case t.ACME:
		s.validateACME(p, key)
	case t.Internal && (t.CertFile != "" || t.KeyFile != ""):
		p.add(key+".tls", "internal and cert_file/key_file exclude each other")
	case t.Internal:
	case t.CertFile == "" && t.KeyFile == "":
		p.add(key+".tls", "a certificate is required: cert_file and key_file, internal: true or acme: true")
	case t.CertFile == "":
		p.add(key+".tls.key_file", "key_file needs cert_file")
	case t.KeyFile == "":
		p.add(key+".tls.cert_file", "cert_file needs key_file")
	}
	if s.MaxConnections < 0 {
		p.add(key+".max_connections", "must not be negative")
	}
	if len(s.Routes) == 0 {
		p.add(key+".routes", "at least one route is required")
	}
	paths := map[string]int{}
	for j := range s.Routes {
		rk := fmt.Sprintf("%s.routes[%d]", key, j)
		r := &s.Routes[j]
		r.validate(p, rk)
		if prev, ok := paths[r.Path]; ok {
			p.add(rk+".path", "path %q is already routed by routes[%d]", r.Path, prev)
		} else {
			paths[r.Path] = j
		}
	}
}

func (r *Route) validate(p *problems, key string) {
	switch {
	case r.Path == "":
		p.add(key+".path", "required")
	case !strings.HasPrefix(r.Path, "/"):
		p.add(key+".path", "must start with /, got %q", r.Path)
	case strings.ContainsAny(r.Path, "?#%") || cleanPrefix(r.Path) != r.Path:
		// Requests are decoded and cleaned before matching, so a prefix
		// with escapes, dot segments or double slashes would never match.
		p.add(key+".path", "must be a plain, clean path prefix such as /wss or /static/, got %q", r.Path)
	}
	kinds := 0
	if r.FollowSymlinks && r.Root == "" {
		p.add(key+".follow_symlinks", "applies to root only")
	}
	for _, set := range []bool{len(r.Upstreams) > 0, r.Gateway, r.Root != "", r.Respond != nil, r.ChatPage} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		p.add(key, "give exactly one of upstreams, gateway, root, respond or chat_page")
	}
	if r.Gateway && len(r.Headers) > 0 {
		p.add(key+".headers", "applies to upstreams, not to gateway: true")
	}
	secure := false
	for i, u := range r.Upstreams {
		uk := fmt.Sprintf("%s.upstreams[%d]", key, i)
		pu, err := ParseUpstream(u)
		if err != nil {
			p.add(uk, "%v", err)
			continue
		}
		secure = secure || pu.Scheme == "wss" || pu.Scheme == "https"
		if ws := pu.Scheme == "ws" || pu.Scheme == "wss"; ws != r.IsWebSocketOnly() {
			p.add(uk, "mixes ws/wss and http/https upstreams in one route")
		}
	}
	for i, o := range r.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			p.add(fmt.Sprintf("%s.allowed_origins[%d]", key, i), "%v", err)
		}
	}
	if r.Respond != nil && (r.Respond.Status < 200 || r.Respond.Status > 599) {
		p.add(key+".respond.status", "want a status from 200 to 599, got %d", r.Respond.Status)
	}
	names := make([]string, 0, len(r.Headers))
	for name := range r.Headers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		switch {
		case !validHeaderName(name):
			p.add(key+".headers."+name, "not a valid header name")
		case hopByHop(name) || strings.HasPrefix(strings.ToLower(name), "sec-websocket-"):
			p.add(key+".headers."+name, "%s is managed by the proxy and cannot be set", name)
		case strings.ContainsAny(r.Headers[name], "\r\n\x00"):
			p.add(key+".headers."+name, "a header value cannot contain CR, LF or NUL")
		}
	}
	if t := r.UpstreamTLS; (t.CAFile != "" || t.ServerName != "" || t.InsecureSkipVerify) && !secure {
		p.add(key+".upstream_tls", "needs a wss:// or https:// upstream")
	}
	if r.MaxFails < 0 {
		p.add(key+".max_fails", "must not be negative")
	}
	if r.MaxFrameBytes != nil && *r.MaxFrameBytes < 0 {
		p.add(key+".max_frame_bytes", "must not be negative (0 = no limit)")
	}
	checkDurations(p, []namedDuration{
		{key + ".fail_timeout", r.FailTimeout},
		{key + ".idle_timeout", r.Idle()},
		{key + ".ping_interval", r.PingInterval},
		{key + ".ping_timeout", r.PingTimeout},
	})
	if r.PingTimeout > 0 && r.PingInterval == 0 {
		p.add(key+".ping_timeout", "needs ping_interval")
	} else if r.PingInterval > 0 && r.PingTimeout <= r.PingInterval {
		p.add(key+".ping_timeout", "must be longer than ping_interval (%s)", r.PingInterval)
	}
}

type namedDuration struct {
	key string
	d   time.Duration
}

func checkDurations(p *problems, ds []namedDuration) {
	for _, nd := range ds {
		if nd.d < 0 {
			p.add(nd.key, "must not be negative")
		}
	}
}
