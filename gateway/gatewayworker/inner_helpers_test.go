package gatewayworker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/internal/testutil"
	"github.com/wssgate/wssgate/proxy"
)

// The compile-time check that *gateway.Hub is a Hub.
var _ Hub = (*gateway.Hub)(nil)

// innerEnv is a hub with WebSocket and text listeners and an inner
// listener on loopback, as wssgate would wire them.
type innerEnv struct {
	hub       *gateway.Hub
	in        *Inner
	key       string
	innerAddr string
	wsURL     string
	wsTLS     *tls.Config    // trusts the edge's certificate; nil without the edge
	edge      *proxy.Proxy   // nil without the edge
	wsAddr    netip.AddrPort // the WebSocket listener's
	textAddr  string
}

func startInner(t *testing.T, cfg InnerConfig) *innerEnv {
	t.Helper()
	return startInnerOn(t, cfg, testutil.Listen(t))
}

// startInnerOn is startInner with the inner listener given.
func startInnerOn(t *testing.T, cfg InnerConfig, ln net.Listener) *innerEnv {
	t.Helper()
	return startInnerServed(t, cfg, ln, false)
}

// edgeFor serves hub's WebSocket handler as wssgate's edge does: behind
// TLS, on a site route with gateway: true, the connection detached from
// the edge's handler into the hub (proxy.Detach).
func edgeFor(t *testing.T, hub *gateway.Hub) (*httptest.Server, *proxy.Proxy) {
	t.Helper()
	cfg := config.Default()
	cfg.Sites = []config.Site{{Hosts: []string{"127.0.0.1"}, TLS: config.SiteTLS{Internal: true},
		Routes: []config.Route{{Path: "/", Gateway: true}}}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("edge config: %v", err)
	}
	p, err := proxy.New(&cfg, proxy.Options{Gateway: hub.WebSocketHandler(proxy.ClientAddrFunc(nil)), Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(p)
	srv.StartTLS()
	return srv, p
}

// startInnerServed is startInnerOn, with the WebSocket clients reaching
// the hub through the edge (TLS, a gateway route) when edge is set.
func startInnerServed(t *testing.T, cfg InnerConfig, ln net.Listener, edge bool) *innerEnv {
	t.Helper()
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	cfg.Address = addr
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger(t)
	}
	in, err := NewInner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := gateway.Options{Node: addr, Handler: in, SessionCodec: PHPSessionCodec{}, Logger: testutil.Logger(t)}
	if edge {
		opts.Detach = proxy.Detach // the edge keeps each connection's slot and access line
	}
	hub := gateway.New(opts)
	var srv *httptest.Server
	var edgeProxy *proxy.Proxy
	var wsTLS *tls.Config
	if edge {
		srv, edgeProxy = edgeFor(t, hub)
		roots := x509.NewCertPool()
		roots.AddCert(srv.Certificate())
		wsTLS = &tls.Config{RootCAs: roots}
	} else {
		srv = httptest.NewServer(hub.WebSocketHandler(nil))
	}
	textLn := testutil.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); hub.Run(ctx) }()
	go func() { defer wg.Done(); hub.ServeText(ctx, textLn) }()
	go func() {
		defer wg.Done()
		if err := in.Serve(ctx, ln, hub); err != nil {
			t.Errorf("Inner.Serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := hub.Shutdown(sctx); err != nil {
			t.Errorf("hub Shutdown: %v", err)
		}
		if edgeProxy != nil {
			if err := edgeProxy.Shutdown(sctx); err != nil {
				t.Errorf("edge Shutdown: %v", err)
			}
		}
		cancel()
		wg.Wait()
		srv.Close()
	})
	return &innerEnv{hub: hub, in: in, key: cfg.SecretKey, innerAddr: ln.Addr().String(),
		wsURL: "ws" + strings.TrimPrefix(srv.URL, "http"), wsTLS: wsTLS, edge: edgeProxy, wsAddr: srv.Listener.Addr().(*net.TCPAddr).AddrPort(),
		textAddr: textLn.Addr().String()}
}

// clientID returns the client id of a connection id of the env.
func (e *innerEnv) clientID(conn uint32) string {
	return ClientID{Addr: netip.MustParseAddrPort(e.innerAddr), ConnectionID: conn}.String()
}

