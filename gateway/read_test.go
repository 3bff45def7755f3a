package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/internal/wsframe"
)

// rawPeer is a WebSocket client that writes frames byte by byte as the
// test builds them, for what a well-behaved library never sends.
type rawPeer struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// dialRaw opens a WebSocket to th with a handshake written by hand.
func dialRaw(t *testing.T, th *gatewaytest.Env) *rawPeer {
	t.Helper()
	nc, err := net.Dial("tcp", th.Server.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	req, _ := http.NewRequest(http.MethodGet, th.WSURL+"/wss", nil)
	req.URL.Scheme = "http"
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Version", "13")
	if err := req.Write(nc); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: got %s, want 101", resp.Status)
	}
	return &rawPeer{t: t, nc: nc, br: br}
}

// frame returns a client frame: masked unless unmasked is set.
func frame(fin bool, op byte, payload string, unmasked bool) []byte {
	key := [4]byte{1, 2, 3, 4}
	h := wsframe.Header{Fin: fin, Opcode: op, Masked: !unmasked, Key: key, Length: uint64(len(payload))}
	f := wsframe.AppendHeader(nil, h)
	start := len(f)
	f = append(f, payload...)
	if !unmasked {
		wsframe.Mask(key, f[start:])
	}
	return f
}

// send writes b in pieces of at most chunk bytes, each its own write;
// the first small pieces are spaced, so that the server reads them
// apart.
func (p *rawPeer) send(b []byte, chunk int) {
	p.t.Helper()
	for i := 0; len(b) > 0; i++ {
		k := min(chunk, len(b))
		if _, err := p.nc.Write(b[:k]); err != nil {
			p.t.Fatalf("write: %v", err)
		}
		b = b[k:]
		if chunk < 8 && i < 64 {
			time.Sleep(time.Millisecond)
		}
	}
}

// next reads the server's next frame: its opcode and payload.
func (p *rawPeer) next() (byte, []byte, error) {
	p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var parser wsframe.Parser
	var payload []byte
	for {
		b, err := p.br.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		_, ev := parser.Parse([]byte{b})
		h := parser.Header()
		switch ev {
		case wsframe.EventControl:
			return h.Opcode, bytes.Clone(parser.ControlPayload()), nil
		case wsframe.EventHeader:
			if h.Length == 0 {
				return h.Opcode, nil, nil
			}
		case wsframe.EventPayload:
			payload = append(payload, b)
			if uint64(len(payload)) == h.Length {
				return h.Opcode, payload, nil
			}
		}
	}
}

// expectClose reads until the server's close frame and checks its code.
func (p *rawPeer) expectClose(code int) {
	p.t.Helper()
	for {
		op, payload, err := p.next()
		if err != nil {
			p.t.Fatalf("waiting for close %d: %v", code, err)
		}
		if op == wsframe.OpClose {
			if got := wsframe.CloseCode(payload); got != code {
				p.t.Errorf("close code %d (%q), want %d", got, payload, code)
			}
			return
		}
	}
}

// TestWSRead: the hub's own frame reader takes what a client may send
// (fragments, control frames between them, frames split anywhere across
// reads, several frames in one read) and answers pings.
func TestWSRead(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{MaxMessageBytes: 1 << 20})
	p := dialRaw(t, th)
	id := th.Events.WaitConnects(t, 1)[0]
	var stream []byte
	stream = append(stream, frame(true, wsframe.OpText, "one", false)...)
	stream = append(stream, frame(false, wsframe.OpText, "tw", false)...)
	stream = append(stream, frame(true, wsframe.OpPing, "hi", false)...) // between fragments
	stream = append(stream, frame(false, wsframe.OpContinuation, "o ", false)...)
	stream = append(stream, frame(false, wsframe.OpContinuation, "", false)...)
	stream = append(stream, frame(true, wsframe.OpContinuation, "parts", false)...)
	stream = append(stream, frame(true, wsframe.OpBinary, "", false)...)
	big := strings.Repeat("b", 70000) // a 64-bit length, over the reader's buffer
	stream = append(stream, frame(true, wsframe.OpText, big, false)...)
	for _, chunk := range []int{len(stream), 1, 7, 4096} {
		n := len(th.Events.Messages())
		p.send(stream, chunk)
		th.Events.Wait(t, "four messages", func() bool { return len(th.Events.Messages()) == n+4 })
		checkEq(t, "messages", th.Events.Messages()[n:], []string{id + ": one", id + ": two parts", id + ": ", id + ": " + big})
		if op, payload, err := p.next(); err != nil || op != wsframe.OpPong || string(payload) != "hi" {
			t.Fatalf("pong: got op %x %q %v, want pong \"hi\"", op, payload, err)
		}
	}
	// A close frame is echoed and ends the connection.
	p.send(frame(true, wsframe.OpClose, string(wsframe.AppendClosePayload(nil, 4001, "bye")), false), 3)
	p.expectClose(4001)
	th.Events.WaitCloses(t, 1)
}

