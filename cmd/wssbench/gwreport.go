package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
)

// GatewayReport is the outcome of "wssbench gateway": every unit
// measured, and the medians over runs as rows.
type GatewayReport struct {
	Settings GatewaySettings `json:"settings"`
	Machine  Machine         `json:"machine"`
	Units    []*GatewayUnit  `json:"units"`
	Rows     []GatewayRow    `json:"rows"`
}

// GatewaySettings are the parameters a gateway run used.
type GatewaySettings struct {
	Runs            int     `json:"runs"`
	Clients         []int   `json:"clients"`
	Broadcasts      int     `json:"broadcasts_per_trigger"`
	IntervalSeconds float64 `json:"interval_seconds"`
	PayloadBytes    int     `json:"payload_bytes"`
	TextConns       int     `json:"text_conns"`
	EdgeConns       int     `json:"edge_conns"`
	EchoClients     int     `json:"echo_clients"`
	EchoBytes       int     `json:"echo_bytes"`
	EchoMaxSeconds  float64 `json:"echo_max_seconds"`
	SettleSeconds   float64 `json:"settle_seconds"`
	Sources         int     `json:"source_addresses"`
	Pinned          bool    `json:"pinned"` // servers on CPU 1, client on CPU 0
}

func gatewaySettingsOf(c GatewayConfig, pinned bool) GatewaySettings {
	return GatewaySettings{
		Runs: c.Runs, Clients: c.Clients, Broadcasts: c.Broadcasts, IntervalSeconds: c.Interval.Seconds(),
		PayloadBytes: c.Size, TextConns: max(c.Text, 0), EdgeConns: max(c.Edge, 0), EchoClients: max(c.EchoClients, 0),
		EchoBytes: c.EchoSize, EchoMaxSeconds: c.EchoDuration.Seconds(), SettleSeconds: c.Settle.Seconds(),
		Sources: len(c.Sources), Pinned: pinned,
	}
}

// Machine describes where a run happened.
type Machine struct {
	CPUs    int    `json:"cpus"`
	Model   string `json:"cpu_model"`
	Kernel  string `json:"kernel"`
	Go      string `json:"go"`
	Wssgate string `json:"wssgate"`
}

func machineInfo() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// GatewayUnit is one server process measured once.
type GatewayUnit struct {
	Run      int    `json:"run"`
	System   string `json:"system"`   // "wssgate", "hub" (gateway package, in-process Handler) or "floor" (bare writes)
	Listener string `json:"listener"` // "ws", "text", "edge" (TLS, gateway: true route) or "echo"
	Conns    int    `json:"conns"`
	Version  string `json:"version"`
	// Idle memory: VmRSS before the connections and with them open and
	// settled (not for echo units).
	OpenSeconds float64            `json:"open_seconds,omitempty"`
	RSSBefore   int64              `json:"rss_before_bytes,omitempty"`
	RSSAfter    int64              `json:"rss_after_bytes,omitempty"`
	RSSPerConn  float64            `json:"rss_per_conn_bytes,omitempty"`
	Broadcasts  []GatewayBroadcast `json:"broadcasts,omitempty"`
	Stray       int64              `json:"stray_messages,omitempty"` // messages that were no broadcast, or repeats
	Echo        *GatewayEcho       `json:"echo,omitempty"`
}

// GatewayBroadcast is one trigger's broadcasts in a unit.
type GatewayBroadcast struct {
	Trigger          string    `json:"trigger"` // "push" (push API sendToAll) or "message" (a client's message, SendToAll in process)
	Count            int       `json:"count"`
	Deliveries       int64     `json:"deliveries"`
	Lost             int64     `json:"lost"`
	CPUPerDeliveryUS float64   `json:"cpu_per_delivery_us"` // server CPU from the first trigger to the last receipt, per delivery
	FirstP50MS       float64   `json:"first_p50_ms"`
	LastP50MS        float64   `json:"last_p50_ms"`
	LastP99MS        float64   `json:"last_p99_ms"`
	FirstMS          []float64 `json:"first_ms"` // per broadcast: trigger to its first client
	LastMS           []float64 `json:"last_ms"`  // per broadcast: trigger to its last client
}

// GatewayEcho is an echo unit's figures.
type GatewayEcho struct {
	Clients           int     `json:"clients"`
	Size              int     `json:"size"`
	RoundTrips        int64   `json:"round_trips"`
	Seconds           float64 `json:"seconds"`
	PerSecond         float64 `json:"round_trips_per_second"`
	CPUPerRoundTripUS float64 `json:"cpu_per_round_trip_us"`
	P50US             float64 `json:"p50_us"`
	P99US             float64 `json:"p99_us"`
	ServerCores       float64 `json:"server_cores"` // server CPU / elapsed: 1 is its whole CPU
	ClientCores       float64 `json:"client_cores"` // the same for the client (this process), which may be what limits the rate
}

