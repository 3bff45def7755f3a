package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// Report is the outcome of a run. Its JSON form (-json) adds "rows", the
// table as data.
type Report struct {
	Settings Settings `json:"settings"`
	Wssgate  *Result  `json:"wssgate"`
	// Nginx is nil when nginx was not measured; NginxSkipped says why.
	Nginx        *Result `json:"nginx"`
	NginxSkipped string  `json:"nginx_skipped,omitempty"`
}

// Settings are the parameters the run used.
type Settings struct {
	CPUs            int     `json:"cpus"`
	IdleConns       int     `json:"idle_conns"`
	EchoClients     int     `json:"echo_clients"`
	RoundsPerClient int     `json:"rounds_per_client"`
	EchoMaxSeconds  float64 `json:"echo_max_seconds"`
	MessageBytes    int     `json:"message_bytes"`
	SettleSeconds   float64 `json:"settle_seconds"`
	Sources         string  `json:"sources"`
}

// settingsOf records cfg (with defaults filled) for the report.
func settingsOf(cfg Config) Settings {
	src := "127.0.0.1 (kernel's choice)"
	if len(cfg.Sources) > 0 {
		var s []string
		for _, a := range cfg.Sources {
			s = append(s, a.String())
		}
		src = strings.Join(s, ",")
	}
	return Settings{
		CPUs:            runtime.NumCPU(),
		IdleConns:       cfg.Idle,
		EchoClients:     cfg.Clients,
		RoundsPerClient: cfg.Rounds,
		EchoMaxSeconds:  cfg.Duration.Seconds(),
		MessageBytes:    cfg.MessageSize,
		SettleSeconds:   cfg.Settle.Seconds(),
		Sources:         src,
	}
}

// Result is what was measured for one proxy. Memory and CPU are summed
// over the proxy's processes (nginx's master and workers).
type Result struct {
	Proxy     string     `json:"proxy"`
	Version   string     `json:"version"`
	Setup     string     `json:"setup"`
	Processes int        `json:"processes"`
	TLS       string     `json:"tls"` // as negotiated with the client
	Idle      IdleResult `json:"idle"`
	Echo      EchoResult `json:"echo"`
}

// IdleResult is the idle-connection phase.
type IdleResult struct {
	Conns        int     `json:"conns"`
	OpenSeconds  float64 `json:"open_seconds"`     // to open them all
	RSSBefore    int64   `json:"rss_before_bytes"` // VmRSS before the first was opened
	RSSAfter     int64   `json:"rss_after_bytes"`  // VmRSS with all open, after settling
	BytesPerConn float64 `json:"bytes_per_conn"`   // (after - before) / conns
	FDsPerConn   float64 `json:"fds_per_conn"`     // descriptors the proxy holds per connection
	CPUPerConnUS float64 `json:"cpu_per_conn_us"`  // proxy CPU per TLS handshake + upgrade + one echo
}

// EchoResult is the request/response phase.
type EchoResult struct {
	Clients           int     `json:"clients"`
	RoundTrips        int64   `json:"round_trips"`
	Seconds           float64 `json:"seconds"`
	PerSecond         float64 `json:"round_trips_per_second"`
	P50US             float64 `json:"p50_us"`
	P99US             float64 `json:"p99_us"`
	CPUSeconds        float64 `json:"cpu_seconds"`           // proxy CPU during the phase
	CPUPerRoundTripUS float64 `json:"cpu_per_round_trip_us"` // CPUSeconds per round trip
	CPUCores          float64 `json:"cpu_cores"`             // CPUSeconds / Seconds
}

// Row is one line of the table.
type Row struct {
	Metric  string   `json:"metric"`
	Better  string   `json:"better"` // "lower" or "higher"
	Wssgate float64  `json:"wssgate"`
	Nginx   *float64 `json:"nginx"` // nil when nginx was not measured
	Ratio   *float64 `json:"ratio"` // wssgate / nginx; nil without nginx or when nginx is 0
	digits  int
}

// metric is one row of the table: its name, which way is better, the
// decimals shown, and how to get the value from a result.
type metric struct {
	name   string
	better string
	digits int
	get    func(*Result) float64
}