// businessWorker is a BusinessWorker stand-in: one long connection.
type businessWorker struct {
	t  *testing.T
	nc net.Conn
	r  *Reader
}

// dialWorker connects a BusinessWorker and waits until the env has
// counted it.
func (e *innerEnv) dialWorker(t *testing.T, name, key string) *businessWorker {
	t.Helper()
	n := e.in.Stats().Workers
	b := e.dialRawWorker(t, name, key)
	waitFor(t, "the worker", func() bool { return e.in.Stats().Workers == n+1 })
	return b
}

func (e *innerEnv) dialRawWorker(t *testing.T, name, key string) *businessWorker {
	t.Helper()
	nc, err := net.DialTimeout("tcp", e.innerAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	b := &businessWorker{t: t, nc: nc, r: NewReader(nc)}
	b.send(Packet{Cmd: CmdWorkerConnect, Flag: FlagBodyIsScalar,
		Body: []byte(`{"worker_key":"` + name + `","secret_key":"` + key + `"}`)})
	return b
}

func (b *businessWorker) send(p Packet) {
	b.t.Helper()
	buf, err := p.Encode()
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := b.nc.Write(buf); err != nil {
		b.t.Fatal(err)
	}
}

// next returns the next event, skipping pings.
func (b *businessWorker) next() *Packet {
	b.t.Helper()
	for {
		b.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		p, err := b.r.ReadPacket()
		if err != nil {
			b.t.Fatalf("worker: reading an event: %v", err)
		}
		if p.Cmd != CmdPing {
			return p
		}
	}
}

// expect returns the next event, which must be cmd.
func (b *businessWorker) expect(cmd Cmd) *Packet {
	b.t.Helper()
	p := b.next()
	if p.Cmd != cmd {
		b.t.Fatalf("worker: got %v (%q), want %v", p.Cmd, p.Body, cmd)
	}
	return p
}

// quiet checks that no event arrives for a while.
func (b *businessWorker) quiet(d time.Duration) {
	b.t.Helper()
	b.nc.SetReadDeadline(time.Now().Add(d))
	if p, err := b.r.ReadPacket(); err == nil {
		b.t.Fatalf("worker: got %v, want nothing", p.Cmd)
	}
}

// call is one GatewayClient call: its own connection, the auth packet
// (when key is set) and the command in one write, then everything the
// gateway sends until it closes the connection after our half-close.
func (e *innerEnv) call(t *testing.T, packets ...Packet) []byte {
	t.Helper()
	var buf []byte
	if e.key != "" {
		auth := Packet{Cmd: CmdGatewayClientConnect, Flag: FlagBodyIsScalar, Body: []byte(`{"secret_key":"` + e.key + `"}`)}
		buf, _ = auth.AppendEncode(buf)
	}
	for _, p := range packets {
		var err error
		if buf, err = p.AppendEncode(buf); err != nil {
			t.Fatal(err)
		}
	}
	return e.rawCall(t, buf)
}

func (e *innerEnv) rawCall(t *testing.T, buf []byte) []byte {
	t.Helper()
	nc, err := net.DialTimeout("tcp", e.innerAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(buf); err != nil {
		t.Fatal(err)
	}
	nc.(*net.TCPConn).CloseWrite()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(nc)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("call: %v", err)
	}
	return got
}

// query runs one query and returns its reply's value.
func (e *innerEnv) query(t *testing.T, p Packet) any {
	t.Helper()
	got := e.call(t, p)
	payload, _, err := readReplyBytes(got)
	if err != nil {
		t.Fatalf("%v: reply %q: %v", p.Cmd, got, err)
	}
	v, err := Unserialize(payload)
	if err != nil {
		t.Fatalf("%v: reply %q: %v", p.Cmd, payload, err)
	}
	return v
}

func readReplyBytes(b []byte) ([]byte, int, error) {
	payload, err := ReadReply(strings.NewReader(string(b)), 0)
	return payload, 4 + len(payload), err
}

// serialized returns serialize(v) as a string, for comparisons.
func serialized(t *testing.T, v any) string {
	t.Helper()
	b, err := Serialize(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
