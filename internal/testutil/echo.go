package testutil

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// EchoWebSocket upgrades r and echoes every message back until the
// connection ends: a stand-in WebSocket gateway for tests. It answers a
// request that is not an upgrade with 400, as gorilla's Upgrader does.
func EchoWebSocket(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	defer c.Close()
	c.SetReadLimit(8 << 20)
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}

// EchoRoundTrip sends msg on c as a message of type mt (websocket.TextMessage
// or BinaryMessage) and fails the test unless the next message read, within
// 10 s, is the same bytes: one round trip through an echo backend.
func EchoRoundTrip(t testing.TB, c *websocket.Conn, mt int, msg []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	if err := c.WriteMessage(mt, msg); err != nil {
		t.Fatalf("echo: write %d bytes: %v", len(msg), err)
	}
	_, got, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("echo: read: %v", err)
	}
	if !bytes.Equal(got, msg) {
		if len(msg) <= 64 {
			t.Fatalf("echo: got %q, want %q", got, msg)
		}
		t.Fatalf("echo: %d bytes came back as %d bytes (different content)", len(msg), len(got))
	}
}

// EchoServer is an [EchoWebSocket] backend on loopback, closed when the
// test ends.
func EchoServer(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(EchoWebSocket))
	t.Cleanup(srv.Close)
	return srv
}
