package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Client timings.
const (
	dialTimeout      = 5 * time.Second  // TCP connect
	handshakeTimeout = 10 * time.Second // TLS + WebSocket upgrade
	helloTimeout     = 10 * time.Second // an idle connection's one echo
	closeWait        = time.Second      // writing a close frame
)

// client dials wss://localhost/wss on one proxy. It offers X25519 and
// P-256 key exchange only, so that a Go server does not pick the
// post-quantum hybrid that OpenSSL 3.0 lacks and both proxies pay for
// the same handshake.
type client struct {
	url     string // wss://localhost:PORT/wss
	addr    string // 127.0.0.1:PORT, dialed whatever localhost resolves to
	sources []netip.Addr
	next    atomic.Uint64 // round-robin over sources
	dialer  websocket.Dialer
}

// newClient returns a client for the proxy at addr that trusts roots and
// connects from sources in turn (empty: the kernel's choice).
func newClient(addr string, roots *x509.CertPool, sources []netip.Addr) (*client, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &client{url: "wss://localhost:" + port + "/wss", addr: addr, sources: sources}
	c.dialer = websocket.Dialer{
		NetDialContext:   c.dialTCP,
		HandshakeTimeout: handshakeTimeout,
		TLSClientConfig: &tls.Config{
			RootCAs:          roots,
			ServerName:       "localhost",
			MinVersion:       tls.VersionTLS12,
			CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
		},
	}
	return c, nil
}

// dialTCP connects to the proxy from the next source address.
func (c *client) dialTCP(ctx context.Context, network, _ string) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	if len(c.sources) > 0 {
		src := c.sources[(c.next.Add(1)-1)%uint64(len(c.sources))]
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	return d.DialContext(ctx, network, c.addr)
}

// dial opens one WebSocket through the proxy.
func (c *client) dial(ctx context.Context) (*websocket.Conn, error) {
	conn, resp, err := c.dialer.DialContext(ctx, c.url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (HTTP %s)", c.url, err, resp.Status)
		}
		return nil, fmt.Errorf("dial %s: %w", c.url, err)
	}
	return conn, nil
}

// roundTrip sends msg and reads the echo, which must be equal, before
// the connection's deadline.
func roundTrip(c *websocket.Conn, msg []byte) error {
	if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	_, got, err := c.ReadMessage()
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo: got %d bytes that differ from the %d sent", len(got), len(msg))
	}
	return nil
}

// tlsSummary names a connection's TLS version, cipher suite and key
// exchange, "TLS 1.3 TLS_AES_128_GCM_SHA256 X25519".
func tlsSummary(c *websocket.Conn) string {
	tc, ok := c.NetConn().(*tls.Conn)
	if !ok {
		return "no TLS"
	}
	st := tc.ConnectionState()
	return fmt.Sprintf("%s %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID)
}

// openIdle opens n connections with up to par dials at once; each
// exchanges one message of size bytes, so that both hops are
// established and have carried data, and is then left idle. On error it
// closes what it opened. ctx bounds the whole phase.
func openIdle(ctx context.Context, cl *client, n, par, size int) ([]*websocket.Conn, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	conns := make([]*websocket.Conn, n)
	msg := bytes.Repeat([]byte{'i'}, size)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(par, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := cl.dial(ctx)
				if err != nil {
					cancel(fmt.Errorf("idle connection %d: %w", i, err))
					return
				}
				conns[i] = c
				_ = c.SetReadDeadline(time.Now().Add(helloTimeout))
				if err := roundTrip(c, msg); err != nil {
					cancel(fmt.Errorf("idle connection %d: %w", i, err))
					return
				}
				_ = c.SetReadDeadline(time.Time{})
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		closeAll(conns)
		return nil, err
	}
	return conns, nil
}

// closeAll sends each open connection a normal close and closes it.
func closeAll(conns []*websocket.Conn) {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	for _, c := range conns {
		if c != nil {
			_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait))
			_ = c.Close()
		}
	}
}

