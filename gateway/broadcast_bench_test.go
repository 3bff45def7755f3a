//go:build unix

package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wssgate/wssgate/internal/wsframe"
)

// BenchmarkBroadcast measures one SendToAll fanned out to 5,000 and
// 10,000 WebSocket clients (plain ws, as GatewayWorker's figures are).
// The clients live in a child process (this test binary re-run as a
// swarm, see TestMain), so that the server's CPU is measured alone and
// each process stays under the open-file limit. Each op is one broadcast,
// waited for until every client has it. Reported:
//
//	deliveries/s     messages written to clients per second of wall time
//	cpu-ns/delivery  server CPU (user + system) per delivered message
//	last-ms-p50/p99  time from SendToAll until the last client has it
//	B/conn           server heap + stacks per idle connection
//	stack-B/conn     the goroutine stacks' part of it
//
// The baseline sub-benchmarks write the same frame to the same clients
// from one goroutine with no hub at all: one write system call per
// client, the floor any design with a socket per client pays. The hub's
// own cost is the difference.
//
// Run: go test -run '^$' -bench Broadcast -benchtime 50x ./gateway
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{5000, 10000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchBroadcast(b, n, false) })
		b.Run(fmt.Sprintf("baseline/clients=%d", n), func(b *testing.B) { benchBroadcast(b, n, true) })
	}
}

