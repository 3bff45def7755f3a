package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wssgate/wssgate/internal/wsframe"
)

// benchStream starts a stream between loopback connection pairs, with
// TLS between the client end and the proxy when useTLS is set, and
// returns the far ends. The stream is aborted when b ends.
func benchStream(b *testing.B, p *tcpPairer, useTLS bool, opts streamOptions) (s *stream, client, upstream net.Conn, done <-chan streamResult) {
	b.Helper()
	client, proxyClient := p.pair(b)
	proxyUpstream, upstream := p.pair(b)
	if useTLS {
		serverConf, clientConf := selfSignedTLS(b)
		clientConf.ServerName = "127.0.0.1"
		tc, ts := tls.Client(client, clientConf), tls.Server(proxyClient, serverConf)
		errc := make(chan error, 1)
		go func() { errc <- ts.Handshake() }()
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		client, proxyClient = tc, ts
	}
	s = newStream(proxyClient, nil, proxyUpstream, nil, opts)
	results := make(chan streamResult, 1)
	go func() { results <- s.run() }()
	b.Cleanup(func() {
		s.abort()
		client.Close()
		upstream.Close()
		<-results
	})
	return s, client, upstream, results
}

// copyRelay relays like httputil's switchProtocolCopier, two io.Copy
// calls and nothing else: the baseline for BenchmarkStreamRelay.
func copyRelay(b *testing.B, p *tcpPairer) (client, upstream net.Conn) {
	client, proxyClient := p.pair(b)
	proxyUpstream, upstream := p.pair(b)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		io.Copy(proxyUpstream, proxyClient)
		proxyUpstream.Close()
	}()
	go func() {
		defer wg.Done()
		io.Copy(proxyClient, proxyUpstream)
		proxyClient.Close()
	}()
	b.Cleanup(func() {
		client.Close()
		upstream.Close()
		wg.Wait()
	})
	return client, upstream
}

// BenchmarkStreamRelay measures a round trip of a 64-byte message through
// a stream: client to proxy to an echoing upstream and back. The endpoints
// use fixed buffers, so allocs/op is the relay's own (over TLS, crypto/tls
// allocates once per record read, on each side). io-copy-baseline is the
// same through two plain io.Copy calls.
func BenchmarkStreamRelay(b *testing.B) {
	for _, mode := range []string{"tcp", "tls", "io-copy-baseline"} {
		b.Run(mode, func(b *testing.B) {
			p := newTCPPairer(b)
			var client, upstream net.Conn
			if mode == "io-copy-baseline" {
				client, upstream = copyRelay(b, p)
			} else {
				_, client, upstream, _ = benchStream(b, p, mode == "tls", streamOptions{
					IdleTimeout: time.Minute, PingInterval: time.Minute, PingTimeout: 2 * time.Minute,
					Counters: new(relayCounters), // as a route's streams have
				})
			}
			payload := make([]byte, 64)
			request := appendTestFrame(nil, testFrame{fin: true, opcode: wsframe.OpBinary, masked: true, key: [4]byte{1, 2, 3, 4}, payload: payload})
			reply := appendTestFrame(nil, testFrame{fin: true, opcode: wsframe.OpBinary, payload: payload})
			go func() {
				buf := make([]byte, len(request))
				for {
					if _, err := io.ReadFull(upstream, buf); err != nil {
						return
					}
					if _, err := upstream.Write(reply); err != nil {
						return
					}
				}
			}()
			buf := make([]byte, len(reply))
			roundTrip := func() {
				if _, err := client.Write(request); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(client, buf); err != nil {
					b.Fatal(err)
				}
			}
			for range 200 { // warm up buffers, pools and the TLS record path
				roundTrip()
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(request) + len(reply)))
			for b.Loop() {
				roundTrip()
			}
		})
	}
}

