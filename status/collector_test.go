package status

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollectorValues(t *testing.T) {
	c := NewCollector(sample)
	const want = `
# HELP wssgate_build_info Always 1; the labels name wssgate's version and the Go version it was built with.
# TYPE wssgate_build_info gauge
wssgate_build_info{goversion="go1.26.8",version="v0.9.0"} 1
# HELP wssgate_draining 1 while the process drains: it accepts no new work and waits for connections to end.
# TYPE wssgate_draining gauge
wssgate_draining 0
# HELP wssgate_reload_generation Successful configuration reloads since the process started.
# TYPE wssgate_reload_generation gauge
wssgate_reload_generation 2
# HELP wssgate_reload_last_ok 0 when the last configuration reload failed, else 1.
# TYPE wssgate_reload_last_ok gauge
wssgate_reload_last_ok 0
# HELP wssgate_listener_connections Connections open now on the listener.
# TYPE wssgate_listener_connections gauge
wssgate_listener_connections{addr=":443",listener="https"} 12
wssgate_listener_connections{addr="127.0.0.1:9180",listener="admin"} 1
# HELP wssgate_listener_bytes_total Bytes read from (in) and written to (out) the listener's connections.
# TYPE wssgate_listener_bytes_total counter
wssgate_listener_bytes_total{addr=":443",direction="in",listener="https"} 1536
wssgate_listener_bytes_total{addr=":443",direction="out",listener="https"} 5.36870912e+09
wssgate_listener_bytes_total{addr="127.0.0.1:9180",direction="in",listener="admin"} 100
wssgate_listener_bytes_total{addr="127.0.0.1:9180",direction="out",listener="admin"} 0
# HELP wssgate_route_messages_total WebSocket messages from (in) and to (out) the route's clients.
# TYPE wssgate_route_messages_total counter
wssgate_route_messages_total{direction="in",route="/",site="chat.example.com"} 0
wssgate_route_messages_total{direction="in",route="/wss",site="chat.example.com"} 5000
wssgate_route_messages_total{direction="out",route="/",site="chat.example.com"} 0
wssgate_route_messages_total{direction="out",route="/wss",site="chat.example.com"} 70000
# HELP wssgate_route_handshakes_failed_total WebSocket upgrades on the route that did not become streams.
# TYPE wssgate_route_handshakes_failed_total counter
wssgate_route_handshakes_failed_total{route="/",site="chat.example.com"} 0
wssgate_route_handshakes_failed_total{route="/wss",site="chat.example.com"} 20
# HELP wssgate_upstream_up 1 while the upstream is healthy and in rotation, else 0.
# TYPE wssgate_upstream_up gauge
wssgate_upstream_up{route="/ws",site="api.example.com",upstream="ws://127.0.0.1:9001"} 1
wssgate_upstream_up{route="/ws",site="api.example.com",upstream="ws://127.0.0.1:9002"} 0
# HELP wssgate_upstream_failures_total Requests and streams to the upstream that failed to connect or answer.
# TYPE wssgate_upstream_failures_total counter
wssgate_upstream_failures_total{route="/ws",site="api.example.com",upstream="ws://127.0.0.1:9001"} 0
wssgate_upstream_failures_total{route="/ws",site="api.example.com",upstream="ws://127.0.0.1:9002"} 8
# HELP wssgate_gateway_clients Clients connected to the gateway now.
# TYPE wssgate_gateway_clients gauge
wssgate_gateway_clients 11
# HELP wssgate_gateway_uids Distinct uids bound now.
# TYPE wssgate_gateway_uids gauge
wssgate_gateway_uids 9
# HELP wssgate_gateway_groups Groups with at least one member now.
# TYPE wssgate_gateway_groups gauge
wssgate_gateway_groups 2
# HELP wssgate_gateway_messages_total Messages from (in) and to (out) the gateway's clients.
# TYPE wssgate_gateway_messages_total counter
wssgate_gateway_messages_total{direction="in"} 5000
wssgate_gateway_messages_total{direction="out"} 70000
# HELP wssgate_gateway_send_fail_total Gateway clients dropped as too slow.
# TYPE wssgate_gateway_send_fail_total counter
wssgate_gateway_send_fail_total 3
# HELP wssgate_gateway_push_calls_total Push API calls, each call of a batch counted.
# TYPE wssgate_gateway_push_calls_total counter
wssgate_gateway_push_calls_total 77
`
	names := []string{
		"wssgate_build_info", "wssgate_draining", "wssgate_reload_generation", "wssgate_reload_last_ok",
		"wssgate_listener_connections", "wssgate_listener_bytes_total",
		"wssgate_route_messages_total", "wssgate_route_handshakes_failed_total",
		"wssgate_upstream_up", "wssgate_upstream_failures_total",
		"wssgate_gateway_clients", "wssgate_gateway_uids", "wssgate_gateway_groups",
		"wssgate_gateway_messages_total", "wssgate_gateway_send_fail_total", "wssgate_gateway_push_calls_total",
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

func TestCollectorCounts(t *testing.T) {
	for _, tc := range []struct {
		name string
		snap Snapshot
		want int
	}{
		// 7 global (5 + the budget's 2) + per listener 8, per route 10,
		// per upstream 5, gateway 11.
		{"sample", sample(), 7 + 2*8 + 2*10 + 2*5 + 11},
		{"empty: global block only, no gateway", Snapshot{}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := testutil.CollectAndCount(NewCollector(func() Snapshot { return tc.snap })); got != tc.want {
				t.Errorf("CollectAndCount = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestCollectorLint(t *testing.T) {
	problems, err := testutil.CollectAndLint(NewCollector(sample))
	if err != nil {
		t.Fatalf("CollectAndLint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestCollectorOneSnapshotPerScrape(t *testing.T) {
	calls := 0
	c := NewCollector(func() Snapshot { calls++; return sample() })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("Gather: %v", err)
	}
	if calls != 1 {
		t.Errorf("snapshot called %d times for one scrape, want 1", calls)
	}
}

func TestCollectorBadLabelIsAScrapeError(t *testing.T) {
	s := sample()
	s.Routes[0].Site = "bad\xffsite"
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(func() Snapshot { return s }))
	_, err := reg.Gather() // must not panic
	if err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("Gather with a non-UTF-8 label = %v, want an error naming UTF-8", err)
	}
}