func benchBroadcast(b *testing.B, n int, baseline bool) {
	if lim := openFiles(); lim < uint64(n)+200 {
		b.Skipf("open-file limit %d is too low for %d connections", lim, n)
	}
	h := New(Options{})
	handler := h.WebSocketHandler(nil)
	var rawMu sync.Mutex
	var raw []net.Conn
	if baseline {
		up := websocket.Upgrader{}
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ws, err := up.Upgrade(w, r, nil); err == nil {
				rawMu.Lock()
				raw = append(raw, ws.NetConn())
				rawMu.Unlock()
			}
		})
	}
	count := func() int {
		if !baseline {
			return h.GetAllClientIDCount()
		}
		rawMu.Lock()
		defer rawMu.Unlock()
		return len(raw)
	}
	send := func(data []byte) {
		if !baseline {
			h.SendToAll(data, nil, nil)
			return
		}
		frame := append(wsframe.AppendHeader(nil, wsframe.Header{Fin: true, Opcode: wsframe.OpText, Length: uint64(len(data))}), data...)
		for _, c := range raw {
			c.Write(frame)
		}
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()
	defer func() {
		for _, c := range raw {
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	defer h.Shutdown(context.Background())

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	sw := startSwarm(ctx, b, srv.URL, n)
	defer sw.stop()
	next := sw.next
	for l := next(); l != "ready"; l = next() {
		if strings.HasPrefix(l, "error") {
			b.Fatal(l)
		}
	}
	for count() < n {
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// Signed: with no goroutine per connection (the baseline) the stacks
	// may shrink below where they started.
	perConn := float64(int64(after.HeapInuse+after.StackInuse)-int64(before.HeapInuse+before.StackInuse)) / float64(n)
	stackPerConn := float64(int64(after.StackInuse)-int64(before.StackInuse)) / float64(n)

	var lasts []float64
	cpu0 := cpuTime()
	start := time.Now()
	b.ResetTimer()
	for i := range b.N {
		send([]byte(fmt.Sprintf("%d %d %s", i, time.Now().UnixNano(), "0123456789abcdef0123456789abcdef")))
		// "done <seq> <ms to the last client>"
		f := strings.Fields(next())
		if len(f) != 3 || f[0] != "done" || f[1] != strconv.Itoa(i) {
			b.Fatalf("swarm said %q, want done %d", f, i)
		}
		ms, _ := strconv.ParseFloat(f[2], 64)
		lasts = append(lasts, ms)
	}
	b.StopTimer()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	deliveries := float64(b.N) * float64(n)
	slices.Sort(lasts)
	b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
	b.ReportMetric(lasts[len(lasts)/2], "last-ms-p50")
	b.ReportMetric(lasts[len(lasts)*99/100], "last-ms-p99")
	b.ReportMetric(perConn, "B/conn")
	b.ReportMetric(stackPerConn, "stack-B/conn")
}

// TestMain runs the benchmarks' client swarm instead of the tests when
// the test binary is started as a swarm (WSSGATE_SWARM_URL is set).
func TestMain(m *testing.M) {
	if url := os.Getenv("WSSGATE_SWARM_URL"); url != "" {
		runSwarm(url)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runSwarm is the client side of BenchmarkBroadcast and BenchmarkEcho,
// in a child process. It opens WSSGATE_SWARM_N connections to url, says
// "ready", then for each broadcast says when its last client got it
// (or runs the echo rounds), until its stdin closes.
func runSwarm(url string) {
	n, _ := strconv.Atoi(os.Getenv("WSSGATE_SWARM_N"))
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
	}
	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var dialErr error
	work := make(chan int)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Several source addresses, so that ports never run short.
			d := websocket.Dialer{
				NetDial:        (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+w%8))}}).Dial,
				ReadBufferSize: 256, WriteBufferSize: 256, HandshakeTimeout: 10 * time.Second,
			}
			for i := range work {
				c, _, err := d.Dial(url, nil)
				if err != nil {
					mu.Lock()
					dialErr = err
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if dialErr != nil {
		say("error: dial: %v", dialErr)
		return
	}
	if r, _ := strconv.Atoi(os.Getenv("WSSGATE_SWARM_ECHO")); r > 0 {
		swarmEcho(conns, r, say)
		return
	}
	type receipt struct{ seq, nanos int64 }
	got := make(chan receipt, 4096)
	for _, c := range conns {
		go func() {
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				now := time.Now().UnixNano()
				f := strings.Fields(string(msg))
				seq, _ := strconv.ParseInt(f[0], 10, 64)
				sent, _ := strconv.ParseInt(f[1], 10, 64)
				got <- receipt{seq, now - sent}
			}
		}()
	}
	say("ready")
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	count := map[int64]int{}
	last := map[int64]int64{}
	for r := range got {
		count[r.seq]++
		last[r.seq] = max(last[r.seq], r.nanos)
		if count[r.seq] == n {
			say("done %d %.3f", r.seq, float64(last[r.seq])/1e6)
			delete(count, r.seq)
			delete(last, r.seq)
		}
	}
}

// swarm is the benchmarks' child process of clients (runSwarm).
type swarm struct {
	b     *testing.B
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

// startSwarm starts n clients of the server at url in a child process.
func startSwarm(ctx context.Context, b *testing.B, url string, n int, env ...string) *swarm {
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(append(os.Environ(), "WSSGATE_SWARM_URL=ws"+strings.TrimPrefix(url, "http"), "WSSGATE_SWARM_N="+strconv.Itoa(n)), env...)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return &swarm{b: b, cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
}

// next returns the swarm's next line.
func (s *swarm) next() string {
	if !s.lines.Scan() {
		s.b.Fatalf("swarm ended: %v", s.lines.Err())
	}
	return s.lines.Text()
}

// stop ends the swarm: it exits when its stdin closes.
func (s *swarm) stop() {
	s.stdin.Close()
	s.cmd.Wait()
}

// echoHandler sends every message back to its sender.
type echoHandler struct {
	NopHandler
	hub *Hub
}

func (e *echoHandler) OnMessage(c ClientInfo, data []byte) {
	e.hub.SendToClient(c.ID, append([]byte(nil), data...))
}

// BenchmarkEcho measures round trips through the hub: 64 WebSocket
// clients in a child process each send 64 bytes and wait for them to
// come back (GatewayWorker's figure is 49,000 round trips/s on this
// kind of machine). Each op is one round trip. Reported: round-trips/s
// and the server's CPU per round trip.
//
// Run: go test -run '^$' -bench Echo -benchtime 100000x ./gateway
func BenchmarkEcho(b *testing.B) {
	const clients = 64
	e := &echoHandler{}
	h := New(Options{Handler: e})
	e.hub = h
	srv := httptest.NewServer(h.WebSocketHandler(nil))
	defer srv.Close()
	defer h.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	rounds := max(1, b.N/clients)
	sw := startSwarm(ctx, b, srv.URL, clients, "WSSGATE_SWARM_ECHO="+strconv.Itoa(rounds))
	defer sw.stop()
	if l := sw.next(); l != "ready" {
		b.Fatal(l)
	}
	cpu0 := cpuTime()
	start := time.Now()
	b.ResetTimer()
	io.WriteString(sw.stdin, "go\n")
	if l := sw.next(); l != "done" {
		b.Fatal(l)
	}
	b.StopTimer()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	total := float64(rounds * clients)
	b.ReportMetric(total/elapsed.Seconds(), "round-trips/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/total, "cpu-ns/round-trip")
}

// swarmEcho waits for "go" on stdin, then has every connection send
// 64 bytes and wait for their echo, rounds times, and says "done".
func swarmEcho(conns []*websocket.Conn, rounds int, say func(string, ...any)) {
	say("ready")
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		return
	}
	msg := []byte(strings.Repeat("e", 64))
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			for range rounds {
				if c.WriteMessage(websocket.TextMessage, msg) != nil {
					return
				}
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	say("done")
	io.Copy(io.Discard, os.Stdin)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func openFiles() uint64 {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	return rl.Cur
}
