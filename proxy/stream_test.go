package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wssgate/wssgate/internal/testutil"
	"github.com/wssgate/wssgate/internal/wsframe"
)

// relayWait bounds every wait in these tests.
const relayWait = 5 * time.Second

// verifyNoStreamLeaks fails t if goroutines started during it outlive it. Call it
// first in a test, so that its check runs after every other cleanup.
func verifyNoStreamLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// harnessConfig configures a relayHarness.
type harnessConfig struct {
	opts     streamOptions
	upstream http.Handler // the backend, served by httptest
	// wrapUpstream, if not nil, wraps the backend's listener.
	wrapUpstream func(net.Listener) net.Listener
	tls          bool // clients connect with TLS (wss://)
}

// relayHarness is an edge in miniature. It accepts WebSocket clients,
// passes the upgrade request and the 101 response between client and
// upstream verbatim, then hands both connections, with the bytes read
// ahead of each, to newStream and runs it.
type relayHarness struct {
	opts      streamOptions
	ln        net.Listener
	upAddr    string
	url       string
	clientTLS *tls.Config

	wg      sync.WaitGroup
	streams chan *stream
	results chan streamResult

	mu               sync.Mutex
	closed           bool
	all              []*stream
	clientBuffered   int
	upstreamBuffered int
}

func newRelayHarness(t *testing.T, cfg harnessConfig) *relayHarness {
	t.Helper()
	srv := httptest.NewUnstartedServer(cfg.upstream)
	if cfg.wrapUpstream != nil {
		srv.Listener = cfg.wrapUpstream(srv.Listener)
	}
	srv.Start()
	t.Cleanup(srv.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &relayHarness{
		opts:    cfg.opts,
		upAddr:  srv.Listener.Addr().String(),
		url:     "ws://" + ln.Addr().String() + "/ws",
		streams: make(chan *stream, 16),
		results: make(chan streamResult, 16),
	}
	if cfg.tls {
		var serverConf *tls.Config
		serverConf, h.clientTLS = selfSignedTLS(t)
		ln = tls.NewListener(ln, serverConf)
		h.url = "wss://" + ln.Addr().String() + "/ws"
	}
	h.ln = ln
	h.wg.Add(1)
	go h.accept()
	t.Cleanup(func() {
		ln.Close()
		h.mu.Lock()
		h.closed = true
		for _, s := range h.all {
			s.abort()
		}
		h.mu.Unlock()
		h.wg.Wait()
	})
	return h
}

func (h *relayHarness) accept() {
	defer h.wg.Done()
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.wg.Add(1)
		go h.serve(c)
	}
}

// serve does what the real handler does around newStream.
func (h *relayHarness) serve(c net.Conn) {
	defer h.wg.Done()
	up, err := net.Dial("tcp", h.upAddr)
	if err != nil {
		c.Close()
		return
	}
	// Deadlines such as the handler's handshake timeouts; run clears them.
	c.SetDeadline(time.Now().Add(relayWait))
	up.SetDeadline(time.Now().Add(relayWait))
	br, ubr := bufio.NewReader(c), bufio.NewReader(up)
	if err := copyHead(up, br); err != nil {
		c.Close()
		up.Close()
		return
	}
	if err := copyHead(c, ubr); err != nil {
		c.Close()
		up.Close()
		return
	}
	cb, ub := peekBuffered(br), peekBuffered(ubr)
	s := newStream(c, cb, up, ub, h.opts)
	h.mu.Lock()
	h.all = append(h.all, s)
	h.clientBuffered += len(cb)
	h.upstreamBuffered += len(ub)
	if h.closed {
		s.abort()
	}
	h.mu.Unlock()
	h.streams <- s
	h.results <- s.run()
}

// copyHead copies an HTTP message head, through the empty line, from br
// to w.
func copyHead(w io.Writer, br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		if string(line) == "\r\n" || string(line) == "\n" {
			return nil
		}
	}
}

// peekBuffered returns the bytes br has read ahead.
func peekBuffered(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered())
	return b
}

// dial connects a gorilla/websocket client through the harness. d may be
// nil.
func (h *relayHarness) dial(t *testing.T, d *websocket.Dialer) (*websocket.Conn, *http.Response) {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{}
	}
	d.HandshakeTimeout = relayWait
	d.TLSClientConfig = h.clientTLS
	c, resp, err := d.Dial(h.url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", h.url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, resp
}

// stream returns the next stream the harness started.
func (h *relayHarness) stream(t *testing.T) *stream {
	t.Helper()
	select {
	case s := <-h.streams:
		return s
	case <-time.After(relayWait):
		t.Fatal("no stream started")
		return nil
	}
}

// result waits for the next stream's run to return.
func (h *relayHarness) result(t *testing.T) streamResult {
	t.Helper()
	select {
	case r := <-h.results:
		return r
	case <-time.After(relayWait):
		t.Fatal("run did not return")
		return streamResult{}
	}
}

// wsUpstream returns a backend that upgrades with gorilla/websocket and
// calls serve with the connection, closing it when serve returns.
func wsUpstream(serve func(c *websocket.Conn)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := websocket.Upgrader{EnableCompression: true, WriteBufferSize: 1024}
		c, err := u.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * relayWait))
		serve(c)
	})
}

// echoWithPing sends every message back, fragmented by the small write buffer,
// with a ping after its first piece.
func echoWithPing(c *websocket.Conn) {
	buf := make([]byte, 4096)
	for {
		mt, r, err := c.NextReader()
		if err != nil {
			return
		}
		w, err := c.NextWriter(mt)
		if err != nil {
			return
		}
		for first := true; ; first = false {
			n, err := r.Read(buf)
			w.Write(buf[:n])
			if first {
				c.WriteControl(websocket.PingMessage, []byte("from-upstream"), time.Now().Add(relayWait))
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
		}
		if w.Close() != nil {
			return
		}
	}
}

// wsReadUntilError reads and discards messages until an error.
func wsReadUntilError(c *websocket.Conn) error {
	c.SetReadDeadline(time.Now().Add(relayWait))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return err
		}
	}
}

