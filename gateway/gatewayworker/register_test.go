package gatewayworker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wssgate/wssgate/internal/testutil"
)

// startRegister serves a Register on a free loopback port until the test
// ends.
func startRegister(t *testing.T, cfg RegisterConfig) (*Register, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger(t)
	}
	r := NewRegister(cfg)
	ln := testutil.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return")
		}
	})
	return r, ln.Addr().String()
}

// lineConn is a raw Register peer.
type lineConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialLines(t *testing.T, addr string) *lineConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &lineConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *lineConn) write(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// line reads one line, with its "\n".
func (c *lineConn) line() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a line: got %q, %v", s, err)
	}
	return s
}

// closed checks that the peer closes the connection, after sending
// exactly want.
func (c *lineConn) closed(want string) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c.br)
	if err != nil {
		c.t.Fatalf("want the connection closed: %v (after %q)", err, got)
	}
	if string(got) != want {
		c.t.Errorf("before closing: got %q, want %q", got, want)
	}
}

func broadcast(addrs ...string) string { return string(AppendBroadcastAddresses(nil, addrs)) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestRegisterBroadcasts(t *testing.T) {
	r, addr := startRegister(t, RegisterConfig{})
	w1 := dialLines(t, addr)
	w1.write(`{"event":"worker_connect","secret_key":""}` + "\n")
	if got, want := w1.line(), broadcast(); got != want {
		t.Fatalf("first list: got %q, want %q", got, want)
	}
	g1 := dialLines(t, addr)
	g1.write(string(AppendGatewayConnect(nil, "10.0.0.1:2900", "")))
	if got, want := w1.line(), broadcast("10.0.0.1:2900"); got != want {
		t.Errorf("after a gateway: got %q, want %q", got, want)
	}
	remove := r.AddGateway("10.0.0.2:2900")
	if got, want := w1.line(), broadcast("10.0.0.1:2900", "10.0.0.2:2900"); got != want {
		t.Errorf("after AddGateway: got %q, want %q", got, want)
	}
	// A second worker gets the list on connecting.
	w2 := dialLines(t, addr)
	w2.write(string(AppendWorkerConnect(nil, "")))
	if got, want := w2.line(), broadcast("10.0.0.1:2900", "10.0.0.2:2900"); got != want {
		t.Errorf("second worker: got %q, want %q", got, want)
	}
	// The same address twice is listed once.
	g2 := dialLines(t, addr)
	g2.write(string(AppendGatewayConnect(nil, "10.0.0.1:2900", "")))
	for _, w := range []*lineConn{w1, w2} {
		if got, want := w.line(), broadcast("10.0.0.1:2900", "10.0.0.2:2900"); got != want {
			t.Errorf("a repeated address: got %q, want %q", got, want)
		}
	}
	g1.nc.Close()
	for _, w := range []*lineConn{w1, w2} {
		if got, want := w.line(), broadcast("10.0.0.2:2900", "10.0.0.1:2900"); got != want {
			t.Errorf("after the first gateway left: got %q, want %q", got, want)
		}
	}
	remove()
	remove()
	g2.write(string(AppendPing(nil)))
	g2.nc.Close()
	for _, want := range []string{broadcast("10.0.0.1:2900"), broadcast()} {
		if got := w1.line(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if got := r.Addresses(); len(got) != 0 {
		t.Errorf("Addresses: got %v, want none", got)
	}
}

func TestRegisterSecretKey(t *testing.T) {
	tests := []struct {
		name      string
		key, line string
		ok        bool
	}{
		{"worker right key", "k", `{"event":"worker_connect","secret_key":"k"}`, true},
		{"worker wrong key", "k", `{"event":"worker_connect","secret_key":"x"}`, false},
		{"worker no key", "k", `{"event":"worker_connect"}`, false},
		{"worker key where none is set", "", `{"event":"worker_connect","secret_key":"k"}`, false},
		{"worker no key, none set", "", `{"event":"worker_connect"}`, true},
		{"gateway right key", "k", `{"event":"gateway_connect", "address":"1.2.3.4:5", "secret_key":"k"}`, true},
		{"gateway wrong key", "k", `{"event":"gateway_connect", "address":"1.2.3.4:5", "secret_key":"K"}`, false},
		{"gateway no key", "k", `{"event":"gateway_connect", "address":"1.2.3.4:5"}`, false},
		{"gateway no address", "", `{"event":"gateway_connect", "secret_key":""}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, addr := startRegister(t, RegisterConfig{SecretKey: tt.key})
			c := dialLines(t, addr)
			c.write(tt.line + "\n")
			gateway := strings.Contains(tt.line, "gateway_connect")
			switch {
			case !tt.ok:
				c.closed("")
				if got := r.Addresses(); len(got) != 0 {
					t.Errorf("a refused gateway is listed: %v", got)
				}
			case gateway:
				waitFor(t, "the address", func() bool { return slices.Equal(r.Addresses(), []string{"1.2.3.4:5"}) })
			default:
				if got := c.line(); got != broadcast() {
					t.Errorf("got %q, want %q", got, broadcast())
				}
			}
		})
	}
}

func TestRegisterRefuses(t *testing.T) {
	tests := []struct {
		name, send, reply string
	}{
		{"not JSON", "hello\n", "Bad request for Register service.\n"},
		{"no event", `{"secret_key":""}` + "\n", "Bad request for Register service.\n"},
		{"unknown event", `{"event":"shutdown"}` + "\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := startRegister(t, RegisterConfig{})
			c := dialLines(t, addr)
			c.write(tt.send)
			c.closed(tt.reply)
		})
	}
	t.Run("auth timeout", func(t *testing.T) {
		_, addr := startRegister(t, RegisterConfig{AuthTimeout: 50 * time.Millisecond})
		c := dialLines(t, addr)
		start := time.Now()
		c.closed("")
		if d := time.Since(start); d < 40*time.Millisecond {
			t.Errorf("closed after %v, before the timeout", d)
		}
	})
	t.Run("the timeout ends with the first line", func(t *testing.T) {
		_, addr := startRegister(t, RegisterConfig{AuthTimeout: 50 * time.Millisecond})
		c := dialLines(t, addr)
		c.write(string(AppendWorkerConnect(nil, "")))
		c.line()
		time.Sleep(150 * time.Millisecond)
		c.write(string(AppendPing(nil)))
		c.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.br.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("want the connection open and quiet, got %v", err)
		}
	})
}

func TestRegisterClient(t *testing.T) {
	r, addr := startRegister(t, RegisterConfig{SecretKey: "k"})
	w := dialLines(t, addr)
	w.write(string(AppendWorkerConnect(nil, "k")))
	w.line()

	rc, err := NewRegisterClient(RegisterClientConfig{
		RegisterAddress: addr, Address: "127.0.0.1:2900", SecretKey: "k",
		RetryDelay: 20 * time.Millisecond, Logger: testutil.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rc.Run(ctx) }()
	if got, want := w.line(), broadcast("127.0.0.1:2900"); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	addrs, err := FetchAddresses(ctx, addr, "k")
	if err != nil || !slices.Equal(addrs, []string{"127.0.0.1:2900"}) {
		t.Errorf("FetchAddresses: got %v, %v", addrs, err)
	}
	if _, err := FetchAddresses(ctx, addr, "wrong"); !errors.Is(err, ErrSecretKey) {
		t.Errorf("FetchAddresses with a wrong key: got %v, want ErrSecretKey", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if got, want := w.line(), broadcast(); got != want {
		t.Errorf("after Run ended: got %q, want %q", got, want)
	}
	_ = r
}

// TestRegisterClientReconnects restarts the Register under the client:
// it registers again on its own.
func TestRegisterClientReconnects(t *testing.T) {
	ln := testutil.Listen(t)
	addr := ln.Addr().String()
	serve := func(ln net.Listener) (*Register, func()) {
		r := NewRegister(RegisterConfig{Logger: testutil.Logger(t)})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.Serve(ctx, ln); close(done) }()
		return r, func() { cancel(); <-done }
	}
	r1, stop1 := serve(ln)
	rc, _ := NewRegisterClient(RegisterClientConfig{RegisterAddress: addr, Address: "127.0.0.1:2901", RetryDelay: 10 * time.Millisecond, Logger: testutil.Logger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the first registration", func() bool { return len(r1.Addresses()) == 1 })
	stop1()
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	r2, stop2 := serve(ln2)
	defer stop2()
	waitFor(t, "the registration again", func() bool { return slices.Equal(r2.Addresses(), []string{"127.0.0.1:2901"}) })
}

func TestRegisterClientPings(t *testing.T) {
	ln := testutil.Listen(t)
	rc, err := NewRegisterClient(RegisterClientConfig{RegisterAddress: ln.Addr().String(), Address: "127.0.0.3:2000", SecretKey: "S3cr3t-K3y", PingInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rc.Run(ctx) }()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	var got []string
	for range 3 {
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		s, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	cancel()
	<-done
	// The captured Gateway's stream in the secret scenario: the same
	// bytes, one ping after the registration.
	captured, err := os.ReadFile("testdata/streams/secret/register_0001_c2s.bin")
	if err != nil {
		t.Fatal(err)
	}
	if want := string(captured); got[0]+got[1] != want {
		t.Errorf("got %q, want the captured %q", got[0]+got[1], want)
	}
	if got[2] != `{"event":"ping"}`+"\n" {
		t.Errorf("second ping: got %q", got[2])
	}
}

func TestRegisterClientConfig(t *testing.T) {
	if _, err := NewRegisterClient(RegisterClientConfig{}); err == nil || !strings.Contains(err.Error(), "register address") || !strings.Contains(err.Error(), "announced address") {
		t.Errorf("empty config: got %v, want both addresses named", err)
	}
	for _, tt := range []struct {
		register string
		want     time.Duration
	}{{"127.0.0.1:1238", 0}, {"10.0.0.1:1238", DefaultPingInterval}, {"127.0.0.3:1238", DefaultPingInterval}} {
		rc, err := NewRegisterClient(RegisterClientConfig{RegisterAddress: tt.register, Address: "127.0.0.1:1"})
		if err != nil || rc.cfg.PingInterval != tt.want {
			t.Errorf("%s: ping interval got %v (%v), want %v", tt.register, rc.cfg.PingInterval, err, tt.want)
		}
	}
}

// TestRegisterReplayStreams replays the Register connections captured
// between real PHP processes against this Register and checks that
// every byte it answers is the captured Register's.
func TestRegisterReplayStreams(t *testing.T) {
	for _, sc := range []struct{ name, key string }{{"nosecret", ""}, {"secret", "S3cr3t-K3y"}} {
		t.Run(sc.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "streams", sc.name)
			files, err := filepath.Glob(filepath.Join(dir, "register_*_c2s.bin"))
			if err != nil || len(files) < 3 {
				t.Fatalf("streams: %v, %v", files, err)
			}
			read := func(name string) string {
				b, err := os.ReadFile(name)
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			r, addr := startRegister(t, RegisterConfig{SecretKey: sc.key})
			// Connection 1 is the Gateway, 2 the BusinessWorker, the rest
			// GatewayClient calls.
			g := dialLines(t, addr)
			g.write(read(files[0]))
			waitFor(t, "the gateway", func() bool { return len(r.Addresses()) == 1 })
			w := dialLines(t, addr)
			w.write(read(files[1]))
			var fromWorker bytes.Buffer
			fromWorker.WriteString(w.line())
			for _, f := range files[2:] {
				c := dialLines(t, addr)
				c.write(read(f))
				got := c.line()
				if want := read(strings.Replace(f, "_c2s", "_s2c", 1)); got != want {
					t.Errorf("%s: got %q, want %q", filepath.Base(f), got, want)
				}
				c.nc.Close()
			}
			// The captured Gateway sent nothing more and got nothing.
			if want := read(strings.Replace(files[0], "_c2s", "_s2c", 1)); want != "" {
				t.Errorf("captured register answer to the gateway: %q", want)
			}
			g.nc.Close() // the Gateway stops: the worker hears of it
			fromWorker.WriteString(w.line())
			if want := read(strings.Replace(files[1], "_c2s", "_s2c", 1)); fromWorker.String() != want {
				t.Errorf("to the BusinessWorker: got %q, want %q", fromWorker.String(), want)
			}
		})
	}
}

func ExampleRegister() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	r := NewRegister(RegisterConfig{SecretKey: "k"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, ln) }()
	remove := r.AddGateway("10.0.0.7:2900") // this process's own inner address
	defer remove()

	addrs, err := FetchAddresses(ctx, ln.Addr().String(), "k")
	fmt.Println(addrs, err)
	cancel()
	<-done
	// Output: [10.0.0.7:2900] <nil>
}
