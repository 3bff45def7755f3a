package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/internal/testutil"
)

// benchClients is how many WebSocket clients each node of the cluster
// case has (WSSGATE_BENCH_CLIENTS, default 300); the single-node case has
// three times as many on one hub.
func benchClients(b *testing.B) int {
	if s := os.Getenv("WSSGATE_BENCH_CLIENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("WSSGATE_BENCH_CLIENTS=%q: want a positive number", s)
		}
		return n
	}
	return 300
}

// counter counts the messages a set of clients received.
type counter struct {
	got  atomic.Int64
	wg   sync.WaitGroup
	peer []*gatewaytest.Peer
}

// add starts a reader for p.
func (c *counter) add(p *gatewaytest.Peer) {
	c.peer = append(c.peer, p)
	c.wg.Go(func() {
		for {
			if _, err := p.ReadErr(time.Minute); err != nil {
				return
			}
			c.got.Add(1)
		}
	})
}

// waitFor waits until n messages have arrived, bounded by a minute.
func (c *counter) waitFor(b *testing.B, n int64) {
	deadline := time.Now().Add(time.Minute)
	for c.got.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("got %d deliveries, want %d", c.got.Load(), n)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func (c *counter) close() {
	for _, p := range c.peer {
		p.Close()
	}
	c.wg.Wait()
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCalls returns the calls of each command (INFO commandstats) and
// the total.
func redisCalls(b *testing.B, r *testutil.Redis) (map[string]int64, int64) {
	info, err := r.Do("INFO", "commandstats")
	if err != nil {
		b.Fatalf("INFO: %v", err)
	}
	out := make(map[string]int64)
	var total int64
	for _, line := range strings.Split(info, "\r\n") {
		name, rest, ok := strings.Cut(line, ":calls=")
		if !ok {
			continue
		}
		v, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
		out[strings.TrimPrefix(name, "cmdstat_")] = v
		total += v
	}
	return out, total
}

// BenchmarkSendToAll compares sendToAll to 3 nodes × N clients with
// sendToAll to one hub with 3N clients, in one process: the clients'
// readers are real WebSocket clients, so the CPU per delivery includes
// them on both sides alike. It reports CPU per delivery, and the Redis
// commands per broadcast (publish/op, and all commands/op including the
// nodes' background refreshes).
func BenchmarkSendToAll(b *testing.B) {
	per := benchClients(b)
	payload := []byte(strings.Repeat("x", 64))

	b.Run(fmt.Sprintf("single/clients=%d", 3*per), func(b *testing.B) {
		env := gatewaytest.New(b, gateway.Options{Logger: quiet()})
		var c counter
		for range 3 * per {
			c.add(env.DialWS(b))
		}
		defer c.close()
		waitClients(b, env.Hub, 3*per)
		run(b, int64(3*per), &c, func() { env.Hub.SendToAll(payload, nil, nil) }, nil)
	})

	b.Run(fmt.Sprintf("cluster3/clients=%dx3", per), func(b *testing.B) {
		r := testutil.StartRedis(b)
		nodes := startCluster(b, 3, func(cfg *Config) { cfg.Logger = quiet() }, r.Addr)
		var c counter
		for _, tn := range nodes {
			for range per {
				c.add(tn.env.DialWS(b))
			}
			waitClients(b, tn.env.Hub, per)
		}
		defer c.close()
		ctx := context.Background()
		run(b, int64(3*per), &c, func() {
			if _, err := nodes[0].SendToAll(ctx, payload, nil, nil); err != nil {
				b.Fatal(err)
			}
		}, r)
	})
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func waitClients(b *testing.B, h *gateway.Hub, n int) {
	deadline := time.Now().Add(time.Minute)
	for h.GetAllClientIDCount() < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d clients connected, want %d", h.GetAllClientIDCount(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// run sends b.N broadcasts, each waited for on every client, and reports
// the CPU per delivery and, with r, Redis commands per broadcast.
func run(b *testing.B, clients int64, c *counter, send func(), r *testutil.Redis) {
	var before map[string]int64
	var totalBefore int64
	if r != nil {
		before, totalBefore = redisCalls(b, r)
	}
	base := c.got.Load()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		send()
		c.waitFor(b, base+int64(i+1)*clients)
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	deliveries := float64(b.N) * float64(clients)
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
	if r != nil {
		after, totalAfter := redisCalls(b, r)
		b.ReportMetric(float64(after["publish"]-before["publish"])/float64(b.N), "publish/op")
		b.ReportMetric(float64(totalAfter-totalBefore)/float64(b.N), "redis-cmds/op")
	}
}