// BenchmarkStreamThroughput measures one-way relaying of 64 KiB frames,
// which takes the pooled large buffers.
func BenchmarkStreamThroughput(b *testing.B) {
	p := newTCPPairer(b)
	_, client, upstream, _ := benchStream(b, p, false, streamOptions{Counters: new(relayCounters)})
	frame := appendTestFrame(nil, testFrame{fin: true, opcode: wsframe.OpBinary, masked: true, key: [4]byte{1, 2, 3, 4}, payload: make([]byte, 64<<10)})
	want := int64(b.N) * int64(len(frame))
	read := make(chan int64, 1)
	go func() {
		got, _ := io.CopyBuffer(io.Discard, io.LimitReader(upstream, want), make([]byte, 64<<10))
		read <- got
	}()
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	for range b.N {
		if _, err := client.Write(frame); err != nil {
			b.Fatal(err)
		}
	}
	if got := <-read; got != want {
		b.Fatalf("upstream got %d bytes, want %d", got, want)
	}
}

// BenchmarkStreamIdleMemory opens 1000 streams over loopback, lets them go
// idle, and reports the memory they hold: heap and goroutine stacks, per
// stream. "after-burst" first relays 64 KiB each way on every stream, to
// show the large buffers go back to the pool once reads drain (heap stays
// the same; stacks that grew during the burst shrink only over later GCs).
// The figures count both goroutines of a stream, although in the proxy one
// of them is the HTTP handler's own, and their descriptors, which the
// runtime reuses from dead goroutines when it has them (as in a second
// run of this benchmark).
func BenchmarkStreamIdleMemory(b *testing.B) {
	for _, burst := range []bool{false, true} {
		name := "fresh"
		if burst {
			name = "after-burst"
		}
		b.Run(name, func(b *testing.B) {
			const n = 1000
			p := newTCPPairer(b)
			type pair struct{ client, proxyClient, proxyUpstream, upstream net.Conn }
			pairs := make([]pair, n)
			for i := range pairs {
				c, pc := p.pair(b)
				pu, u := p.pair(b)
				pairs[i] = pair{c, pc, pu, u}
			}
			b.Cleanup(func() {
				for _, pr := range pairs {
					pr.client.Close()
					pr.upstream.Close()
				}
			})
			pool := newBufferPool()
			opts := streamOptions{Buffers: pool, IdleTimeout: time.Minute, PingInterval: 30 * time.Second, PingTimeout: time.Minute, Counters: new(relayCounters)}
			frame := appendTestFrame(nil, testFrame{fin: true, opcode: wsframe.OpBinary, masked: true, key: [4]byte{1, 2, 3, 4}, payload: make([]byte, 64<<10)})
			reply := appendTestFrame(nil, testFrame{fin: true, opcode: wsframe.OpBinary, payload: make([]byte, 64<<10)})

			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			g0 := runtime.NumGoroutine()
			streams := make([]*stream, n)
			var wg sync.WaitGroup
			for i, pr := range pairs {
				s := newStream(pr.proxyClient, nil, pr.proxyUpstream, nil, opts)
				streams[i] = s
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.run()
				}()
			}
			if burst {
				var bw sync.WaitGroup
				for _, pr := range pairs {
					bw.Add(2)
					go func() {
						defer bw.Done()
						pr.client.Write(frame)
						io.ReadFull(pr.client, make([]byte, len(reply)))
					}()
					go func() {
						defer bw.Done()
						io.ReadFull(pr.upstream, make([]byte, len(frame)))
						pr.upstream.Write(reply)
					}()
				}
				bw.Wait()
			}
			for runtime.NumGoroutine() < g0+2*n {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // let every forwarder block in Read
			goroutines := runtime.NumGoroutine() - g0
			// The second GC empties sync.Pool's victim cache; each one also
			// halves goroutine stacks that grew during the burst but are
			// mostly unused now.
			for range 4 {
				runtime.GC()
			}
			runtime.ReadMemStats(&after)

			heap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
			stack := float64(int64(after.StackInuse)-int64(before.StackInuse)) / n
			for range b.N {
				// The measurement above is the benchmark; b.N is not used.
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(heap+stack, "B/stream")
			b.ReportMetric(heap, "heap-B/stream")
			b.ReportMetric(stack, "stack-B/stream")
			b.ReportMetric(float64(goroutines)/n, "goroutines/stream")

			for _, s := range streams {
				s.abort()
			}
			wg.Wait()
		})
	}
}