// wsCloseStatus returns the code and text of a *websocket.CloseError, or -1
// and the error text.
func wsCloseStatus(err error) (int, string) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Text
	}
	if err == nil {
		return -1, "<nil>"
	}
	return -1, err.Error()
}

// waitConnEOF checks that the peer closed c: a read ends with an error other
// than a timeout within relayWait.
func waitConnEOF(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(relayWait))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("connection still open after %v", relayWait)
	}
}

// selfSignedTLS returns a server config with a fresh self-signed
// certificate for 127.0.0.1 and a client config that trusts it.
func selfSignedTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
		MinVersion:   tls.VersionTLS12,
	}
	return server, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// pseudoRandomBytes returns n reproducible pseudo-random bytes.
func pseudoRandomBytes(seed uint64, n int) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func TestStreamRelaysMessages(t *testing.T) {
	big := pseudoRandomBytes(1, 1<<20)
	text := []byte(strings.Repeat("compressible text ", 6000))
	tests := []struct {
		name       string
		messages   [][]byte
		fragmented bool // sent in pieces with a ping between them
		compress   bool
		tls        bool
	}{
		{name: "text", messages: [][]byte{[]byte("hello"), []byte("world")}},
		{name: "1 MiB each way", messages: [][]byte{big}},
		{name: "fragmented with interleaved pings", messages: [][]byte{big[:5000], big[5000:20000]}, fragmented: true},
		{name: "permessage-deflate", messages: [][]byte{text, text[:100]}, fragmented: true, compress: true},
		{name: "tls", messages: [][]byte{[]byte("hello"), big}, fragmented: true, tls: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifyNoStreamLeaks(t)
			var upstreamPings atomic.Int64
			h := newRelayHarness(t, harnessConfig{tls: tt.tls, upstream: wsUpstream(func(c *websocket.Conn) {
				c.SetPingHandler(func(data string) error {
					if data == "interleaved" {
						upstreamPings.Add(1)
					}
					return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(relayWait))
				})
				echoWithPing(c)
			})})
			c, resp := h.dial(t, &websocket.Dialer{EnableCompression: tt.compress, WriteBufferSize: 1024})
			if got := resp.Header.Get("Sec-WebSocket-Extensions") != ""; got != tt.compress {
				t.Fatalf("got permessage-deflate negotiated %v, want %v", got, tt.compress)
			}
			var clientPings, clientPongs atomic.Int64
			c.SetPingHandler(func(data string) error {
				if data == "from-upstream" {
					clientPings.Add(1)
				}
				return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(relayWait))
			})
			c.SetPongHandler(func(data string) error {
				if data == "interleaved" {
					clientPongs.Add(1)
				}
				return nil
			})

			// Read echoes while sending: big messages would fill every buffer.
			got := make(chan [][]byte, 1)
			go func() {
				var msgs [][]byte
				c.SetReadDeadline(time.Now().Add(relayWait))
				for range tt.messages {
					_, m, err := c.ReadMessage()
					if err != nil {
						t.Errorf("read echo: %v", err)
						break
					}
					msgs = append(msgs, m)
				}
				got <- msgs
			}()
			for _, m := range tt.messages {
				if !tt.fragmented {
					if err := c.WriteMessage(websocket.BinaryMessage, m); err != nil {
						t.Fatal(err)
					}
					continue
				}
				w, err := c.NextWriter(websocket.TextMessage)
				if err != nil {
					t.Fatal(err)
				}
				third := len(m) / 3
				for i, part := range [][]byte{m[:third], m[third : 2*third], m[2*third:]} {
					if i > 0 {
						c.WriteControl(websocket.PingMessage, []byte("interleaved"), time.Now().Add(relayWait))
					}
					w.Write(part)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			echoed := <-got
			if len(echoed) != len(tt.messages) {
				t.Fatalf("got %d messages back, want %d", len(echoed), len(tt.messages))
			}
			for i, m := range tt.messages {
				if !bytes.Equal(echoed[i], m) {
					t.Errorf("message %d: got %d bytes back, want the %d sent", i, len(echoed[i]), len(m))
				}
			}

			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"), time.Now().Add(relayWait))
			if code, text := wsCloseStatus(wsReadUntilError(c)); code != websocket.CloseNormalClosure {
				t.Errorf("client: got close %d %q, want 1000", code, text)
			}
			res := h.result(t)
			n := int64(len(tt.messages))
			if res.MessagesFromClient != n || res.MessagesToClient != n {
				t.Errorf("got %d messages from client and %d to it, want %d each", res.MessagesFromClient, res.MessagesToClient, n)
			}
			var size int64
			for _, m := range tt.messages {
				size += int64(len(m))
			}
			if !tt.compress && (res.FromClient < size || res.ToClient < size) {
				t.Errorf("got %d bytes from client and %d to it, want at least %d each", res.FromClient, res.ToClient, size)
			}
			if res.CloseCode != 1000 || res.ClosedBy != "client" {
				t.Errorf("got close %d by %q, want 1000 by client", res.CloseCode, res.ClosedBy)
			}
			if got := clientPings.Load(); got != n {
				t.Errorf("client got %d interleaved pings, want %d", got, n)
			}
			if tt.fragmented {
				if got := upstreamPings.Load(); got != 2*n {
					t.Errorf("upstream got %d interleaved pings, want %d", got, 2*n)
				}
				if got := clientPongs.Load(); got != 2*n {
					t.Errorf("client got %d pongs, want %d", got, 2*n)
				}
			}
		})
	}
}

// coalesceListener delays a written 101 response until the next write, so
// that the upstream's first message leaves in the same TCP write.
type coalesceListener struct{ net.Listener }

func (l coalesceListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &coalesceConn{Conn: c}, nil
}

type coalesceConn struct {
	net.Conn
	mu   sync.Mutex
	held []byte
	done bool
}

