package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wssgate/wssgate/cmd/wssgate/internal/server"
	"github.com/wssgate/wssgate/cmd/wssgate/internal/server/servertest"
	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/testutil"
)

// TestEndToEnd runs the real server with a CA-issued certificate and an
// intermediate: a wss client that trusts only the root connects by name,
// sees the full chain, exchanges messages, and gets close 1001 when the
// server stops.
func TestEndToEnd(t *testing.T) {
	root := testutil.NewCA(t, "Test Root")
	inter := root.Intermediate(t, "Test Intermediate")
	leaf := inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.example.com"}})
	dir := t.TempDir()
	certFile, keyFile := leaf.WriteFiles(t, dir)
	backend := testutil.EchoServer(t)
	srv, _ := servertest.ServeFile(t, fmt.Sprintf(`
listen: { https: "127.0.0.1:0", http: "" }
shutdown_timeout: 5s
sites:
  - hosts: [chat.example.com]
    tls: { cert_file: %q, key_file: %q }
    routes:
      - path: /wss
        upstreams: ["ws://%s"]
`, certFile, keyFile, backend.Listener.Addr()), server.Options{})
	addr := srv.Addr(config.ListenerHTTPS)

	var chainLen int
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{
			RootCAs:    root.Pool(),
			ServerName: "chat.example.com",
			MinVersion: tls.VersionTLS12,
			VerifyConnection: func(cs tls.ConnectionState) error {
				chainLen = len(cs.PeerCertificates)
				return nil
			},
		},
		HandshakeTimeout: 5 * time.Second,
	}
	c, _, err := d.Dial("wss://chat.example.com/wss", nil)
	if err != nil {
		t.Fatalf("dial through the edge: %v", err)
	}
	defer c.Close()
	if chainLen != 2 {
		t.Errorf("server sent %d certificates, want 2 (leaf and intermediate)", chainLen)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "ping" {
		t.Fatalf("echo: %q, %v", msg, err)
	}

	stopErr := make(chan error, 1)
	go func() { stopErr <- srv.Stop() }()
	_, _, err = c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("on shutdown the client got %v, want close 1001", err)
	}
	if err := <-stopErr; err != nil {
		t.Errorf("serve: %v", err)
	}
}
