package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const goodYAML = `
listen:
  https: ":8443"
  http: ""
trusted_proxies: ["10.0.0.0/8", "192.0.2.7"]
limits:
  dial_timeout: 2s
sites:
  - hosts: ["chat.example.com"]
    tls: { cert_file: chat.pem, key_file: chat.key }
    routes:
      - path: /wss
        upstreams: ["ws://127.0.0.1:8282", "ws://127.0.0.1:8283"]
        allowed_origins: ["https://chat.example.com"]
        ping_interval: 30s
      - path: /static/
        root: ./public
      - path: /
        upstreams: ["http://127.0.0.1:8000"]
`

func TestParseGood(t *testing.T) {
	cfg, err := Parse("good.yaml", []byte(goodYAML))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := cfg.Listen.HTTPS, ":8443"; got != want {
		t.Errorf("listen.https = %q, want %q", got, want)
	}
	if got := cfg.Listen.HTTP; got != "" {
		t.Errorf("listen.http = %q, want \"\" (explicitly off)", got)
	}
	if got, want := cfg.Limits.DialTimeout, 2*time.Second; got != want {
		t.Errorf("limits.dial_timeout = %v, want %v", got, want)
	}
	if got, want := cfg.Limits.HandshakeTimeout, 10*time.Second; got != want {
		t.Errorf("limits.handshake_timeout = %v, want default %v", got, want)
	}
	r := cfg.Sites[0].Routes[0]
	if !r.IsWebSocketOnly() {
		t.Errorf("route /wss: IsWebSocketOnly = false, want true")
	}
	if got, want := r.PingTimeout, 90*time.Second; got != want {
		t.Errorf("ping_timeout = %v, want default 3×ping_interval %v", got, want)
	}
	if got, want := r.MaxFails, 1; got != want {
		t.Errorf("max_fails = %d, want %d", got, want)
	}
	if got, want := cfg.Source.Line("sites[0].routes[1].root"), 17; got != want {
		t.Errorf("line of routes[1].root = %d, want %d", got, want)
	}
	if !cfg.Log.AccessEnabled() {
		t.Errorf("access log off by default, want on")
	}
}

func TestParseHTTPDefault(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte("sites:\n  - hosts: [a.example]\n    tls: {internal: true}\n    routes: [{path: /, respond: {body: hi}}]\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := cfg.Listen.HTTP, ":80"; got != want {
		t.Errorf("listen.http = %q, want default %q", got, want)
	}
	if got, want := cfg.Sites[0].Routes[0].Respond.Status, 200; got != want {
		t.Errorf("respond.status = %d, want %d", got, want)
	}
}