func (c *coalesceConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.done:
		return c.Conn.Write(p)
	case c.held == nil && bytes.HasPrefix(p, []byte("HTTP/1.1 101")):
		c.held = append([]byte(nil), p...)
		return len(p), nil
	case c.held != nil:
		c.done = true
		_, err := c.Conn.Write(append(c.held, p...))
		return len(p), err
	}
	return c.Conn.Write(p)
}

// prefixConn sends extra in the same write as the first bytes written.
type prefixConn struct {
	net.Conn
	extra []byte
}

func (c *prefixConn) Write(p []byte) (int, error) {
	if c.extra == nil {
		return c.Conn.Write(p)
	}
	b := append(append([]byte(nil), p...), c.extra...)
	c.extra = nil
	_, err := c.Conn.Write(b)
	return len(p), err
}

func TestStreamBufferedBytes(t *testing.T) {
	verifyNoStreamLeaks(t)
	fromUpstream := make(chan string, 1)
	h := newRelayHarness(t, harnessConfig{
		wrapUpstream: func(l net.Listener) net.Listener { return coalesceListener{l} },
		upstream: wsUpstream(func(c *websocket.Conn) {
			if err := c.WriteMessage(websocket.TextMessage, []byte("early from upstream")); err != nil {
				return
			}
			_, m, _ := c.ReadMessage()
			fromUpstream <- string(m)
			echoWithPing(c)
		}),
	})
	early := appendTestFrame(nil, testFrame{fin: true, opcode: wsframe.OpText, masked: true, key: [4]byte{1, 2, 3, 4}, payload: []byte("early from client")})
	c, _ := h.dial(t, &websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &prefixConn{Conn: conn, extra: early}, nil
		},
	})
	h.stream(t)
	h.mu.Lock()
	cb, ub := h.clientBuffered, h.upstreamBuffered
	h.mu.Unlock()
	if cb != len(early) || ub == 0 {
		t.Fatalf("got %d client and %d upstream bytes read ahead, want %d and some", cb, ub, len(early))
	}

	c.SetReadDeadline(time.Now().Add(relayWait))
	if _, m, err := c.ReadMessage(); err != nil || string(m) != "early from upstream" {
		t.Errorf("client: got %q, %v, want the upstream's early message", m, err)
	}
	select {
	case m := <-fromUpstream:
		if m != "early from client" {
			t.Errorf("upstream: got %q, want the client's early message", m)
		}
	case <-time.After(relayWait):
		t.Fatal("upstream got no message")
	}
	c.WriteMessage(websocket.TextMessage, []byte("later"))
	if _, m, err := c.ReadMessage(); err != nil || string(m) != "later" {
		t.Errorf("client: got %q, %v, want the echo of a later message", m, err)
	}
	c.Close()
	res := h.result(t)
	if want := int64(len(early)); res.FromClient < want {
		t.Errorf("got %d bytes from client, want the %d read ahead counted", res.FromClient, want)
	}
}

func TestStreamCloseHandshake(t *testing.T) {
	tests := []struct {
		initiator string
		tls       bool
	}{
		{"client", false},
		{"upstream", false},
		{"client", true},
		{"upstream", true},
	}
	for _, tt := range tests {
		name := tt.initiator
		if tt.tls {
			name += " over tls"
		}
		t.Run(name, func(t *testing.T) {
			verifyNoStreamLeaks(t)
			upErr := make(chan error, 1)
			h := newRelayHarness(t, harnessConfig{tls: tt.tls, upstream: wsUpstream(func(c *websocket.Conn) {
				if tt.initiator == "upstream" {
					c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"), time.Now().Add(relayWait))
				}
				upErr <- wsReadUntilError(c)
			})})
			c, _ := h.dial(t, nil)
			if tt.initiator == "client" {
				c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"), time.Now().Add(relayWait))
			}
			if code, text := wsCloseStatus(wsReadUntilError(c)); code != 1000 {
				t.Errorf("client: got close %d %q, want 1000", code, text)
			}
			if code, text := wsCloseStatus(<-upErr); code != 1000 {
				t.Errorf("upstream: got close %d %q, want 1000", code, text)
			}
			// The handshake is complete: the proxy, as the client's
			// server, closes the connection before the client hangs up.
			waitConnEOF(t, c.NetConn())
			c.Close()
			res := h.result(t)
			if res.CloseCode != 1000 || res.ClosedBy != tt.initiator {
				t.Errorf("got close %d by %q, want 1000 by %s", res.CloseCode, res.ClosedBy, tt.initiator)
			}
		})
	}
}