// GatewayRow is one line of the summary: the median over runs of one
// figure for the gateway, for the bare-write floor, and PHP
// GatewayWorker's figure from issue 13 where it has one.
type GatewayRow struct {
	Section    string   `json:"section"`
	Metric     string   `json:"metric"`
	Better     string   `json:"better"` // "lower" or "higher"
	System     string   `json:"system"` // which gateway server the value is of
	Value      float64  `json:"value"`
	Floor      *float64 `json:"floor"`
	RatioFloor *float64 `json:"ratio_to_floor"`
	GW         *float64 `json:"gatewayworker"`
	RatioGW    *float64 `json:"ratio_to_gatewayworker"`
	digits     int
}

// gatewayWorker holds PHP GatewayWorker's figures as issue 13 gives
// them (v4.0 on workerman 5.2 with event, on this kind of machine),
// keyed by section kind, audience and metric. They cannot be measured
// here: Packagist is out of reach.
func gatewayWorker(kind string, n int, metric string) (float64, bool) {
	type key struct {
		kind   string
		n      int
		metric string
	}
	v, ok := map[key]float64{
		{"broadcast", 5000, mCPU}:      9.0,
		{"broadcast", 5000, mFirstP50}: 0.55,
		{"broadcast", 5000, mLastP50}:  48,
		{"broadcast", 5000, mLastP99}:  76,
		{"broadcast", 9000, mCPU}:      9.8,
		{"idle", 0, mRSS}:              6.4,
		{"echo", 0, mEchoRate}:         50400,
	}[key{kind, n, metric}]
	return v, ok
}

// Metric names of the rows.
const (
	mCPU      = "server CPU per delivery (µs)"
	mFirstP50 = "first client, p50 (ms)"
	mLastP50  = "last client, p50 (ms)"
	mLastP99  = "last client, p99 (ms)"
	mLost     = "messages lost, all runs"
	mRSS      = "RSS per idle connection (KiB)"
	mEchoRate = "round trips/s"
	mEchoCPU  = "server CPU per round trip (µs)"
	mEchoP50  = "round trip p50 (µs)"
)

// median of vs; 0 for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(vs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarize makes the rows from the units.
func (r *GatewayReport) summarize() []GatewayRow {
	pick := func(sys, listener string, n int, f func(u *GatewayUnit) (float64, bool)) []float64 {
		var vs []float64
		for _, u := range r.Units {
			if u.System == sys && u.Listener == listener && (n == 0 || u.Conns == n) {
				if v, ok := f(u); ok {
					vs = append(vs, v)
				}
			}
		}
		return vs
	}
	bcast := func(trigger string, get func(GatewayBroadcast) float64) func(u *GatewayUnit) (float64, bool) {
		return func(u *GatewayUnit) (float64, bool) {
			for _, b := range u.Broadcasts {
				if b.Trigger == trigger {
					return get(b), true
				}
			}
			return 0, false
		}
	}
	var rows []GatewayRow
	// add appends a row, unless there are no values, and returns it.
	add := func(section, kind string, n int, metric, better, sys string, digits int, vals, floor []float64, sum bool) *GatewayRow {
		if len(vals) == 0 {
			return nil
		}
		agg := median
		if sum {
			agg = func(vs []float64) float64 {
				t := 0.0
				for _, v := range vs {
					t += v
				}
				return t
			}
		}
		row := GatewayRow{Section: section, Metric: metric, Better: better, System: sys, Value: agg(vals), digits: digits}
		if len(floor) > 0 {
			f := agg(floor)
			row.Floor = &f
			if f != 0 && !sum {
				q := row.Value / f
				row.RatioFloor = &q
			}
		}
		if g, ok := gatewayWorker(kind, n, metric); ok {
			row.GW = &g
			q := row.Value / g
			row.RatioGW = &q
		}
		rows = append(rows, row)
		return &rows[len(rows)-1]
	}
	type bmetric struct {
		name   string
		better string
		digits int
		sum    bool
		get    func(GatewayBroadcast) float64
	}
	bms := []bmetric{
		{mCPU, "lower", 2, false, func(b GatewayBroadcast) float64 { return b.CPUPerDeliveryUS }},
		{mFirstP50, "lower", 2, false, func(b GatewayBroadcast) float64 { return b.FirstP50MS }},
		{mLastP50, "lower", 1, false, func(b GatewayBroadcast) float64 { return b.LastP50MS }},
		{mLastP99, "lower", 1, false, func(b GatewayBroadcast) float64 { return b.LastP99MS }},
		{mLost, "lower", 0, true, func(b GatewayBroadcast) float64 { return float64(b.Lost) }},
	}
	for _, n := range r.Settings.Clients {
		for _, t := range []struct{ trigger, sys, section string }{
			{"push", "wssgate", "sendToAll through the push API, %d clients (wssgate)"},
			{"message", "hub", "SendToAll from a client's message, in-process Handler, %d clients (hub)"},
		} {
			for _, m := range bms {
				add(fmt.Sprintf(t.section, n), "broadcast", n, m.name, m.better, t.sys, m.digits,
					pick(t.sys, "ws", n, bcast(t.trigger, m.get)), pick("floor", "ws", n, bcast(t.trigger, m.get)), m.sum)
			}
		}
	}
	rss := func(u *GatewayUnit) (float64, bool) { return u.RSSPerConn / 1024, u.RSSPerConn != 0 }
	idle := "idle memory (RSS with N idle − RSS before, / N)"
	for _, n := range r.Settings.Clients {
		if row := add(idle, "idle", 0, mRSS, "lower", "wssgate", 2, pick("wssgate", "ws", n, rss), pick("floor", "ws", n, rss), false); row != nil {
			row.Metric = fmt.Sprintf("websocket_listen, %d conns (KiB)", n)
		}
	}
	if row := add(idle, "idle", 0, mRSS, "lower", "wssgate", 2, pick("wssgate", "text", 0, rss), nil, false); row != nil {
		row.Metric = fmt.Sprintf("text port, %d conns (KiB)", r.Settings.TextConns)
	}
	if vs := pick("wssgate", "edge", 0, rss); len(vs) > 0 {
		add(idle, "edge", 0, mRSS, "lower", "wssgate", 2, vs, nil, false).Metric = fmt.Sprintf("edge TLS route (gateway: true), %d conns (KiB)", r.Settings.EdgeConns)
		if ws := pick("wssgate", "ws", slices.Max(r.Settings.Clients), rss); len(ws) > 0 {
			share := median(vs) - median(ws)
			rows = append(rows, GatewayRow{Section: idle, Metric: "  of which TLS and the edge's HTTP/1.1 (edge − websocket_listen)", Better: "lower", System: "wssgate", Value: share, digits: 2})
		}
	}
	echo := fmt.Sprintf("echo, %d clients × %d B, in-process Handler (hub)", r.Settings.EchoClients, r.Settings.EchoBytes)
	for _, m := range []struct {
		name, better string
		digits       int
		get          func(*GatewayEcho) float64
	}{
		{mEchoRate, "higher", 0, func(e *GatewayEcho) float64 { return e.PerSecond }},
		{mEchoCPU, "lower", 2, func(e *GatewayEcho) float64 { return e.CPUPerRoundTripUS }},
		{mEchoP50, "lower", 0, func(e *GatewayEcho) float64 { return e.P50US }},
		{"server CPU used (cores)", "lower", 2, func(e *GatewayEcho) float64 { return e.ServerCores }},
		{"client CPU used (cores)", "", 2, func(e *GatewayEcho) float64 { return e.ClientCores }},
	} {
		get := func(u *GatewayUnit) (float64, bool) {
			if u.Echo == nil {
				return 0, false
			}
			return m.get(u.Echo), true
		}
		add(echo, "echo", 0, m.name, m.better, "hub", m.digits, pick("hub", "echo", 0, get), pick("floor", "echo", 0, get), false)
	}
	return rows
}

