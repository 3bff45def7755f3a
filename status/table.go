package status

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// Section titles of the table WriteTable prints.
const (
	TitleGlobal        = "WSSGATE STATUS"
	TitleListeners     = "LISTENERS"
	TitleRoutes        = "ROUTES"
	TitleUpstreams     = "UPSTREAMS"
	TitleGateway       = "GATEWAY"
	TitleGatewayWorker = "GATEWAYWORKER"
)

// titleWidth is the width of a section's title line.
const titleWidth = 80

// WriteTable writes s as an aligned text table, as GatewayWorker's
// `php start.php status` does: a global block of "key  value" lines,
// then a section for each kind of row (listeners, routes, upstreams and,
// unless s.Gateway is nil, the gateway), each under a title line of
// dashes and a header line of column names.
//
// The layout is stable for scripts: each section starts with a line
// "---- TITLE ----" (the Title constants), the header and key names do
// not change, each row is one line, and cells are separated by at least
// two spaces while no cell holds two spaces in a row or is empty. Byte
// counts are humanized ("12.3 MiB"), other numbers exact; QPS has two
// decimals and is "-" until it has been measured (QPSInterval zero); an
// empty value is "-". Names are printed with white space collapsed and
// control characters escaped.
func WriteTable(w io.Writer, s Snapshot) error {
	ew := &errWriter{w: w}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	row := func(cells ...string) {
		for i, c := range cells {
			if i > 0 {
				io.WriteString(tw, "\t")
			}
			io.WriteString(tw, c)
		}
		io.WriteString(tw, "\n")
	}
	section := func(title string) {
		tw.Flush() // each section aligns its own columns
		io.WriteString(ew, titleLine(title))
	}
	qps := func(q float64) string {
		if s.QPSInterval <= 0 {
			return "-"
		}
		return strconv.FormatFloat(q, 'f', 2, 64)
	}

	p, r := s.Process, s.Reload
	section(TitleGlobal)
	row("time", timeCell(s.Time))
	row("version", cell(p.Version))
	row("go version", cell(p.GoVersion))
	row("pid", intCell(int64(p.PID)))
	row("start time", timeCell(p.Start))
	row("uptime", uptimeCell(time.Duration(p.Uptime)))
	row("load average", fmt.Sprintf("%.2f %.2f %.2f", p.LoadAvg[0], p.LoadAvg[1], p.LoadAvg[2]))
	row("memory rss", bytesCell(p.RSSBytes))
	row("memory heap", bytesCell(p.HeapBytes))
	row("goroutines", intCell(int64(p.Goroutines)))
	row("open fds", intCell(int64(p.OpenFDs)))
	row("max fds", uintCell(p.MaxFDs))
	row("draining", yesNo(p.Draining))
	row("reload generation", strconv.Itoa(r.Generation))
	row("reload attempts", strconv.Itoa(r.Attempts))
	row("last reload", lastReload(r))
	row("reload problems", cell(strings.Join(r.Problems, "; ")))
	row("upgrade attempts", strconv.Itoa(s.Upgrade.Attempts))
	row("last upgrade", lastUpgrade(s.Upgrade))
	budget := "none"
	if s.Budget.Limit > 0 {
		budget = intCell(s.Budget.Limit)
	}
	row("connections", intCell(s.Budget.Open))
	row("conn_budget", budget)
	row("gateway", onOff(s.Gateway != nil))
	row("qps interval", durationCell(time.Duration(s.QPSInterval).Round(time.Millisecond)))

	section(TitleListeners)
	row("listener", "addr", "conns", "cap", "state", "fd_err", "total", "bytes_in", "bytes_out", "qps")
	for _, l := range s.Listeners {
		capCell := "-"
		if l.Cap > 0 {
			capCell = intCell(l.Cap)
		}
		state := "accepting"
		if l.Paused {
			state = "paused"
		}
		row(cell(l.Name), cell(l.Addr), intCell(l.Conns), capCell, state, intCell(l.FDErrors), intCell(l.Total),
			int64BytesCell(l.BytesIn), int64BytesCell(l.BytesOut), qps(l.QPS))
	}

	section(TitleRoutes)
	row("site", "path", "kind", "conns", "total", "requests", "streams", "hs_failed",
		"bytes_in", "bytes_out", "msg_in", "msg_out", "send_fail", "qps")
	for _, rt := range s.Routes {
		row(cell(rt.Site), cell(rt.Path), cell(rt.Kind), intCell(rt.Conns), intCell(rt.Total),
			intCell(rt.Requests), intCell(rt.Streams), intCell(rt.HandshakesFailed),
			int64BytesCell(rt.BytesIn), int64BytesCell(rt.BytesOut),
			intCell(rt.MessagesIn), intCell(rt.MessagesOut), intCell(rt.SendFail), qps(rt.QPS))
	}

	section(TitleUpstreams)
	row("site", "route", "upstream", "health", "fails", "conns", "total", "failed", "qps")
	for _, u := range s.Upstreams {
		health := "down"
		if u.Healthy {
			health = "up"
		}
		row(cell(u.Site), cell(u.Route), cell(u.URL), health, intCell(int64(u.Fails)),
			intCell(u.Conns), intCell(u.Total), intCell(u.Failed), qps(u.QPS))
	}

	if g := s.Gateway; g != nil {
		section(TitleGateway)
		row("node", "clients", "uids", "groups", "conns_total", "msg_in", "msg_out",
			"send_fail", "hb_closed", "push_calls", "push_failed", "qps")
		row(cell(g.Node), intCell(int64(g.Clients)), intCell(int64(g.UIDs)), intCell(int64(g.Groups)),
			intCell(g.ConnectionsTotal), intCell(g.MessagesIn), intCell(g.MessagesOut),
			intCell(g.SendFail), intCell(g.HeartbeatClosed), intCell(g.PushCalls),
			intCell(g.PushFailed), qps(g.QPS))
		if w := g.GatewayWorker; w != nil {
			section(TitleGatewayWorker)
			row("inner", "workers", "events_sent", "events_dropped", "commands", "bad_packets")
			row(cell(w.InnerAddr), intCell(int64(w.Workers)), intCell(w.EventsSent), intCell(w.EventsDropped),
				intCell(w.Commands), intCell(w.BadPackets))
		}
	}
	if err := tw.Flush(); err != nil && ew.err == nil {
		return fmt.Errorf("status: write table: %w", err)
	}
	if ew.err != nil {
		return fmt.Errorf("status: write table: %w", ew.err)
	}
	return nil
}