// metrics lists the table's rows.
func metrics() []metric {
	return []metric{
		{"idle: proxy RSS before (MiB)", "lower", 1, func(r *Result) float64 { return mib(r.Idle.RSSBefore) }},
		{"idle: proxy RSS with conns (MiB)", "lower", 1, func(r *Result) float64 { return mib(r.Idle.RSSAfter) }},
		{"idle: memory per conn (KiB)", "lower", 1, func(r *Result) float64 { return r.Idle.BytesPerConn / 1024 }},
		{"connect: CPU per handshake (µs)", "lower", 0, func(r *Result) float64 { return r.Idle.CPUPerConnUS }},
		{"echo: round trips/s", "higher", 0, func(r *Result) float64 { return r.Echo.PerSecond }},
		{"echo: latency p50 (µs)", "lower", 0, func(r *Result) float64 { return r.Echo.P50US }},
		{"echo: latency p99 (µs)", "lower", 0, func(r *Result) float64 { return r.Echo.P99US }},
		{"echo: proxy CPU per round trip (µs)", "lower", 2, func(r *Result) float64 { return r.Echo.CPUPerRoundTripUS }},
		{"echo: proxy CPU used (cores)", "lower", 2, func(r *Result) float64 { return r.Echo.CPUCores }},
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// Rows returns the table: one row per metric, with the ratio
// wssgate/nginx when nginx was measured.
func (r *Report) Rows() []Row {
	if r.Wssgate == nil {
		return nil
	}
	var rows []Row
	for _, m := range metrics() {
		row := Row{Metric: m.name, Better: m.better, Wssgate: m.get(r.Wssgate), digits: m.digits}
		if r.Nginx != nil {
			n := m.get(r.Nginx)
			row.Nginx = &n
			if n != 0 {
				ratio := row.Wssgate / n
				row.Ratio = &ratio
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// WriteJSON writes the report and its rows as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		*Report
		Rows []Row `json:"rows"`
	}{r, r.Rows()})
}

// WriteTable writes a header that says what was run and the table of
// metrics with the ratio wssgate/nginx.
func (r *Report) WriteTable(w io.Writer) error {
	s := r.Settings
	var b strings.Builder
	fmt.Fprintf(&b, "wssbench: %d idle conns (settle %s); echo %d clients × ≤%d round trips of %d B, ≤%s; %d CPUs shared by proxy, backend and client\n",
		s.IdleConns, secs(s.SettleSeconds), s.EchoClients, s.RoundsPerClient, s.MessageBytes, secs(s.EchoMaxSeconds), s.CPUs)
	for _, res := range []*Result{r.Wssgate, r.Nginx} {
		if res != nil {
			fmt.Fprintf(&b, "  %-8s %s; %s; %d process(es); %s\n", res.Proxy, res.Version, res.Setup, res.Processes, res.TLS)
		}
	}
	if r.Nginx == nil {
		fmt.Fprintf(&b, "  nginx    not measured: %s\n", r.NginxSkipped)
	}
	if r.Wssgate != nil {
		for _, res := range []*Result{r.Wssgate, r.Nginx} {
			if res != nil {
				fmt.Fprintf(&b, "  %-8s %d round trips in %.1f s; %.2f fds per idle conn\n", res.Proxy, res.Echo.RoundTrips, res.Echo.Seconds, res.Idle.FDsPerConn)
			}
		}
	}
	b.WriteString("\n")
	const rowFmt = "%-38s %12s %12s %14s  %s\n"
	fmt.Fprintf(&b, rowFmt, "metric", "wssgate", "nginx", "wssgate/nginx", "better")
	for _, row := range r.Rows() {
		nginx, ratio := "—", "—"
		if row.Nginx != nil {
			nginx = fmt.Sprintf("%.*f", row.digits, *row.Nginx)
		}
		if row.Ratio != nil {
			ratio = fmt.Sprintf("%.2f", *row.Ratio)
		}
		fmt.Fprintf(&b, rowFmt, row.Metric, fmt.Sprintf("%.*f", row.digits, row.Wssgate), nginx, ratio, row.Better)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// secs formats a number of seconds as a duration ("10s", "200ms").
func secs(s float64) string { return time.Duration(s * float64(time.Second)).String() }