// WriteJSON writes the report as indented JSON.
func (r *GatewayReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes what was run and the rows: the gateway's median,
// the floor's, their ratio, and GatewayWorker's reference figure.
func (r *GatewayReport) WriteTable(w io.Writer) error {
	s, m := r.Settings, r.Machine
	var b strings.Builder
	pin := "servers on CPU 1 with GOMAXPROCS=1, client on CPU 0"
	if !s.Pinned {
		pin = "unpinned (fewer than 2 CPUs or no taskset), servers with GOMAXPROCS=1"
	}
	fmt.Fprintf(&b, "wssbench gateway: medians of %d run(s), systems alternating; %s\n", s.Runs, pin)
	fmt.Fprintf(&b, "  machine: %d CPUs, %s; Linux %s; %s; %s\n", m.CPUs, m.Model, m.Kernel, m.Go, m.Wssgate)
	fmt.Fprintf(&b, "  broadcasts: %d per trigger, %s apart, %d B payload, plain ws from %d loopback source addresses\n",
		s.Broadcasts, secs(s.IntervalSeconds), s.PayloadBytes, s.Sources)
	b.WriteString("  floor: the same frame written to every socket in a loop, one write(2) each, no hub; GatewayWorker: issue 13's figures (not measurable here)\n\n")
	const rowFmt = "  %-58s %10s %10s %8s %10s %8s\n"
	section := ""
	for _, row := range r.Rows {
		if row.Section != section {
			section = row.Section
			fmt.Fprintf(&b, "%s\n", section)
			fmt.Fprintf(&b, rowFmt, "", row.System, "floor", "×floor", "GW", "×GW")
		}
		f := func(v *float64, digits int) string {
			if v == nil {
				return "—"
			}
			return fmt.Sprintf("%.*f", digits, *v)
		}
		fmt.Fprintf(&b, rowFmt, row.Metric, fmt.Sprintf("%.*f", row.digits, row.Value), f(row.Floor, row.digits), f(row.RatioFloor, 2), f(row.GW, row.digits), f(row.RatioGW, 2))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