// site is a valid site header that the broken cases below build on.
const site = "sites:\n  - hosts: [chat.example.com]\n    tls: {internal: true}\n    routes:\n"

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear, in order, as one error line
	}{
		{"unknown top key", "listen:\n  https: \":443\"\nlisen: {}\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:3: lisen: unknown key "lisen"`}},
		{"unknown route key", site + "      - path: /wss\n        upstream: [\"ws://a:1\"]\n",
			[]string{`bad.yaml:6: sites[0].routes[0].upstream: unknown key "upstream"`}},
		{"duration without unit", "shutdown_timeout: 30\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:1: shutdown_timeout: want a duration such as 30s, 5m or 1h30m, got "30"`}},
		{"bad duration string", "limits:\n  dial_timeout: soon\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:2: limits.dial_timeout: want a duration such as 30s, 5m or 1h30m, got "soon"`}},
		{"list where string", "listen:\n  https: [a]\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:2: listen.https: want a string, got a list`}},
		{"several keys on one line", site + "      - { upstreams: \"ws://127.0.0.1:8282\", path: /wss }\n",
			[]string{`bad.yaml:5: sites[0].routes[0].upstreams: want a list of strings, got "ws://12..."`}},
		{"flow mapping, list for a string", "sites:\n  - hosts: [a.example]\n    tls: { cert_file: [a.pem], key_file: b.key }\n    routes: [{path: /, root: .}]\n",
			[]string{`bad.yaml:3: sites[0].tls.cert_file: want a string, got a list`}},
		{"syntax error", "sites:\n  - hosts: [a\n", []string{`bad.yaml:`}},
		{"no sites", "listen: {https: \":443\"}\n", []string{`bad.yaml: sites: at least one site is required`}},
		{"admin on every interface without a token", "admin:\n  listen: \":9180\"\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:2: admin.listen: :9180 is not a loopback address`}},
		{"admin on a public address without a token", "admin: {listen: \"192.0.2.1:9180\"}\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:1: admin.listen: 192.0.2.1:9180 is not a loopback address`}},
		{"admin with two tokens", "admin:\n  token: a\n  token_env: B\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:1: admin: give only one of token, token_file or token_env`}},
		{"admin on the push API's address", "admin: {listen: \"127.0.0.1:9181\"}\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:1: admin.listen: same address as gateway.push_api.listen`}},
		{"negative drain", "drain_timeout: -1s\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:1: drain_timeout: must not be negative`}},
		{"path without slash", site + "      - path: wss\n        upstreams: [\"ws://127.0.0.1:1\"]\n",
			[]string{`bad.yaml:5: sites[0].routes[0].path: must start with /, got "wss"`}},
		{"path with dot segments", site + "      - {path: /a/../b, root: .}\n",
			[]string{`bad.yaml:5: sites[0].routes[0].path: must be a plain, clean path prefix`}},
		{"path with escapes", site + "      - {path: /a%20b, root: .}\n",
			[]string{`bad.yaml:5: sites[0].routes[0].path: must be a plain, clean path prefix`}},
		{"same host with a trailing dot", site + "      - {path: /, root: .}\n  - hosts: [chat.example.com.]\n    tls: {internal: true}\n    routes: [{path: /, root: .}]\n",
			[]string{`bad.yaml:6: sites[1].hosts[0]: host "chat.example.com." is already served by sites[0]`}},
		{"bad scheme", site + "      - path: /wss\n        upstreams:\n          - \"ws://127.0.0.1:1\"\n          - \"tcp://127.0.0.1:2\"\n",
			[]string{`bad.yaml:8: sites[0].routes[0].upstreams[1]: scheme must be ws, wss, http or https, got "tcp://127.0.0.1:2"`}},
		{"mixed families", site + "      - path: /wss\n        upstreams: [\"ws://127.0.0.1:1\", \"http://127.0.0.1:2\"]\n",
			[]string{`bad.yaml:6: sites[0].routes[0].upstreams[1]: mixes ws/wss and http/https upstreams in one route`}},
		{"two kinds", site + "      - path: /\n        root: .\n        upstreams: [\"http://127.0.0.1:2\"]\n",
			[]string{`bad.yaml:5: sites[0].routes[0]: give exactly one of upstreams, gateway, root, respond or chat_page`}},
		{"gateway and upstreams", site + "      - path: /wss\n        gateway: true\n        upstreams: [\"ws://127.0.0.1:1\"]\n",
			[]string{`bad.yaml:5: sites[0].routes[0]: give exactly one of upstreams, gateway, root, respond or chat_page`}},
		{"gateway with headers", site + "      - path: /wss\n        gateway: true\n        headers: {X-A: b}\n",
			[]string{`bad.yaml:7: sites[0].routes[0].headers: applies to upstreams, not to gateway: true`}},
		{"gateway events", "gateway:\n  events: chatty\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:2: gateway.events: want chat, webhook, gatewayworker or none, got "chatty"`}},
		{"gatewayworker events without the block", "gateway:\n  events: gatewayworker\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:2: gateway.events: gatewayworker needs the gateway.gatewayworker block`}},
		{"gatewayworker without inner_listen", "gateway:\n  gatewayworker:\n    register_listen: \"127.0.0.1:1238\"\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:2: gateway.gatewayworker.inner_listen: required: the address BusinessWorkers and GatewayClient connect to`}},
		{"gatewayworker without a register", "gateway:\n  gatewayworker:\n    inner_listen: \"127.0.0.1:2900\"\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:2: gateway.gatewayworker: set register_listen (serve a Register) or register_address (use one), or both`}},
		{"gatewayworker lan_ip not IPv4", "gateway:\n  gatewayworker:\n    inner_listen: \"127.0.0.1:2900\"\n    register_listen: \"127.0.0.1:1238\"\n    lan_ip: \"::1\"\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:5: gateway.gatewayworker.lan_ip: want an IPv4 address such as 10.0.0.5, got "::1"`}},
		{"gatewayworker with node", "gateway:\n  node: \"10.0.0.5:2900\"\n  gatewayworker:\n    inner_listen: \"127.0.0.1:2900\"\n    register_listen: \"127.0.0.1:1238\"\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:2: gateway.node: client ids carry gateway.gatewayworker's lan_ip and inner port; leave gateway.node out`}},
		{"gatewayworker with two secrets", "gateway:\n  gatewayworker:\n    inner_listen: \"127.0.0.1:2900\"\n    register_listen: \"127.0.0.1:1238\"\n    secret_key: a\n    secret_key_env: B\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:2: gateway.gatewayworker: give only one of secret_key, secret_key_file or secret_key_env`}},
		{"webhook events without url", "gateway:\n  events: webhook\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:2: gateway.events: webhook needs gateway.webhook.url`}},
		{"webhook without secret", "gateway:\n  webhook:\n    url: http://127.0.0.1:8000/events\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:2: gateway.webhook.secret: required (or secret_file, or secret_env)`}},
		{"webhook bad url", "gateway:\n  webhook:\n    url: 127.0.0.1:8000\n    secret: s\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:3: gateway.webhook.url: want an http:// or https:// URL, got "127.0.0.1:8000"`}},
		{"two push secrets", "gateway:\n  push_api:\n    secret: a\n    secret_env: B\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:2: gateway.push_api: give only one of secret, secret_file or secret_env`}},
		{"gateway negative limit and bad node", "gateway:\n  ping_not_response_limit: -1\n  node: \"[::1]:2900\"\n" + site + "      - {path: /, root: .}\n",
			[]string{
				`bad.yaml:3: gateway.node: want an IPv4 address and port such as 10.0.0.5:2900, got "[::1]:2900"`,
				`bad.yaml:2: gateway.ping_not_response_limit: must not be negative`,
			}},
		{"upstream is the text port", "gateway:\n  text_listen: \"127.0.0.1:8282\"\n" + site + "      - path: /wss\n        upstreams: [\"ws://127.0.0.1:8282\"]\n",
			[]string{`bad.yaml:8: sites[0].routes[0].upstreams[0]: 127.0.0.1:8282 is the gateway's gateway.text_listen, which does not speak HTTP; route to the gateway with gateway: true`}},
		{"gateway listener clash", "listen:\n  https: \"127.0.0.1:8443\"\ngateway:\n  text_listen: \"127.0.0.1:8443\"\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:4: gateway.text_listen: same address as listen.https`}},
		{"duplicate path", site + "      - {path: /, root: .}\n      - {path: /, root: ..}\n",
			[]string{`bad.yaml:6: sites[0].routes[1].path: path "/" is already routed by routes[0]`}},
		{"bad origin", site + "      - path: /wss\n        upstreams: [\"ws://127.0.0.1:1\"]\n        allowed_origins: [chat.example.com]\n",
			[]string{`bad.yaml:7: sites[0].routes[0].allowed_origins[0]: want an origin such as https://chat.example.com, got "chat.example.com"`}},
		{"bad cidr", "trusted_proxies: [10.0.0.0/33]\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:1: trusted_proxies[0]: not a CIDR: "10.0.0.0/33"`}},
		{"bad min version", "tls:\n  min_version: \"1.1\"\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:2: tls.min_version: want "1.2" or "1.3", got "1.1"`}},
		{"host with port", "sites:\n  - hosts: [\"chat.example.com:443\"]\n    tls: {internal: true}\n    routes: [{path: /, root: .}]\n",
			[]string{`bad.yaml:2: sites[0].hosts[0]: want a host name`}},
		{"host on two sites", site + "      - {path: /, root: .}\n  - hosts: [CHAT.example.com]\n    tls: {internal: true}\n    routes: [{path: /, root: .}]\n",
			[]string{`bad.yaml:6: sites[1].hosts[0]: host "CHAT.example.com" is already served by sites[0]`}},
		{"cert without key", "sites:\n  - hosts: [a.example]\n    tls:\n      cert_file: a.pem\n    routes: [{path: /, root: .}]\n",
			[]string{`bad.yaml:4: sites[0].tls.cert_file: cert_file needs key_file`}},
		{"no certificate", "sites:\n  - hosts: [a.example]\n    routes: [{path: /, root: .}]\n",
			[]string{`bad.yaml:2: sites[0].tls: a certificate is required`}},
		{"upstream_tls on ws", site + "      - path: /wss\n        upstreams: [\"ws://127.0.0.1:1\"]\n        upstream_tls: {server_name: x}\n",
			[]string{`bad.yaml:7: sites[0].routes[0].upstream_tls: needs a wss:// or https:// upstream`}},
		{"ping timeout too short", site + "      - path: /wss\n        upstreams: [\"ws://127.0.0.1:1\"]\n        ping_interval: 30s\n        ping_timeout: 10s\n",
			[]string{`bad.yaml:8: sites[0].routes[0].ping_timeout: must be longer than ping_interval (30s)`}},
		{"managed header", site + "      - path: /\n        upstreams: [\"http://127.0.0.1:1\"]\n        headers: {Upgrade: x}\n",
			[]string{`bad.yaml:7: sites[0].routes[0].headers.Upgrade: Upgrade is managed by the proxy`}},
		{"websocket header", site + "      - path: /\n        upstreams: [\"http://127.0.0.1:1\"]\n        headers: {Sec-WebSocket-Protocol: x}\n",
			[]string{`bad.yaml:7: sites[0].routes[0].headers.Sec-WebSocket-Protocol: Sec-WebSocket-Protocol is managed by the proxy`}},
		{"header value with newline", site + "      - path: /\n        upstreams: [\"http://127.0.0.1:1\"]\n        headers: {X-A: \"a\\nb\"}\n",
			[]string{`bad.yaml:7: sites[0].routes[0].headers.X-A: a header value cannot contain CR, LF or NUL`}},
		{"negative limit", "limits: {max_connections: -1}\n" + site + "      - {path: /, root: .}\n",
			[]string{`bad.yaml:1: limits.max_connections: must not be negative`}},
		{"type and schema problems in one pass", "shutdown_timeout: 30\n" + site + "      - {path: wss, root: .}\n",
			[]string{`bad.yaml:1: shutdown_timeout: want a duration`, `bad.yaml:6: sites[0].routes[0].path: must start with /`}},
		{"several problems at once", "log: {format: xml, level: loud}\n" + site + "      - {path: wss, root: .}\n",
			[]string{`bad.yaml:1: log.format: want "text" or "json", got "xml"`, `bad.yaml:1: log.level: want debug, info, warn or error, got "loud"`, `bad.yaml:6: sites[0].routes[0].path: must start with /`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want errors %q", tt.want)
			}
			got := Errors(err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors %q, want %d", len(got), err, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i].Error(), w) {
					t.Errorf("error %d = %q, want prefix %q", i, got[i], w)
				}
				var ce *Error
				if !errors.As(got[i], &ce) {
					t.Errorf("error %d is %T, want *config.Error", i, got[i])
				}
			}
		})
	}
}

func TestValidateWithoutSource(t *testing.T) {
	cfg := Default()
	cfg.Sites = []Site{{Hosts: []string{"a.example"}, TLS: SiteTLS{Internal: true}, Routes: []Route{{Path: "x", Root: "."}}}}
	cfg.SetDefaults()
	err := cfg.Validate()
	if got, want := err.Error(), `sites[0].routes[0].path: must start with /, got "x"`; got != want {
		t.Errorf("Validate = %q, want %q", got, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("does-not-exist.yaml")
	if err == nil || !strings.Contains(err.Error(), "does-not-exist.yaml") {
		t.Errorf("Load of a missing file = %v, want an error naming the file", err)
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"192.0.2.7", "192.0.2.7/32"},
		{"::1", "::1/128"},
		{"::ffff:127.0.0.1", "127.0.0.1/32"},
	}
	for _, tt := range tests {
		got, err := ParsePrefix(tt.in)
		if err != nil || got.String() != tt.want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestTrustedPrefixes(t *testing.T) {
	parsed := mustParse(t, "trusted_proxies:\n  - 10.0.0.0/8\n  - 192.0.2.7\n  - \"::ffff:127.0.0.1\"\n"+site+"      - {path: /, root: .}\n")
	broken := *parsed // a valid file whose entries went bad afterwards, to check the positions
	broken.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.0/33", "proxy.example.com"}
	tests := []struct {
		name    string
		cfg     *Config
		want    string // the prefixes, space-separated
		wantErr []string
	}{
		{"parsed", parsed, "10.0.0.0/8 192.0.2.7/32 127.0.0.1/32", nil},
		{"none", &Config{}, "", nil},
		{"every bad entry, positioned", &broken, "", []string{
			`c.yaml:3: trusted_proxies[1]: not a CIDR: "10.0.0.0/33"`,
			`c.yaml:4: trusted_proxies[2]: not an IP address or CIDR: "proxy.example.com"`,
		}},
		{"built in code", &Config{TrustedProxies: []string{"10.0.0.1", "bad"}}, "", []string{
			`trusted_proxies[1]: not an IP address or CIDR: "bad"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.TrustedPrefixes()
			var errs []string
			for _, e := range Errors(err) {
				errs = append(errs, e.Error())
			}
			if g, w := strings.Join(errs, "\n"), strings.Join(tt.wantErr, "\n"); g != w {
				t.Errorf("got errors\n%s\nwant\n%s", g, w)
			}
			var ps []string
			for _, p := range got {
				ps = append(ps, p.String())
			}
			if g := strings.Join(ps, " "); g != tt.want {
				t.Errorf("got prefixes %q, want %q", g, tt.want)
			}
			if tt.want == "" && got != nil {
				t.Errorf("got %#v, want nil", got)
			}
		})
	}
}

// TestGatewayDefaults: a key left out takes its default, while an
// explicit zero (heartbeats off, only send, no ping data) is kept.
func TestGatewayDefaults(t *testing.T) {
	const site = "sites:\n  - hosts: [a.example]\n    tls: {internal: true}\n    routes: [{path: /wss, gateway: true}]\n"
	for _, tc := range []struct {
		name, yaml     string
		interval       time.Duration
		limit          int
		data, events   string
		retries, queue int
	}{
		{"left out", site, 25 * time.Second, 2, `{"type":"ping"}`, "chat", 3, 1024},
		{"explicit zeros", "gateway:\n  ping_interval: 0s\n  ping_not_response_limit: 0\n  ping_data: \"\"\n  events: none\n  webhook: {retries: 0}\n" + site, 0, 0, "", "none", 0, 1024},
		{"webhook implied", "gateway:\n  send_queue: 8\n  webhook: {url: \"http://127.0.0.1:1/e\", secret: s}\n" + site, 25 * time.Second, 2, `{"type":"ping"}`, "webhook", 3, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("g.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			g := cfg.Gateway
			interval, limit, data := g.PingSettings()
			if interval != tc.interval || limit != tc.limit || data != tc.data {
				t.Errorf("PingSettings() = %v, %d, %q; want %v, %d, %q", interval, limit, data, tc.interval, tc.limit, tc.data)
			}
			if got := g.EventsMode(); got != tc.events {
				t.Errorf("EventsMode() = %q, want %q", got, tc.events)
			}
			if got := g.Webhook.RetryCount(); got != tc.retries {
				t.Errorf("RetryCount() = %d, want %d", got, tc.retries)
			}
			if g.SendQueue != tc.queue || g.PushAPI.Listen != "127.0.0.1:9181" {
				t.Errorf("send_queue %d, push_api.listen %q", g.SendQueue, g.PushAPI.Listen)
			}
			if !cfg.UsesGateway() {
				t.Errorf("UsesGateway() = false with a gateway route")
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9180": true, "127.1.2.3:1": true, "[::1]:9180": true, "localhost:9180": true,
		":9180": false, "0.0.0.0:9180": false, "[::]:9180": false, "192.0.2.1:9180": false,
		"example.com:9180": false, "[::ffff:127.0.0.1]:1": true, "nonsense": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestAdminPublicWithToken(t *testing.T) {
	cfg, err := Parse("ok.yaml", []byte("admin: {listen: \"0.0.0.0:9180\", token_env: ADMIN_TOKEN}\n"+site+"      - {path: /, root: .}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Listen != "0.0.0.0:9180" || cfg.Drain() != DefaultDrainTimeout {
		t.Errorf("admin %+v, drain %s", cfg.Admin, cfg.Drain())
	}
}

func TestGatewayNode(t *testing.T) {
	tests := []struct {
		node, pushAPI, want string
	}{
		{"10.0.0.5:2900", "127.0.0.1:9000", "10.0.0.5:2900"},
		{"", "127.0.0.1:9000", "127.0.0.1:9000"},
		{"", "[::1]:9000", "127.0.0.1:0"},
		{"", "", "127.0.0.1:0"},
	}
	for _, tt := range tests {
		cfg := Default()
		cfg.Gateway.Node, cfg.Gateway.PushAPI.Listen = tt.node, tt.pushAPI
		got, err := cfg.GatewayNode()
		if err != nil || got.String() != tt.want {
			t.Errorf("node %q, push API %q: got %v, %v; want %s", tt.node, tt.pushAPI, got, err, tt.want)
		}
	}
	cfg := Default()
	cfg.Gateway.Node = "nonsense"
	if _, err := cfg.GatewayNode(); err == nil || !strings.Contains(err.Error(), "gateway.node: ") {
		t.Errorf("a bad node: got %v, want an error naming gateway.node", err)
	}
}

func TestGatewayWorkerSettings(t *testing.T) {
	cfg, err := Parse("gw.yaml", []byte(`gateway:
  gatewayworker:
    register_listen: "127.0.0.1:1238"
    inner_listen: "0.0.0.0:2900"
    lan_ip: "10.0.0.5"
    secret_key_env: WSSGATE_TEST_GW_SECRET
sites:
  - hosts: [a.example]
    tls: { internal: true }
    routes: [{ path: /wss, gateway: true }]
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Gateway.EventsMode(); got != "gatewayworker" {
		t.Errorf("EventsMode: got %q, want gatewayworker", got)
	}
	if node, err := cfg.GatewayNode(); err != nil || node.String() != "10.0.0.5:2900" {
		t.Errorf("GatewayNode: got %v, %v; want 10.0.0.5:2900 (lan_ip and the inner port)", node, err)
	}
	if _, err := cfg.GatewayWorkerSecret(); err == nil || !strings.Contains(err.Error(), "gw.yaml:6: gateway.gatewayworker.secret_key_env: environment variable WSSGATE_TEST_GW_SECRET is not set") {
		t.Errorf("secret from an unset variable: got %v", err)
	}
	if err := cfg.CheckSecrets(); err == nil {
		t.Error("CheckSecrets passed an unset secret_key_env")
	}
	t.Setenv("WSSGATE_TEST_GW_SECRET", " s3cret\n")
	if got, err := cfg.GatewayWorkerSecret(); err != nil || got != "s3cret" {
		t.Errorf("secret: got %q, %v; want s3cret", got, err)
	}
	old := *cfg
	gw := *cfg.Gateway.GatewayWorker
	gw.LanIP = "10.0.0.6"
	cfg.Gateway.GatewayWorker = &gw
	if err := RestartRequired(&old, cfg); err == nil || !strings.Contains(err.Error(), "gateway.gatewayworker") {
		t.Errorf("a new lan_ip: RestartRequired gave %v, want a problem at gateway.gatewayworker", err)
	}
}

func TestRouteStreamDefaults(t *testing.T) {
	zero, mib := time.Duration(0), int64(1<<20)
	tests := []struct {
		route     Route
		idle      time.Duration
		frameSize int64
	}{
		{Route{}, 10 * time.Minute, 16 << 20},
		{Route{IdleTimeout: &zero, MaxFrameBytes: new(int64)}, 0, 0},
		{Route{MaxFrameBytes: &mib}, 10 * time.Minute, 1 << 20},
	}
	for i, tt := range tests {
		if got := tt.route.Idle(); got != tt.idle {
			t.Errorf("%d: Idle() = %s, want %s", i, got, tt.idle)
		}
		if got := tt.route.FrameLimit(); got != tt.frameSize {
			t.Errorf("%d: FrameLimit() = %d, want %d", i, got, tt.frameSize)
		}
	}
}
