package config

import (
	"strings"
	"testing"
)

// restartBase is the running configuration the RestartRequired cases
// change: an ACME site, the gateway with a text listener and a push API.
const restartBase = `listen: { https: "127.0.0.1:8443", http: "127.0.0.1:8080" }
log:
  format: text
  level: info
tls:
  min_version: "1.2"
  acme:
    email: admin@example.com
admin: { listen: "127.0.0.1:9180" }
gateway:
  text_listen: "127.0.0.1:2347"
  ping_interval: 25s
  push_api:
    listen: "127.0.0.1:9181"
    secret: one
sites:
  - hosts: [chat.example.com]
    tls: { acme: true }
    routes:
      - { path: /wss, gateway: true }
      - { path: /, respond: { body: one } }
`

// upgrade is the end of every RestartRequired problem.
const upgrade = "; a reload cannot apply it: run wssgate upgrade (open connections stay on the old process until they end)"

func TestRestartRequired(t *testing.T) {
	// edit returns a function that replaces old with new in a configuration.
	edit := func(pairs ...string) func(string) string {
		return func(s string) string {
			for i := 0; i+1 < len(pairs); i += 2 {
				if !strings.Contains(s, pairs[i]) {
					t.Fatalf("the configuration has no %q to replace", pairs[i])
				}
				s = strings.Replace(s, pairs[i], pairs[i+1], 1)
			}
			return s
		}
	}
	// gatewayKey adds lines under gateway:, at line 13.
	gatewayKey := func(lines string) func(string) string {
		return edit("  ping_interval: 25s\n", "  ping_interval: 25s\n"+lines)
	}
	internal := edit("tls: { acme: true }", "tls: { internal: true }")(restartBase)
	noGateway := edit("      - { path: /wss, gateway: true }\n", "", "  text_listen: \"127.0.0.1:2347\"\n", "")(restartBase)
	twoHosts := edit("hosts: [chat.example.com]", "hosts: [chat.example.com, www.example.com]")(restartBase)
	tests := []struct {
		name string
		from string // the running configuration; "" means restartBase
		edit func(string) string
		want []string // every problem, in order; nil when a reload applies it all
	}{
		// Keys that need an upgrade.
		{"tls.min_version", "", edit(`min_version: "1.2"`, `min_version: "1.3"`),
			[]string{`c.yaml:6: tls.min_version: changed from "1.2" to "1.3"` + upgrade}},
		{"tls.acme.email", "", edit("admin@example.com", "ops@example.com"),
			[]string{`c.yaml:8: tls.acme.email: changed` + upgrade}},
		{"tls.acme.directory_url", "", edit("    email: admin@example.com\n", "    email: admin@example.com\n    directory_url: https://acme-staging-v02.api.letsencrypt.org/directory\n"),
			[]string{`c.yaml:9: tls.acme.directory_url: changed` + upgrade}},
		{"tls.acme.cache_dir", "", edit("    email: admin@example.com\n", "    email: admin@example.com\n    cache_dir: /var/lib/wssgate/acme\n"),
			[]string{`c.yaml:9: tls.acme.cache_dir: changed` + upgrade}},
		{"tls.acme.eab_kid and eab_hmac_key", "", edit("    email: admin@example.com\n", "    email: admin@example.com\n    eab_kid: kid\n    eab_hmac_key: c2VjcmV0\n"),
			[]string{`c.yaml:9: tls.acme.eab_kid: changed` + upgrade, `c.yaml:10: tls.acme.eab_hmac_key: changed` + upgrade}},
		{"tls.acme.ca_root", "", edit("    email: admin@example.com\n", "    email: admin@example.com\n    ca_root: /etc/wssgate/ca.pem\n"),
			[]string{`c.yaml:9: tls.acme.ca_root: changed` + upgrade}},
		{"tls.acme turned on for a site", internal, nil,
			[]string{`c.yaml:18: sites[0].tls.acme: host chat.example.com is new to ACME` + upgrade}},
		{"a new ACME host", "", edit("hosts: [chat.example.com]", "hosts: [chat.example.com, www.example.com]"),
			[]string{`c.yaml:18: sites[0].tls.acme: host www.example.com is new to ACME` + upgrade}},
		{"a new ACME site", "", func(s string) string {
			return s + "  - hosts: [api.example.com]\n    tls: { acme: true }\n    routes: [{ path: /, respond: { body: api } }]\n"
		}, []string{`c.yaml:23: sites[1].tls.acme: host api.example.com is new to ACME` + upgrade}},
		{"log.format", "", edit("format: text", "format: json"),
			[]string{`c.yaml:3: log.format: changed from "text" to "json"` + upgrade}},
		{"log.access", "", edit("  level: info\n", "  level: info\n  access: false\n"),
			[]string{`c.yaml:5: log.access: changed` + upgrade}},
		{"log.access_file", "", edit("  level: info\n", "  level: info\n  access_file: /var/log/wssgate/access.log\n"),
			[]string{`c.yaml:5: log.access_file: changed from "" to "/var/log/wssgate/access.log"` + upgrade}},
		{"gateway turned off", "", func(string) string { return noGateway },
			[]string{`c.yaml:10: gateway: the bundled gateway is turned on or off` + upgrade}},
		{"gateway turned on", noGateway, nil,
			[]string{`c.yaml:10: gateway: the bundled gateway is turned on or off` + upgrade}},
		{"gateway.node", "", gatewayKey("  node: 10.0.0.5:2900\n"),
			[]string{`c.yaml:13: gateway.node: changed` + upgrade}},
		{"gateway.ping_interval", "", edit("ping_interval: 25s", "ping_interval: 10s"),
			[]string{`c.yaml:12: gateway.ping_interval: changed` + upgrade}},
		{"gateway.ping_not_response_limit", "", gatewayKey("  ping_not_response_limit: 3\n"),
			[]string{`c.yaml:13: gateway.ping_not_response_limit: changed` + upgrade}},
		{"gateway.ping_data", "", gatewayKey("  ping_data: \"\"\n"),
			[]string{`c.yaml:13: gateway.ping_data: changed` + upgrade}},
		{"gateway.send_queue", "", gatewayKey("  send_queue: 64\n"),
			[]string{`c.yaml:13: gateway.send_queue: changed` + upgrade}},
		{"gateway.send_timeout", "", gatewayKey("  send_timeout: 3s\n"),
			[]string{`c.yaml:13: gateway.send_timeout: changed` + upgrade}},
		{"gateway.max_message_bytes", "", gatewayKey("  max_message_bytes: 4096\n"),
			[]string{`c.yaml:13: gateway.max_message_bytes: changed` + upgrade}},
		{"gateway.events", "", gatewayKey("  events: none\n"),
			[]string{`c.yaml:13: gateway.events: changed` + upgrade}},
		{"gateway.webhook", "", gatewayKey("  webhook:\n    url: http://127.0.0.1:8000/events\n    secret_env: HOOK_SECRET\n"),
			[]string{`c.yaml:14: gateway.webhook.url: changed` + upgrade, `c.yaml:15: gateway.webhook.secret_env: changed` + upgrade}},
		{"gateway.webhook.timeout and retries", "", gatewayKey("  webhook: { timeout: 2s, retries: 5 }\n"),
			[]string{`c.yaml:13: gateway.webhook.timeout: changed` + upgrade, `c.yaml:13: gateway.webhook.retries: changed` + upgrade}},
		{"several at once, in order", "", edit(`min_version: "1.2"`, `min_version: "1.3"`, "format: text", "format: json", "ping_interval: 25s", "ping_interval: 10s"),
			[]string{
				`c.yaml:6: tls.min_version: changed from "1.2" to "1.3"` + upgrade,
				`c.yaml:3: log.format: changed from "text" to "json"` + upgrade,
				`c.yaml:12: gateway.ping_interval: changed` + upgrade,
			}},

		// Keys a reload applies.
		{"nothing changed", "", nil, nil},
		{"listener addresses", "", edit(`https: "127.0.0.1:8443", http: "127.0.0.1:8080"`, `https: "127.0.0.1:9443", http: ""`), nil},
		{"gateway listeners", "", edit(`text_listen: "127.0.0.1:2347"`, "text_listen: \"127.0.0.1:2348\"\n  websocket_listen: \"127.0.0.1:7272\""), nil},
		{"push API address", "", edit(`listen: "127.0.0.1:9181"`, `listen: "127.0.0.1:9182"`), nil},
		{"push API secret", "", edit("    secret: one\n", "    secret: two\n"), nil},
		{"push API secret from the environment", "", edit("    secret: one\n", "    secret_env: PUSH_SECRET\n"), nil},
		{"push API off", "", edit(`listen: "127.0.0.1:9181"`, `listen: ""`), nil},
		{"routes", "", edit("      - { path: /, respond: { body: one } }\n", "      - { path: /, respond: { body: two } }\n      - { path: /api, upstreams: [\"http://127.0.0.1:8000\"] }\n"), nil},
		{"log.level", "", edit("level: info", "level: debug"), nil},
		{"admin", "", edit(`admin: { listen: "127.0.0.1:9180" }`, `admin: { listen: "127.0.0.1:9190", token: t, pprof: true }`), nil},
		{"limits, timeouts, trusted proxies, pid_file", "", func(s string) string {
			return "limits: { max_connections: 50, dial_timeout: 1s }\nshutdown_timeout: 3s\ndrain_timeout: 1m\ntrusted_proxies: [10.0.0.0/8]\npid_file: /run/wssgate.pid\n" + s
		}, nil},
		{"gateway keys left out at their defaults", "", edit("  ping_interval: 25s\n", ""), nil},
		{"gateway keys written out at their defaults", "", gatewayKey("  ping_not_response_limit: 2\n  ping_data: '{\"type\":\"ping\"}'\n  send_queue: 1024\n  webhook: { retries: 3, timeout: 5s }\n"), nil},
		{"an ACME host's case", "", edit("hosts: [chat.example.com]", "hosts: [Chat.Example.com]"), nil},
		{"an ACME host removed", twoHosts, nil, nil},
		{"tls.acme while no site uses ACME", internal, func(string) string {
			return edit("admin@example.com", "ops@example.com")(internal)
		}, nil},
		{"gateway settings while the gateway is off", noGateway, func(string) string {
			return edit("ping_interval: 25s", "ping_interval: 10s", "  push_api:\n", "  node: 10.0.0.5:2900\n  push_api:\n")(noGateway)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := tt.from
			if from == "" {
				from = restartBase
			}
			text := restartBase
			if tt.edit != nil {
				text = tt.edit(from)
			}
			old, cfg := mustParse(t, from), mustParse(t, text)
			err := RestartRequired(old, cfg)
			var got []string
			for _, e := range Errors(err) {
				if _, ok := e.(*Error); !ok {
					t.Errorf("%q is a %T, want an *Error", e, e)
				}
				got = append(got, e.Error())
			}
			if g, w := strings.Join(got, "\n"), strings.Join(tt.want, "\n"); g != w {
				t.Errorf("got\n%s\nwant\n%s", g, w)
			}
		})
	}
}

// TestRestartRequiredWithoutSource checks the problems of a Config built
// in code: key and message, no file.
func TestRestartRequiredWithoutSource(t *testing.T) {
	old, cfg := Default(), Default()
	cfg.TLS.MinVersion = "1.3"
	err := RestartRequired(&old, &cfg)
	if got, want := err.Error(), `tls.min_version: changed from "1.2" to "1.3"`+upgrade; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := RestartRequired(&old, &old); err != nil {
		t.Errorf("no change: got %v, want nil", err)
	}
}