// TestWSReadProtocolErrors: a client that breaks RFC 6455 gets close
// 1002 (1007 for a close reason that is not UTF-8, 1009 for a message
// announced too long) and is closed.
func TestWSReadProtocolErrors(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{MaxMessageBytes: 100})
	closePayload := func(code int, reason string) string {
		return string([]byte{byte(code >> 8), byte(code)}) + reason
	}
	tests := []struct {
		name string
		send []byte
		code int
	}{
		{"unmasked", frame(true, wsframe.OpText, "x", true), 1002},
		{"reserved bits", func() []byte { f := frame(true, wsframe.OpText, "x", false); f[0] |= 0x40; return f }(), 1002},
		{"reserved opcode", frame(true, 0x3, "x", false), 1002},
		{"reserved control opcode", frame(true, 0xB, "x", false), 1002},
		{"continuation first", frame(true, wsframe.OpContinuation, "x", false), 1002},
		{"new message inside another", append(frame(false, wsframe.OpText, "x", false), frame(true, wsframe.OpText, "y", false)...), 1002},
		{"fragmented ping", frame(false, wsframe.OpPing, "x", false), 1002},
		{"long ping", frame(true, wsframe.OpPing, strings.Repeat("p", 126), false), 1002},
		{"bad close code", frame(true, wsframe.OpClose, closePayload(1005, ""), false), 1002},
		{"close reason not UTF-8", frame(true, wsframe.OpClose, closePayload(1000, "\xff"), false), 1007},
		{"too big", frame(true, wsframe.OpText, strings.Repeat("a", 101), false), 1009},
		{"too big in fragments", append(frame(false, wsframe.OpText, strings.Repeat("a", 60), false), frame(true, wsframe.OpContinuation, strings.Repeat("a", 60), false)...), 1009},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := dialRaw(t, th)
			th.Events.WaitConnects(t, i+1)
			p.send(tt.send, len(tt.send))
			p.expectClose(tt.code)
			p.nc.Close() // as a client does after the close frame
			th.Events.WaitCloses(t, i+1)
		})
	}
	if n := len(th.Events.Messages()); n != 0 {
		t.Errorf("%d messages delivered, want none: %q", n, th.Events.Messages())
	}
}

// TestTextReadSplit: lines split anywhere across reads, "\r\n" included,
// and several lines in one read, arrive whole.
func TestTextReadSplit(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{})
	p, id := th.Connect(t, "text")
	stream := "alpha\r\nbeta\n\ngamma delta\r\n"
	for _, chunk := range []int{len(stream), 1, 3} {
		n := len(th.Events.Messages())
		for s := stream; len(s) > 0; {
			k := min(chunk, len(s))
			p.Conn().Write([]byte(s[:k]))
			s = s[k:]
			time.Sleep(time.Millisecond)
		}
		th.Events.Wait(t, "four lines", func() bool { return len(th.Events.Messages()) == n+4 })
		checkEq(t, "lines", th.Events.Messages()[n:], []string{id + ": alpha", id + ": beta", id + ": ", id + ": gamma delta"})
	}
}

// TestPollerStops: the poller's goroutine runs only while a connection
// is polled; once the last has gone, Wait returns after it has ended.
func TestPollerStops(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{})
	for round := range 2 {
		var peers []*gatewaytest.Peer
		for _, tr := range []string{"websocket", "text", "websocket"} {
			p, _ := th.Connect(t, tr)
			peers = append(peers, p)
		}
		if !pollerRunning() {
			t.Fatalf("round %d: no poller goroutine with clients connected", round)
		}
		for _, p := range peers {
			p.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := th.Hub.Wait(ctx)
		cancel()
		if err != nil {
			t.Fatalf("round %d: Wait: %v", round, err)
		}
		if pollerRunning() {
			t.Fatalf("round %d: the poller's goroutine outlives the last client", round)
		}
	}
}

// pollerRunning reports whether a poller goroutine exists.
func pollerRunning() bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "gateway.(*poller).run")
}

// TestDestroyIdleClient: an idle polled client that the hub cuts (no
// goroutine of its own to notice) still ends, with OnClose.
func TestDestroyIdleClient(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{})
	p, id := th.Connect(t, "websocket")
	if err := th.Hub.DestroyClient(id); err != nil {
		t.Fatal(err)
	}
	th.Events.WaitCloses(t, 1)
	if _, err := p.ReadErr(5 * time.Second); err == nil || websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("destroyed client: read %v, want the connection cut", err)
	}
}
