package status_test

import (
	"os"
	"time"

	"github.com/wssgate/wssgate/status"
)

// Two snapshots ten seconds apart give the second one its rates, and
// WriteTable prints it.
func ExampleWriteTable() {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	snap := func(at time.Duration, accepted, messages int64) status.Snapshot {
		return status.Snapshot{
			Time:      t0.Add(at),
			Process:   status.Process{PID: 4242, Version: "v1.0.0", GoVersion: "go1.26.8", Start: t0, Uptime: status.Duration(at)},
			Listeners: []status.Listener{{Name: "https", Addr: ":443", Conns: 3, Total: accepted, BytesIn: 2048, BytesOut: 1 << 20}},
			Routes:    []status.Route{{Site: "chat.example.com", Path: "/wss", Kind: "gateway", Conns: 3, Total: accepted, Streams: accepted, MessagesIn: messages}},
		}
	}
	var sm status.Sampler
	sm.Observe(snap(0, 100, 1000))
	s := sm.Observe(snap(10*time.Second, 150, 1500))
	if err := status.WriteTable(os.Stdout, s); err != nil {
		panic(err)
	}
	// Output:
	// -------------------------------- WSSGATE STATUS --------------------------------
	// time               2026-03-01T12:00:10Z
	// version            v1.0.0
	// go version         go1.26.8
	// pid                4242
	// start time         2026-03-01T12:00:00Z
	// uptime             10s
	// load average       0.00 0.00 0.00
	// memory rss         0 B
	// memory heap        0 B
	// goroutines         0
	// open fds           0
	// max fds            0
	// draining           no
	// reload generation  0
	// reload attempts    0
	// last reload        -
	// reload problems    -
	// upgrade attempts   0
	// last upgrade       -
	// connections        0
	// conn_budget        none
	// gateway            off
	// qps interval       10s
	// ---------------------------------- LISTENERS -----------------------------------
	// listener  addr  conns  cap  state      fd_err  total  bytes_in  bytes_out  qps
	// https     :443  3      -    accepting  0       150    2.0 KiB   1.0 MiB    5.00
	// ------------------------------------ ROUTES ------------------------------------
	// site              path  kind     conns  total  requests  streams  hs_failed  bytes_in  bytes_out  msg_in  msg_out  send_fail  qps
	// chat.example.com  /wss  gateway  3      150    0         150      0          0 B       0 B        1500    0        0          50.00
	// ---------------------------------- UPSTREAMS -----------------------------------
	// site  route  upstream  health  fails  conns  total  failed  qps
}