// titleLine returns "---- title ----" centred in titleWidth columns.
func titleLine(title string) string {
	pad := max(titleWidth-len(title)-2, 8)
	left := pad / 2
	return strings.Repeat("-", left) + " " + title + " " + strings.Repeat("-", pad-left) + "\n"
}

// errWriter keeps the first write error and drops later writes.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// cell returns s for a table cell: "-" when empty, white space runs
// collapsed to one space, other unprintable runes escaped as in Go.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r) // '\x1b'
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

func intCell(n int64) string   { return strconv.FormatInt(n, 10) }
func uintCell(n uint64) string { return strconv.FormatUint(n, 10) }

// timeCell returns t in RFC 3339, to the second; "-" if zero.
func timeCell(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// durationCell returns d as Go writes it; "-" if not positive.
func durationCell(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.String()
}

// uptimeCell returns d to the second, with days: "2d3h4m5s"; "-" if
// not positive.
func uptimeCell(d time.Duration) string {
	d = d.Round(time.Second)
	if d <= 0 {
		return "-"
	}
	const day = 24 * time.Hour
	if d < day {
		return d.String()
	}
	days, rest := d/day, d%day
	return fmt.Sprintf("%dd%dh%dm%ds", days, rest/time.Hour, rest%time.Hour/time.Minute, rest%time.Minute/time.Second)
}

// bytesCell returns n in IEC units: "512 B", "1.5 KiB", "12.3 MiB".
func bytesCell(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < len("MGTPE") {
		v /= unit
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + "KMGTPE"[i:i+1] + "iB"
}

// int64BytesCell is bytesCell for a counter kept as int64; a negative
// one, which no counter should be, is shown exactly.
func int64BytesCell(n int64) string {
	if n < 0 {
		return intCell(n)
	}
	return bytesCell(uint64(n))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// lastUpgrade returns "in progress", "TIME failed: why" or "-".
func lastUpgrade(u Upgrade) string {
	switch {
	case u.InProgress:
		return "in progress"
	case u.Error != "":
		return timeCell(u.Time) + " failed: " + u.Error
	case u.Attempts > 0:
		return timeCell(u.Time) + " ok"
	}
	return "-"
}

// lastReload returns "TIME ok" or "TIME failed"; "-" if none was made.
func lastReload(r Reload) string {
	if r.Attempts == 0 && r.Time.IsZero() {
		return "-"
	}
	outcome := "ok"
	if r.Failed {
		outcome = "failed"
	}
	return timeCell(r.Time) + " " + outcome
}