func TestStreamUpstreamGone(t *testing.T) {
	tests := []struct {
		name         string
		reset        bool // RST instead of FIN
		midFrame     bool // die after half a frame
		clientSilent bool // the client never reads, so never answers the close
	}{
		{name: "fin"},
		{name: "reset", reset: true},
		{name: "client never answers", clientSilent: true},
		{name: "mid-frame", midFrame: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifyNoStreamLeaks(t)
			h := newRelayHarness(t, harnessConfig{
				opts: streamOptions{CloseTimeout: 300 * time.Millisecond},
				upstream: wsUpstream(func(c *websocket.Conn) {
					if _, m, err := c.ReadMessage(); err == nil {
						c.WriteMessage(websocket.TextMessage, m)
					}
					nc := c.NetConn()
					if tt.midFrame {
						nc.Write(appendTestFrame(nil, testFrame{fin: true, opcode: wsframe.OpBinary, length: 1000, payload: make([]byte, 10)}))
					}
					if tt.reset {
						nc.(*net.TCPConn).SetLinger(0)
					}
					nc.Close()
				}),
			})
			c, _ := h.dial(t, nil)
			c.WriteMessage(websocket.TextMessage, []byte("hi"))
			c.SetReadDeadline(time.Now().Add(relayWait))
			if _, m, err := c.ReadMessage(); err != nil || string(m) != "hi" {
				t.Fatalf("got %q, %v, want the echo", m, err)
			}
			if tt.clientSilent {
				start := time.Now()
				res := h.result(t)
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("run returned after %v, want about the 300ms CloseTimeout", d)
				}
				if res.CloseCode != closeUpstreamGone || res.ClosedBy != "upstream" {
					t.Errorf("got close %d by %q, want 1011 by upstream", res.CloseCode, res.ClosedBy)
				}
				return
			}
			_, _, err := c.ReadMessage()
			code, text := wsCloseStatus(err)
			switch {
			case tt.midFrame:
				// 1006: gorilla's code for a connection lost without a close frame.
				if code != websocket.CloseAbnormalClosure {
					t.Errorf("client: got close %d %q, want the connection dropped (1006)", code, text)
				}
			case code == closeUpstreamGone:
				if text != "upstream closed" {
					t.Errorf("client: got reason %q, want %q", text, "upstream closed")
				}
			default:
				t.Errorf("client: got close %d %q, want close 1011", code, text)
			}
			waitConnEOF(t, c.NetConn())
			res := h.result(t)
			wantCode := closeUpstreamGone
			if tt.midFrame {
				wantCode = 0
			}
			if res.CloseCode != wantCode || res.ClosedBy != "upstream" {
				t.Errorf("got close %d by %q, want %d by upstream", res.CloseCode, res.ClosedBy, wantCode)
			}
		})
	}
}

// TestStreamUpstreamGoneWire checks, byte for byte, the close frame a
// client gets when the upstream vanishes, and that the proxy closes the
// client once it answers.
func TestStreamUpstreamGoneWire(t *testing.T) {
	verifyNoStreamLeaks(t)
	rs := newRawStream(t, streamOptions{})
	rs.start()
	rs.upstream.Close()
	f := readFrameT(t, rs.client)
	if f.opcode != wsframe.OpClose || f.masked || wsframe.CloseCode(f.payload) != closeUpstreamGone || string(f.payload[2:]) != "upstream closed" {
		t.Fatalf("got frame opcode %#x masked %v payload %q, want unmasked close 1011 %q", f.opcode, f.masked, f.payload, "upstream closed")
	}
	rs.client.Write(wsframe.AppendCloseFrame(nil, closeUpstreamGone, "", true, [4]byte{7, 7, 7, 7}))
	waitConnEOF(t, rs.client)
	res := rs.result(t)
	if res.CloseCode != closeUpstreamGone || res.ClosedBy != "upstream" {
		t.Errorf("got close %d by %q, want 1011 by upstream", res.CloseCode, res.ClosedBy)
	}
}

func TestStreamClientGone(t *testing.T) {
	tests := []struct {
		name     string
		reset    bool
		midFrame bool
	}{
		{name: "fin"},
		{name: "reset", reset: true},
		{name: "mid-frame", midFrame: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifyNoStreamLeaks(t)
			upErr := make(chan error, 1)
			h := newRelayHarness(t, harnessConfig{upstream: wsUpstream(func(c *websocket.Conn) {
				if _, m, err := c.ReadMessage(); err == nil {
					c.WriteMessage(websocket.TextMessage, m)
				}
				upErr <- wsReadUntilError(c)
			})})
			c, _ := h.dial(t, nil)
			c.WriteMessage(websocket.TextMessage, []byte("hi"))
			c.SetReadDeadline(time.Now().Add(relayWait))
			if _, m, err := c.ReadMessage(); err != nil || string(m) != "hi" {
				t.Fatalf("got %q, %v, want the echo", m, err)
			}
			nc := c.NetConn()
			if tt.midFrame {
				nc.Write(appendTestFrame(nil, testFrame{fin: true, opcode: wsframe.OpBinary, masked: true, length: 1000, payload: make([]byte, 10)}))
			}
			if tt.reset {
				nc.(*net.TCPConn).SetLinger(0)
			}
			nc.Close()

			code, text := wsCloseStatus(<-upErr)
			wantCode := websocket.CloseGoingAway
			if tt.midFrame {
				wantCode = websocket.CloseAbnormalClosure // dropped without a close frame
			}
			if code != wantCode {
				t.Errorf("upstream: got %d %q, want %d", code, text, wantCode)
			}
			res := h.result(t)
			if tt.midFrame {
				wantCode = 0
			}
			if res.CloseCode != wantCode || res.ClosedBy != "client" {
				t.Errorf("got close %d by %q, want %d by client", res.CloseCode, res.ClosedBy, wantCode)
			}
		})
	}
}

func TestStreamGoAway(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		for _, midFrame := range []bool{false, true} {
			name := "idle"
			if midFrame {
				name = "mid-frame"
			}
			if useTLS {
				name += " over tls"
			}
			t.Run(name, func(t *testing.T) {
				verifyNoStreamLeaks(t)
				payload := pseudoRandomBytes(2, 4<<20)
				upErr := make(chan error, 1)
				ctr := new(relayCounters)
				h := newRelayHarness(t, harnessConfig{tls: useTLS, opts: streamOptions{Counters: ctr}, upstream: wsUpstream(func(c *websocket.Conn) {
					var wg sync.WaitGroup
					if midFrame {
						wg.Go(func() { c.WriteMessage(websocket.BinaryMessage, payload) })
					}
					upErr <- wsReadUntilError(c)
					wg.Wait()
				})})
				c, _ := h.dial(t, nil)
				s := h.stream(t)
				if midFrame {
					// The client does not read yet: once the proxy passed on
					// part of the 4 MiB frame, it is stuck part way through.
					testutil.WaitFor(t, "part of the frame relayed", func() bool { return ctr.out.bytes.Load() > 0 })
				}
				start := time.Now()
				s.goAway(1001, "server shutting down")
				s.goAway(1000, "again") // idempotent
				if d := time.Since(start); d > 100*time.Millisecond {
					t.Errorf("goAway took %v, want no wait", d)
				}
				c.SetReadDeadline(time.Now().Add(relayWait))
				if midFrame {
					_, m, err := c.ReadMessage()
					if err != nil || !bytes.Equal(m, payload) {
						t.Fatalf("client: got %d bytes, %v, want the whole %d-byte message", len(m), err, len(payload))
					}
				}
				if code, text := wsCloseStatus(wsReadUntilError(c)); code != 1001 || text != "server shutting down" {
					t.Errorf("client: got close %d %q, want 1001 %q", code, text, "server shutting down")
				}
				if code, text := wsCloseStatus(<-upErr); code != 1001 || text != "server shutting down" {
					t.Errorf("upstream: got close %d %q, want 1001 %q", code, text, "server shutting down")
				}
				waitConnEOF(t, c.NetConn())
				res := h.result(t)
				if res.CloseCode != 1001 || res.ClosedBy != "proxy" {
					t.Errorf("got close %d by %q, want 1001 by proxy", res.CloseCode, res.ClosedBy)
				}
			})
		}
	}
}

