package status

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// parsedTable is WriteTable's output read back: the global block as
// key → value, and every other section as its header and rows.
type parsedTable struct {
	global   map[string]string
	globalOK bool
	sections map[string]parsedSection
	order    []string // section titles in order
}

type parsedSection struct {
	header []string
	rows   [][]string
}

var (
	titleRE = regexp.MustCompile(`^-{4,} ([A-Z ]+) -{4,}$`)
	sepRE   = regexp.MustCompile(` {2,}`)
)

// parseTable reads a table as a script would: a title line starts a
// section, cells are split on two or more spaces.
func parseTable(t *testing.T, text string) parsedTable {
	t.Helper()
	p := parsedTable{global: map[string]string{}, sections: map[string]parsedSection{}}
	title := ""
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if m := titleRE.FindStringSubmatch(line); m != nil {
			title = m[1]
			p.order = append(p.order, title)
			if title == TitleGlobal {
				p.globalOK = true
			}
			continue
		}
		if title == "" {
			t.Fatalf("line %d %q: before any section title", i+1, line)
		}
		if line != strings.TrimSpace(line) {
			t.Errorf("line %d %q: leading or trailing white space", i+1, line)
		}
		cells := sepRE.Split(line, -1)
		if title == TitleGlobal {
			if len(cells) != 2 {
				t.Fatalf("global line %d %q: %d cells, want key and value", i+1, line, len(cells))
			}
			p.global[cells[0]] = cells[1]
			continue
		}
		sec := p.sections[title]
		if sec.header == nil {
			sec.header = cells
		} else {
			if len(cells) != len(sec.header) {
				t.Fatalf("%s line %d %q: %d cells, want %d as in the header", title, i+1, line, len(cells), len(sec.header))
			}
			sec.rows = append(sec.rows, cells)
		}
		p.sections[title] = sec
	}
	return p
}

func TestWriteTableParsesBack(t *testing.T) {
	s := sample()
	var b strings.Builder
	if err := WriteTable(&b, s); err != nil {
		t.Fatalf("WriteTable: %v", err)
	}
	t.Logf("table:\n%s", b.String())
	p := parseTable(t, b.String())

	if want := []string{TitleGlobal, TitleListeners, TitleRoutes, TitleUpstreams, TitleGateway}; !reflect.DeepEqual(p.order, want) {
		t.Errorf("sections = %q, want %q", p.order, want)
	}
	wantGlobal := map[string]string{
		"time":              "2026-03-02T11:33:04Z",
		"version":           "v0.9.0",
		"go version":        "go1.26.8",
		"pid":               "4242",
		"start time":        "2026-03-01T09:30:00Z",
		"uptime":            "1d2h3m4s",
		"load average":      "0.08 0.50 1.25",
		"memory rss":        "12.3 MiB",
		"memory heap":       "4.0 MiB",
		"goroutines":        "57",
		"open fds":          "31",
		"max fds":           "1048576",
		"draining":          "no",
		"reload generation": "2",
		"reload attempts":   "3",
		"last reload":       "2026-03-02T11:32:04Z failed",
		"reload problems":   "config.yaml:7: sites[0].tls.key_file: no such file; config.yaml:9: routes[0].path: must start with /",
		"upgrade attempts":  "1",
		"last upgrade":      "2026-03-02T11:31:04Z failed: child exited with 3",
		"connections":       "13",
		"conn_budget":       "9950",
		"gateway":           "on",
		"qps interval":      "10s",
	}
	if !reflect.DeepEqual(p.global, wantGlobal) {
		for k, want := range wantGlobal {
			if got := p.global[k]; got != want {
				t.Errorf("global %q = %q, want %q", k, got, want)
			}
		}
		for k, got := range p.global {
			if _, ok := wantGlobal[k]; !ok {
				t.Errorf("global %q = %q, not expected", k, got)
			}
		}
	}

	for _, tc := range []struct {
		title  string
		header []string
		rows   [][]string
	}{
		{TitleListeners,
			[]string{"listener", "addr", "conns", "cap", "state", "fd_err", "total", "bytes_in", "bytes_out", "qps"},
			[][]string{
				{"https", ":443", "12", "-", "accepting", "0", "3456", "1.5 KiB", "5.0 GiB", "1.25"},
				{"admin", "127.0.0.1:9180", "1", "32", "paused", "5", "7", "100 B", "0 B", "0.00"},
			}},
		{TitleRoutes,
			[]string{"site", "path", "kind", "conns", "total", "requests", "streams", "hs_failed", "bytes_in", "bytes_out", "msg_in", "msg_out", "send_fail", "qps"},
			[][]string{
				{"chat.example.com", "/wss", "gateway", "11", "900", "0", "880", "20", "2.0 KiB", "3.0 MiB", "5000", "70000", "3", "123.46"},
				{"chat.example.com", "/", "static", "0", "12", "12", "0", "0", "0 B", "0 B", "0", "0", "0", "0.00"},
			}},
		{TitleUpstreams,
			[]string{"site", "route", "upstream", "health", "fails", "conns", "total", "failed", "qps"},
			[][]string{
				{"api.example.com", "/ws", "ws://127.0.0.1:9001", "up", "0", "4", "40", "0", "0.50"},
				{"api.example.com", "/ws", "ws://127.0.0.1:9002", "down", "3", "0", "8", "8", "0.00"},
			}},
		{TitleGateway,
			[]string{"node", "clients", "uids", "groups", "conns_total", "msg_in", "msg_out", "send_fail", "hb_closed", "push_calls", "push_failed", "qps"},
			[][]string{{"127.0.0.1:9181", "11", "9", "2", "880", "5000", "70000", "3", "4", "77", "1", "7.50"}}},
	} {
		t.Run(tc.title, func(t *testing.T) {
			sec := p.sections[tc.title]
			if !reflect.DeepEqual(sec.header, tc.header) {
				t.Errorf("header = %q, want %q", sec.header, tc.header)
			}
			if !reflect.DeepEqual(sec.rows, tc.rows) {
				t.Errorf("rows =\n%q\nwant\n%q", sec.rows, tc.rows)
			}
		})
	}
}

