package gatewaytest

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// readWait bounds [Peer.Read].
const readWait = 5 * time.Second

// Peer is a test client of a gateway, over either of its transports: a
// gorilla WebSocket or a telnet-like text connection (one message per
// line). Like a gateway connection it allows one reader and one writer
// at a time.
type Peer struct {
	// ID names the peer in failure messages; "" until the test sets it,
	// typically to the client id it learns from a greeting.
	ID string

	t  testing.TB
	ws *websocket.Conn // nil for a text peer
	nc net.Conn        // nil for a WebSocket peer
	br *bufio.Reader
}

// DialWS connects a WebSocket peer to url (ws:// or wss://, with path and
// query) sending the request header h, which may be nil.
func DialWS(t testing.TB, url string, h http.Header) *Peer {
	t.Helper()
	return DialWSWith(t, websocket.DefaultDialer, url, h)
}

// DialWSWith is DialWS with a dialer, for wss:// with its own roots.
func DialWSWith(t testing.TB, d *websocket.Dialer, url string, h http.Header) *Peer {
	t.Helper()
	ws, _, err := d.Dial(url, h)
	if err != nil {
		t.Fatalf("dial websocket %s: %v", url, err)
	}
	t.Cleanup(func() { ws.Close() })
	return &Peer{t: t, ws: ws}
}

// DialText connects a text-protocol peer to addr.
func DialText(t testing.TB, addr string) *Peer {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial text %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &Peer{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// Read returns the next message (a text line without its "\n"), failing
// the test after 5s. Call it from the test's goroutine.
func (p *Peer) Read() string {
	p.t.Helper()
	s, err := p.ReadErr(readWait)
	if err != nil {
		p.t.Fatalf("peer %s: read: %v", p.ID, err)
	}
	return s
}

// ReadErr returns the next message, or the error that ended the wait;
// it waits at most wait.
func (p *Peer) ReadErr(wait time.Duration) (string, error) {
	if p.ws != nil {
		p.ws.SetReadDeadline(time.Now().Add(wait))
		_, b, err := p.ws.ReadMessage()
		return string(b), err
	}
	p.nc.SetReadDeadline(time.Now().Add(wait))
	s, err := p.br.ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

// Send sends one message (a text peer ends it with "\r\n", as telnet
// does), failing the test on error. Call it from the test's goroutine.
func (p *Peer) Send(s string) {
	p.t.Helper()
	if err := p.SendErr(s); err != nil {
		p.t.Fatalf("peer %s: send: %v", p.ID, err)
	}
}

// SendErr is Send returning the error; it may run on any goroutine.
func (p *Peer) SendErr(s string) error {
	if p.ws != nil {
		return p.ws.WriteMessage(websocket.TextMessage, []byte(s))
	}
	_, err := p.nc.Write([]byte(s + "\r\n"))
	return err
}

// WS is the WebSocket connection; nil for a text peer.
func (p *Peer) WS() *websocket.Conn { return p.ws }

// Conn is the text peer's connection; nil for a WebSocket peer.
func (p *Peer) Conn() net.Conn { return p.nc }

// Reader is the buffered reader over the text peer's connection, which
// Read uses too; nil for a WebSocket peer.
func (p *Peer) Reader() *bufio.Reader { return p.br }

// Close ends the connection: a WebSocket peer first sends a close frame
// with code 1000; a text peer just closes.
func (p *Peer) Close() {
	if p.ws != nil {
		p.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		p.ws.Close()
		return
	}
	p.nc.Close()
}

// ReadID reads the peer's first message, which must be prefix followed
// by its client id (as a greeting handler sends it), sets ID to the id
// and returns it. It fails the test on any other message.
func (p *Peer) ReadID(prefix string) string {
	p.t.Helper()
	hello := p.Read()
	id, ok := strings.CutPrefix(hello, prefix)
	if !ok {
		p.t.Fatalf("first message = %q, want %q followed by the client id", hello, prefix)
	}
	p.ID = id
	return id
}