func TestStreamAbort(t *testing.T) {
	verifyNoStreamLeaks(t)
	payload := make([]byte, 8<<20)
	ctr := new(relayCounters)
	h := newRelayHarness(t, harnessConfig{opts: streamOptions{Counters: ctr}, upstream: wsUpstream(func(c *websocket.Conn) {
		c.WriteMessage(websocket.BinaryMessage, payload) // blocks: the client never reads
	})})
	h.dial(t, nil)
	s := h.stream(t)
	testutil.WaitFor(t, "part of the frame relayed", func() bool { return ctr.out.bytes.Load() > 0 })
	// The proxy's close gets to the upstream, but not through to the
	// client: the 8 MiB frame fills the client's buffers.
	s.goAway(1001, "server shutting down")
	testutil.WaitFor(t, "the close written to the upstream", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.sides[sideUpstream].sent
	})
	start := time.Now()
	s.abort()
	s.abort()
	res := h.result(t)
	if d := time.Since(start); d > time.Second {
		t.Errorf("run returned %v after abort, want at once", d)
	}
	if res.ClosedBy != "proxy" {
		t.Errorf("got closed by %q, want proxy", res.ClosedBy)
	}
}

func TestStreamIdleTimeout(t *testing.T) {
	tests := []struct {
		name string
		busy bool // exchange messages for three idle timeouts
	}{
		{name: "idle"},
		{name: "busy", busy: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifyNoStreamLeaks(t)
			const idle = 250 * time.Millisecond
			upErr := make(chan error, 1)
			h := newRelayHarness(t, harnessConfig{
				opts: streamOptions{IdleTimeout: idle},
				upstream: wsUpstream(func(c *websocket.Conn) {
					for {
						mt, m, err := c.ReadMessage()
						if err != nil {
							upErr <- err
							return
						}
						c.WriteMessage(mt, m)
					}
				}),
			})
			c, _ := h.dial(t, nil)
			if tt.busy {
				// Each message waits for the echo of the one before: the
				// stream is never quiet for longer than a round trip.
				c.SetReadDeadline(time.Now().Add(relayWait))
				for i, start := 0, time.Now(); time.Since(start) < 3*idle; i++ {
					c.WriteMessage(websocket.TextMessage, []byte{byte(i)})
					if _, _, err := c.ReadMessage(); err != nil {
						t.Fatalf("message %d: %v", i, err)
					}
				}
				c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(relayWait))
			}
			code, text := wsCloseStatus(wsReadUntilError(c))
			upCode, upText := wsCloseStatus(<-upErr)
			res := h.result(t)
			want, wantBy := 1001, "proxy"
			if tt.busy {
				want, wantBy = 1000, "client"
			} else if text != "idle timeout" || upText != "idle timeout" {
				t.Errorf("got reasons %q and %q, want %q", text, upText, "idle timeout")
			}
			if code != want || upCode != want {
				t.Errorf("got close %d to client and %d to upstream, want %d", code, upCode, want)
			}
			if res.CloseCode != want || res.ClosedBy != wantBy {
				t.Errorf("got close %d by %q, want %d by %s", res.CloseCode, res.ClosedBy, want, wantBy)
			}
		})
	}
}

func TestStreamPing(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "plain"
		if useTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			verifyNoStreamLeaks(t)
			var mu sync.Mutex
			var upPings, upPongs []string
			h := newRelayHarness(t, harnessConfig{
				tls: useTLS,
				// A healthy client answers in time, so PingTimeout never fires; its
				// margin is wide because the suite shares two cores under -race.
				opts: streamOptions{PingInterval: 50 * time.Millisecond, PingTimeout: 2 * time.Second},
				upstream: wsUpstream(func(c *websocket.Conn) {
					c.SetPingHandler(func(data string) error {
						mu.Lock()
						upPings = append(upPings, data)
						mu.Unlock()
						return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(relayWait))
					})
					c.SetPongHandler(func(data string) error {
						mu.Lock()
						upPongs = append(upPongs, data)
						mu.Unlock()
						return nil
					})
					wsReadUntilError(c)
				}),
			})
			c, _ := h.dial(t, nil)
			var pings atomic.Int64
			pongs := make(chan string, 1)
			c.SetPingHandler(func(data string) error {
				if data == pingPayload {
					pings.Add(1)
				}
				return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(relayWait))
			})
			c.SetPongHandler(func(data string) error {
				select {
				case pongs <- data:
				default:
					t.Errorf("client got another pong %q", data)
				}
				return nil
			})
			readErr := make(chan error, 1)
			go func() { readErr <- wsReadUntilError(c) }()

			c.WriteControl(websocket.PingMessage, []byte("client ping"), time.Now().Add(relayWait))
			c.WriteControl(websocket.PongMessage, []byte("unsolicited pong"), time.Now().Add(relayWait))
			select {
			case p := <-pongs:
				if p != "client ping" {
					t.Errorf("client got pong %q, want %q", p, "client ping")
				}
			case <-time.After(relayWait):
				t.Error("client got no pong for its ping")
			}
			// Five of the proxy's pings, answered: PingTimeout must not
			// fire while the client answers.
			testutil.WaitFor(t, "five pings from the proxy", func() bool { return pings.Load() >= 5 })
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(relayWait))
			if code, text := wsCloseStatus(<-readErr); code != 1000 {
				t.Errorf("client: got %d %q, want close 1000 (PingTimeout must not fire)", code, text)
			}
			res := h.result(t)
			mu.Lock()
			defer mu.Unlock()
			if strings.Join(upPings, ",") != "client ping" {
				t.Errorf("upstream got pings %q, want only the client's", upPings)
			}
			if strings.Join(upPongs, ",") != "unsolicited pong" {
				t.Errorf("upstream got pongs %q, want only the unsolicited one", upPongs)
			}
			if res.CloseCode != 1000 || res.ClosedBy != "client" {
				t.Errorf("got close %d by %q, want 1000 by client", res.CloseCode, res.ClosedBy)
			}
		})
	}
}