func TestWriteTableEmpty(t *testing.T) {
	var b strings.Builder
	if err := WriteTable(&b, Snapshot{}); err != nil {
		t.Fatalf("WriteTable: %v", err)
	}
	p := parseTable(t, b.String())
	if want := []string{TitleGlobal, TitleListeners, TitleRoutes, TitleUpstreams}; !reflect.DeepEqual(p.order, want) {
		t.Errorf("sections = %q, want %q (no gateway section while it is off)", p.order, want)
	}
	for _, k := range []string{"time", "version", "start time", "uptime", "last reload", "reload problems", "qps interval"} {
		if got := p.global[k]; got != "-" {
			t.Errorf("global %q = %q, want -", k, got)
		}
	}
	if got := p.global["gateway"]; got != "off" {
		t.Errorf("global gateway = %q, want off", got)
	}
	for _, title := range []string{TitleListeners, TitleRoutes, TitleUpstreams} {
		if sec := p.sections[title]; len(sec.header) == 0 || len(sec.rows) != 0 {
			t.Errorf("%s: header %q, %d rows; want a header and no rows", title, sec.header, len(sec.rows))
		}
	}
}

func TestWriteTableNoRatesYet(t *testing.T) {
	s := sample()
	s.QPSInterval = 0
	var b strings.Builder
	if err := WriteTable(&b, s); err != nil {
		t.Fatalf("WriteTable: %v", err)
	}
	p := parseTable(t, b.String())
	for _, title := range []string{TitleListeners, TitleRoutes, TitleUpstreams, TitleGateway} {
		for _, row := range p.sections[title].rows {
			if q := row[len(row)-1]; q != "-" {
				t.Errorf("%s row %q: qps %q, want - before a rate was measured", title, row[0], q)
			}
		}
	}
}

func TestWriteTableOddNames(t *testing.T) {
	s := Snapshot{Routes: []Route{{Site: "a  b\tc", Path: "/x\x1b[31m", Kind: ""}}}
	var b strings.Builder
	if err := WriteTable(&b, s); err != nil {
		t.Fatalf("WriteTable: %v", err)
	}
	row := parseTable(t, b.String()).sections[TitleRoutes].rows[0]
	if got, want := row[:3], []string{"a b c", `/x\x1b[31m`, "-"}; !reflect.DeepEqual(got, want) {
		t.Errorf("site, path, kind = %q, want %q", got, want)
	}
}

func TestWriteTableWriteError(t *testing.T) {
	boom := errors.New("disk full")
	err := WriteTable(failingWriter{boom}, sample())
	if !errors.Is(err, boom) {
		t.Errorf("WriteTable to a failing writer = %v, want %v wrapped", err, boom)
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

func TestBytesCell(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{12_900_000, "12.3 MiB"},
		{5 << 30, "5.0 GiB"},
		{1 << 62, "4.0 EiB"},
		{1<<64 - 1, "16.0 EiB"},
	} {
		if got := bytesCell(tc.n); got != tc.want {
			t.Errorf("bytesCell(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestUptimeCell(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "-"},
		{400 * time.Millisecond, "-"},
		{90 * time.Second, "1m30s"},
		{3*24*time.Hour + 5*time.Second, "3d0h0m5s"},
	} {
		if got := uptimeCell(tc.d); got != tc.want {
			t.Errorf("uptimeCell(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
