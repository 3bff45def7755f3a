package status

import (
	"time"
)

// sample returns a snapshot with every kind of row, for the table,
// JSON and collector tests.
func sample() Snapshot {
	start := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	now := start.Add(26*time.Hour + 3*time.Minute + 4*time.Second)
	return Snapshot{
		Time:        now,
		QPSInterval: Duration(10 * time.Second),
		Process: Process{
			PID: 4242, Version: "v0.9.0", GoVersion: "go1.26.8", Start: start,
			Uptime:  Duration(now.Sub(start)),
			LoadAvg: [3]float64{0.08, 0.5, 1.25}, RSSBytes: 12_900_000, HeapBytes: 4 << 20,
			Goroutines: 57, OpenFDs: 31, MaxFDs: 1048576,
		},
		Reload: Reload{
			Generation: 2, Attempts: 3, Time: now.Add(-time.Minute), Failed: true,
			Problems: []string{"config.yaml:7: sites[0].tls.key_file: no such file", "config.yaml:9: routes[0].path: must start with /"},
		},
		Upgrade: Upgrade{Attempts: 1, Time: now.Add(-2 * time.Minute), Error: "child exited with 3"},
		Listeners: []Listener{
			{Name: "https", Addr: ":443", Conns: 12, Total: 3456, BytesIn: 1536, BytesOut: 5 << 30, QPS: 1.25},
			{Name: "admin", Addr: "127.0.0.1:9180", Conns: 1, Total: 7, BytesIn: 100, BytesOut: 0, Cap: 32, Paused: true, Pauses: 2, FDErrors: 5},
		},
		Budget: Budget{Limit: 9950, Open: 13},
		Routes: []Route{
			{Site: "chat.example.com", Path: "/wss", Kind: "gateway", Conns: 11, Total: 900, Requests: 0, Streams: 880,
				HandshakesFailed: 20, BytesIn: 2048, BytesOut: 3 << 20, MessagesIn: 5000, MessagesOut: 70000, SendFail: 3, QPS: 123.456},
			{Site: "chat.example.com", Path: "/", Kind: "static", Conns: 0, Total: 12, Requests: 12},
		},
		Upstreams: []Upstream{
			{Site: "api.example.com", Route: "/ws", URL: "ws://127.0.0.1:9001", Healthy: true, Conns: 4, Total: 40, QPS: 0.5},
			{Site: "api.example.com", Route: "/ws", URL: "ws://127.0.0.1:9002", Healthy: false, Fails: 3, Total: 8, Failed: 8},
		},
		Gateway: &Gateway{
			Node: "127.0.0.1:9181", Clients: 11, UIDs: 9, Groups: 2, ConnectionsTotal: 880,
			MessagesIn: 5000, MessagesOut: 70000, SendFail: 3, HeartbeatClosed: 4, PushCalls: 77, PushFailed: 1, QPS: 7.5,
		},
	}
}