func TestStreamPingTimeout(t *testing.T) {
	verifyNoStreamLeaks(t)
	upErr := make(chan error, 1)
	h := newRelayHarness(t, harnessConfig{
		opts: streamOptions{PingInterval: 50 * time.Millisecond, PingTimeout: 300 * time.Millisecond},
		upstream: wsUpstream(func(c *websocket.Conn) {
			upErr <- wsReadUntilError(c)
		}),
	})
	// A client that completes the upgrade, then neither reads nor writes.
	conn, err := net.Dial("tcp", h.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	start := time.Now()
	code, text := wsCloseStatus(<-upErr)
	if code != websocket.CloseGoingAway || text != "ping timeout" {
		t.Errorf("upstream: got %d %q, want close 1001 %q", code, text, "ping timeout")
	}
	res := h.result(t)
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("run returned after %v, want soon after the 300ms PingTimeout", d)
	}
	if res.CloseCode != 1001 || res.ClosedBy != "proxy" {
		t.Errorf("got close %d by %q, want 1001 by proxy", res.CloseCode, res.ClosedBy)
	}
}

// rawStream runs a stream between two loopback TCP connection pairs whose
// far ends, client and upstream, a test drives with raw bytes.
type rawStream struct {
	s                *stream
	client, upstream net.Conn
	results          chan streamResult
}

// newRawStream returns a stream ready to start.
func newRawStream(t testing.TB, opts streamOptions) *rawStream {
	t.Helper()
	p := newTCPPairer(t)
	clientEnd, proxyClient := p.pair(t)
	proxyUpstream, upstreamEnd := p.pair(t)
	rs := &rawStream{
		s:        newStream(proxyClient, nil, proxyUpstream, nil, opts),
		client:   clientEnd,
		upstream: upstreamEnd,
		results:  make(chan streamResult, 1),
	}
	t.Cleanup(func() {
		clientEnd.Close()
		upstreamEnd.Close()
		rs.s.abort()
	})
	return rs
}

// start runs the stream on a new goroutine.
func (rs *rawStream) start() {
	go func() { rs.results <- rs.s.run() }()
}

func (rs *rawStream) result(t testing.TB) streamResult {
	t.Helper()
	select {
	case r := <-rs.results:
		return r
	case <-time.After(relayWait):
		t.Fatal("run did not return")
		return streamResult{}
	}
}

// tcpPairer makes connected loopback TCP connection pairs.
type tcpPairer struct{ ln net.Listener }

func newTCPPairer(t testing.TB) *tcpPairer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &tcpPairer{ln: ln}
}

func (p *tcpPairer) pair(t testing.TB) (dialed, accepted net.Conn) {
	t.Helper()
	dialed, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	accepted, err = p.ln.Accept()
	if err != nil {
		dialed.Close()
		t.Fatal(err)
	}
	return dialed, accepted
}

// randomFrames returns n frames, encoded, as a client (masked) or an
// upstream would send them: data frames of random sizes, some fragmented,
// RSV bits set at random, and pings and pongs between them.
func randomFrames(seed uint64, n int, masked bool) (data []byte, messages int64) {
	r := rand.New(rand.NewPCG(seed, 0))
	inMessage := false
	for range n {
		var f testFrame
		f.masked = masked
		binaryKey := r.Uint32()
		f.key = [4]byte{byte(binaryKey), byte(binaryKey >> 8), byte(binaryKey >> 16), byte(binaryKey >> 24)}
		switch k := r.IntN(10); {
		case k < 2:
			f.fin = true
			f.opcode = wsframe.OpPing + byte(r.IntN(2)) // ping or pong
			f.payload = pseudoRandomBytes(r.Uint64(), r.IntN(126))
		default:
			f.opcode = wsframe.OpBinary
			if inMessage {
				f.opcode = wsframe.OpContinuation
			} else {
				f.rsv = byte(r.IntN(2)) << 2 // RSV1, as permessage-deflate sets it
			}
			f.fin = r.IntN(3) > 0
			inMessage = !f.fin
			if f.fin {
				messages++
			}
			sizes := []int{0, 1, 125, 126, 127, 1000, 65535, 65536, 70000}
			f.payload = pseudoRandomBytes(r.Uint64(), sizes[r.IntN(len(sizes))]+r.IntN(3))
		}
		data = appendTestFrame(data, f)
	}
	return data, messages
}

