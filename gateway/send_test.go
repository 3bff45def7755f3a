package gateway_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/internal/testutil"
)

// TestSendWriteNowThenQueue: a send writes what the socket takes at once
// and queues the rest, a part of a frame included; once the client
// reads, every message arrives whole and in order, on both transports.
func TestSendWriteNowThenQueue(t *testing.T) {
	const n, size = 100, 64 << 10 // 6.4 MB: more than loopback socket buffers hold
	th := gatewaytest.New(t, gateway.Options{SendQueue: 2 * n, MaxMessageBytes: 2 * size})
	for _, transport := range []string{"websocket", "text"} {
		t.Run(transport, func(t *testing.T) {
			p, id := th.Connect(t, transport)
			before := th.Hub.Stats().MessagesOut
			msg := func(i int) []byte {
				b := bytes.Repeat([]byte{byte('a' + i%26)}, size)
				copy(b, fmt.Sprintf("%d:", i))
				return b
			}
			for i := range n {
				if err := th.Hub.SendToClient(id, msg(i)); err != nil {
					t.Fatal(err)
				}
			}
			// The socket is full: the rest waits in the queue.
			testutil.WaitFor(t, "the writer to start", func() bool { return th.Hub.Writing(id) })
			for i := range n {
				got, err := p.ReadErr(10 * time.Second)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if want := msg(i); got != string(want) {
					t.Fatalf("message %d: got %d bytes starting %q, want %d starting %q", i, len(got), got[:min(8, len(got))], len(want), want[:8])
				}
			}
			testutil.WaitFor(t, "every message counted", func() bool { return th.Hub.Stats().MessagesOut-before == n })
		})
	}
}

// discardingPeers connects n text peers to th that read and drop what
// they get, so that their sockets never fill.
func discardingPeers(t testing.TB, th *gatewaytest.Env, n int) {
	t.Helper()
	for range n {
		p, _ := th.Connect(t, "text")
		go io.Copy(io.Discard, p.Conn()) // ends when the test's cleanup closes the connection
	}
}

// TestSendToAllAllocs: a broadcast allocates per message, never per
// client: the message, its wire form, and nothing for each receiver.
func TestSendToAllAllocs(t *testing.T) {
	data := []byte("hello, everyone")
	allocs := map[int]float64{}
	for _, n := range []int{10, 200} {
		th := gatewaytest.New(t, gateway.Options{SendQueue: 1 << 16})
		discardingPeers(t, th, n)
		allocs[n] = testing.AllocsPerRun(50, func() {
			if got := th.Hub.SendToAll(data, nil, nil); got != n {
				t.Fatalf("SendToAll reached %d clients, want %d", got, n)
			}
		})
	}
	if allocs[200] != allocs[10] || allocs[10] > 4 {
		t.Errorf("allocations per SendToAll: %v with 10 clients, %v with 200; want the same, at most 4", allocs[10], allocs[200])
	}
}

// BenchmarkSendToAll measures one SendToAll to 1,000 text clients over
// loopback, clients reading in the same process. allocs/op is per
// broadcast: it must not grow with the clients.
//
// Run: go test -run '^$' -bench SendToAll -benchmem ./gateway
func BenchmarkSendToAll(b *testing.B) {
	const n = 1000
	th := gatewaytest.New(b, gateway.Options{SendQueue: 1 << 16, Logger: slog.New(slog.DiscardHandler)})
	discardingPeers(b, th, n)
	data := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		th.Hub.SendToAll(data, nil, nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
}