// echoLoad describes the echo phase.
type echoLoad struct {
	Clients  int           // connections, one goroutine each
	Rounds   int           // round trips per connection at most
	Duration time.Duration // the phase ends after this at most
	Size     int           // message size, bytes
}

// echoResult is what the echo phase measured on the client side.
type echoResult struct {
	RoundTrips int64           // completed
	Elapsed    time.Duration   // from the first write to the last echo
	Latencies  []time.Duration // one per round trip, sorted
}

// percentile returns the p-th percentile (0 < p <= 100) of the sorted
// latencies by the nearest-rank method, or 0 without any.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(len(sorted))*p/100)) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// isTimeout reports whether err is a deadline that passed. gorilla's
// reader replaces timeout errors with its own type, which keeps only
// the Timeout method.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// connectEcho opens the echo phase's connections before it starts, so
// that handshakes stay out of its figures.
func connectEcho(ctx context.Context, cl *client, l echoLoad) ([]*websocket.Conn, error) {
	conns, err := openIdle(ctx, cl, l.Clients, l.Clients, l.Size)
	if err != nil {
		return nil, fmt.Errorf("echo: %w", err)
	}
	return conns, nil
}

// runEcho has each connection send a message and wait for its echo, over
// and over, until it has done l.Rounds, l.Duration has passed or ctx
// ends. start is called just before the first message. Round trips cut
// off by the end of the phase are not counted; any other failure is an
// error.
func runEcho(ctx context.Context, conns []*websocket.Conn, l echoLoad, start func()) (echoResult, error) {
	return echoSwarm(ctx, len(conns), l.Rounds, l.Duration, start,
		func(i int, t time.Time) { _ = conns[i].NetConn().SetDeadline(t) },
		func(i int) func() error {
			msg := bytes.Repeat([]byte{byte('a' + i%26)}, l.Size)
			return func() error { return roundTrip(conns[i], msg) }
		})
}

// echoSwarm runs n echo clients at once, each calling the round trip
// client(i) returns over and over, up to rounds times, until d has
// passed or ctx ends. start is called just before the first round trip;
// deadline(i, t) sets client i's connection deadline (to the phase's end,
// or to now when ctx ends). A round trip cut off by the end of the phase
// is not counted; any other failure ends the phase with an error.
func echoSwarm(ctx context.Context, n, rounds int, d time.Duration, start func(),
	deadline func(i int, t time.Time), client func(i int) func() error) (echoResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lat := make([][]time.Duration, n)
	var total atomic.Int64
	var wg sync.WaitGroup
	trips := make([]func() error, n)
	for i := range n {
		trips[i] = client(i)
	}
	start()
	t0 := time.Now()
	end := t0.Add(d)
	for i := range n {
		// A stalled read or write ends with the phase, or with ctx.
		deadline(i, end)
		stop := context.AfterFunc(ctx, func() { deadline(i, time.Now()) })
		wg.Go(func() {
			defer stop()
			mine := make([]time.Duration, 0, min(rounds, 1<<16))
			for range rounds {
				if ctx.Err() != nil || !time.Now().Before(end) {
					break
				}
				t := time.Now()
				if err := trips[i](); err != nil {
					// The phase's end is a timeout, ctx's end has a cause
					// already; anything else is a failure.
					if ctx.Err() == nil && (!isTimeout(err) || time.Now().Before(end)) {
						cancel(fmt.Errorf("echo client %d: %w", i, err))
					}
					break
				}
				mine = append(mine, time.Since(t))
			}
			lat[i] = mine
			total.Add(int64(len(mine)))
		})
	}
	wg.Wait()
	res := echoResult{RoundTrips: total.Load(), Elapsed: time.Since(t0)}
	if err := context.Cause(ctx); err != nil {
		return res, err
	}
	res.Latencies = slices.Concat(lat...)
	slices.Sort(res.Latencies)
	return res, nil
}