// writeChunks writes data in pieces of random sizes.
func writeChunks(c net.Conn, data []byte, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 1))
	for len(data) > 0 {
		n := min(len(data), 1+r.IntN(3000))
		if _, err := c.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// TestStreamPassesBytesUnmodified sends random frames both ways at once,
// written in random pieces so that reads split headers anywhere, and
// checks each side receives exactly the bytes the other sent.
func TestStreamPassesBytesUnmodified(t *testing.T) {
	verifyNoStreamLeaks(t)
	rs := newRawStream(t, streamOptions{})
	rs.start()
	fromClient, clientMsgs := randomFrames(3, 400, true)
	fromUpstream, upstreamMsgs := randomFrames(4, 400, false)

	var wg sync.WaitGroup
	var gotAtUpstream, gotAtClient []byte
	for _, dir := range []struct {
		from, to net.Conn
		data     []byte
		got      *[]byte
		seed     uint64
	}{
		{rs.client, rs.upstream, fromClient, &gotAtUpstream, 5},
		{rs.upstream, rs.client, fromUpstream, &gotAtClient, 6},
	} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			writeChunks(dir.from, dir.data, dir.seed)
		}()
		go func() {
			defer wg.Done()
			*dir.got = make([]byte, len(dir.data))
			dir.to.SetReadDeadline(time.Now().Add(relayWait))
			io.ReadFull(dir.to, *dir.got)
		}()
	}
	wg.Wait()
	if !bytes.Equal(gotAtUpstream, fromClient) {
		t.Errorf("upstream got %d bytes that differ from the %d the client sent", len(gotAtUpstream), len(fromClient))
	}
	if !bytes.Equal(gotAtClient, fromUpstream) {
		t.Errorf("client got %d bytes that differ from the %d the upstream sent", len(gotAtClient), len(fromUpstream))
	}

	// The client vanishes: the upstream gets a masked 1001.
	rs.client.Close()
	f := readFrameT(t, rs.upstream)
	if f.opcode != wsframe.OpClose || !f.masked || wsframe.CloseCode(f.payload) != wsframe.CloseGoingAway {
		t.Errorf("upstream got frame opcode %#x masked %v payload %q, want masked close 1001", f.opcode, f.masked, f.payload)
	}
	rs.upstream.Close()
	res := rs.result(t)
	if res.FromClient != int64(len(fromClient)) || res.ToClient != int64(len(fromUpstream)) {
		t.Errorf("got %d bytes from client and %d to it, want %d and %d", res.FromClient, res.ToClient, len(fromClient), len(fromUpstream))
	}
	if res.MessagesFromClient != clientMsgs || res.MessagesToClient != upstreamMsgs {
		t.Errorf("got %d messages from client and %d to it, want %d and %d", res.MessagesFromClient, res.MessagesToClient, clientMsgs, upstreamMsgs)
	}
	if res.CloseCode != wsframe.CloseGoingAway || res.ClosedBy != "client" {
		t.Errorf("got close %d by %q, want 1001 by client", res.CloseCode, res.ClosedBy)
	}
}

// TestStreamCloseWrite checks that a side ending cleanly is passed on as
// CloseWrite while the other direction keeps flowing.
func TestStreamCloseWrite(t *testing.T) {
	verifyNoStreamLeaks(t)
	rs := newRawStream(t, streamOptions{})
	rs.start()
	rs.upstream.Write(wsframe.AppendCloseFrame(nil, wsframe.CloseNormal, "bye", false, [4]byte{}))
	rs.upstream.(*net.TCPConn).CloseWrite()

	f := readFrameT(t, rs.client)
	if f.opcode != wsframe.OpClose || wsframe.CloseCode(f.payload) != wsframe.CloseNormal {
		t.Fatalf("client got frame opcode %#x payload %q, want close 1000", f.opcode, f.payload)
	}
	rs.client.SetReadDeadline(time.Now().Add(relayWait))
	if n, err := rs.client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read after close: got %d, %v, want EOF", n, err)
	}
	// The client's half still works: its reply reaches the upstream.
	reply := wsframe.AppendCloseFrame(nil, wsframe.CloseNormal, "", true, [4]byte{1, 2, 3, 4})
	rs.client.Write(reply)
	got := make([]byte, len(reply))
	rs.upstream.SetReadDeadline(time.Now().Add(relayWait))
	if _, err := io.ReadFull(rs.upstream, got); err != nil || !bytes.Equal(got, reply) {
		t.Fatalf("upstream got %x, %v, want the client's close reply %x", got, err, reply)
	}
	rs.client.(*net.TCPConn).CloseWrite()
	waitConnEOF(t, rs.upstream)
	res := rs.result(t)
	if res.CloseCode != 1000 || res.ClosedBy != "upstream" {
		t.Errorf("got close %d by %q, want 1000 by upstream", res.CloseCode, res.ClosedBy)
	}
}

// TestStreamGoAwayBeforeRun checks that a close queued between newStream
// and run (a shutdown racing a new stream) is still sent.
func TestStreamGoAwayBeforeRun(t *testing.T) {
	verifyNoStreamLeaks(t)
	rs := newRawStream(t, streamOptions{})
	rs.s.goAway(1001, "server shutting down")
	rs.start()
	for _, c := range []struct {
		name   string
		conn   net.Conn
		masked bool
	}{{"client", rs.client, false}, {"upstream", rs.upstream, true}} {
		f := readFrameT(t, c.conn)
		if f.opcode != wsframe.OpClose || f.masked != c.masked || wsframe.CloseCode(f.payload) != wsframe.CloseGoingAway {
			t.Errorf("%s got frame opcode %#x masked %v payload %q, want close 1001 masked %v", c.name, f.opcode, f.masked, f.payload, c.masked)
		}
	}
	rs.client.Close()
	rs.upstream.Close()
	if res := rs.result(t); res.CloseCode != 1001 || res.ClosedBy != "proxy" {
		t.Errorf("got close %d by %q, want 1001 by proxy", res.CloseCode, res.ClosedBy)
	}
}

// TestStreamWriteTimeout: a client that stops reading while the upstream
// keeps sending is cut off after WriteTimeout, and the upstream is told
// it went away, instead of the stream hanging on a blocked write.
func TestStreamWriteTimeout(t *testing.T) {
	verifyNoStreamLeaks(t)
	rs := newRawStream(t, streamOptions{WriteTimeout: 300 * time.Millisecond})
	rs.start()

	// The upstream sends 64 KiB binary frames, at most 256 MiB, until a
	// write fails or the test ends; the client never reads.
	frame := appendTestFrame(nil, testFrame{fin: true, opcode: wsframe.OpBinary, payload: make([]byte, 64<<10)})
	done := make(chan struct{})
	defer close(done)
	go func() {
		for range 4096 {
			select {
			case <-done:
				return
			default:
			}
			rs.upstream.SetWriteDeadline(time.Now().Add(relayWait))
			if _, err := rs.upstream.Write(frame); err != nil {
				return
			}
		}
	}()

	f := readFrameT(t, rs.upstream)
	if f.opcode != wsframe.OpClose || !f.masked || wsframe.CloseCode(f.payload) != wsframe.CloseGoingAway {
		t.Fatalf("upstream got opcode %#x masked %v payload %q, want a masked close 1001", f.opcode, f.masked, f.payload)
	}
	res := rs.result(t)
	if res.ClosedBy != "client" || res.CloseCode != wsframe.CloseGoingAway {
		t.Errorf("got close %d by %q, want 1001 by client", res.CloseCode, res.ClosedBy)
	}
	if res.ToClient == 0 {
		t.Errorf("nothing reached the client before it stalled; the test did not fill its buffers")
	}
}

// TestStreamFrameTooBig announces client frames over MaxFrameBytes: the
// client gets 1009 and the upstream 1001 as soon as the header is read,
// and nothing of the frame reaches the upstream. A frame within the
// limit, and any size from the upstream, pass.
func TestStreamFrameTooBig(t *testing.T) {
	const limit = 1 << 10
	tests := []struct {
		name   string
		length uint64
	}{
		{"just over", limit + 1},
		{"16-bit length", 60000},
		{"2^62", 1 << 62},
		{"2^63", 1 << 63},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifyNoStreamLeaks(t)
			rs := newRawStream(t, streamOptions{MaxFrameBytes: limit})
			rs.start()
			// One frame within the limit passes, then the oversized
			// header, sent alone: its payload never comes.
			ok := appendTestFrame(nil, testFrame{fin: true, opcode: wsframe.OpBinary, masked: true, payload: make([]byte, limit)})
			big := appendTestFrame(nil, testFrame{fin: true, opcode: wsframe.OpBinary, masked: true, length: tt.length})
			if _, err := rs.client.Write(append(ok, big...)); err != nil {
				t.Fatal(err)
			}
			if f := readFrameT(t, rs.upstream); f.opcode != wsframe.OpBinary || f.length != limit {
				t.Fatalf("upstream got %+v first, want the %d-byte frame", f, limit)
			}
			if f := readFrameT(t, rs.upstream); f.opcode != wsframe.OpClose || wsframe.CloseCode(f.payload) != wsframe.CloseGoingAway {
				t.Errorf("upstream got opcode %d code %d, want close 1001", f.opcode, wsframe.CloseCode(f.payload))
			}
			if f := readFrameT(t, rs.client); f.opcode != wsframe.OpClose || wsframe.CloseCode(f.payload) != wsframe.CloseTooBig {
				t.Errorf("client got opcode %d code %d, want close 1009", f.opcode, wsframe.CloseCode(f.payload))
			}
			rs.client.Close()
			rs.upstream.Close()
			if res := rs.result(t); res.CloseCode != wsframe.CloseTooBig || res.ClosedBy != "proxy" {
				t.Errorf("result: close %d by %q, want 1009 by proxy", res.CloseCode, res.ClosedBy)
			}
		})
	}
	t.Run("upstream frames are not limited", func(t *testing.T) {
		rs := newRawStream(t, streamOptions{MaxFrameBytes: limit})
		rs.start()
		big := appendTestFrame(nil, testFrame{fin: true, opcode: wsframe.OpBinary, payload: make([]byte, 4*limit)})
		if _, err := rs.upstream.Write(big); err != nil {
			t.Fatal(err)
		}
		if f := readFrameT(t, rs.client); f.opcode != wsframe.OpBinary || f.length != 4*limit {
			t.Errorf("client got %+v, want the upstream's %d-byte frame", f, 4*limit)
		}
	})
}

// TestStreamIdleCountsControlFrames keeps a stream busy with pings
// alone, answered by pongs: they are activity, so the idle timeout does
// not close it, as it does a stream that carries nothing.
func TestStreamIdleCountsControlFrames(t *testing.T) {
	verifyNoStreamLeaks(t)
	const idle = 300 * time.Millisecond
	rs := newRawStream(t, streamOptions{IdleTimeout: idle})
	rs.start()
	ping := appendTestFrame(nil, testFrame{fin: true, opcode: wsframe.OpPing, masked: true, payload: []byte("hb")})
	pong := appendTestFrame(nil, testFrame{fin: true, opcode: wsframe.OpPong, payload: []byte("hb")})
	for range 6 { // 6 × idle/3: twice the idle timeout, never quiet for long
		if _, err := rs.client.Write(ping); err != nil {
			t.Fatal(err)
		}
		if f := readFrameT(t, rs.upstream); f.opcode != wsframe.OpPing {
			t.Fatalf("upstream got opcode %d, want the ping", f.opcode)
		}
		if _, err := rs.upstream.Write(pong); err != nil {
			t.Fatal(err)
		}
		if f := readFrameT(t, rs.client); f.opcode != wsframe.OpPong {
			t.Fatalf("client got opcode %d, want the pong (the stream closed while pings flowed?)", f.opcode)
		}
		time.Sleep(idle / 3) // paces the heartbeat; nothing timed is asserted
	}
	// Then silence: the idle timeout closes it.
	if f := readFrameT(t, rs.client); f.opcode != wsframe.OpClose || wsframe.CloseCode(f.payload) != wsframe.CloseGoingAway {
		t.Errorf("after the heartbeats stopped the client got opcode %d code %d, want close 1001", f.opcode, wsframe.CloseCode(f.payload))
	}
}
