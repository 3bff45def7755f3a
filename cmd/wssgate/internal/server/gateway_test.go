package server_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wssgate/wssgate/cmd/wssgate/internal/server"
	"github.com/wssgate/wssgate/cmd/wssgate/internal/server/servertest"
	"github.com/wssgate/wssgate/config"
)

// TestGatewayWiring runs the server with the gateway's webhook and push
// API on: a wss client through the edge is greeted by the app's reply
// action, the app's joinGroup action lets a push API call reach it, and
// every event the app receives is signed and in order.
func TestGatewayWiring(t *testing.T) {
	const hookSecret = "hook-secret"
	t.Setenv("WSSGATE_TEST_PUSH_SECRET", "push-secret")

	var mu sync.Mutex
	var events, ips []string
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(hookSecret))
		mac.Write(body)
		if r.Header.Get("X-Wssgate-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			t.Errorf("bad signature on %s", body)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev struct {
			Event     string `json:"event"`
			Data      string `json:"data"`
			IP        string `json:"ip"`
			Transport string `json:"transport"`
		}
		json.Unmarshal(body, &ev)
		mu.Lock()
		if ev.Event == "connect" {
			ips = append(ips, ev.IP)
		}
		if ev.IP != "203.0.113.9" { // the standalone client is checked apart
			events = append(events, strings.TrimSpace(ev.Event+" "+ev.Data))
		}
		mu.Unlock()
		if ev.Event == "connect" {
			io.WriteString(w, `{"actions":[{"method":"joinGroup","group":"room"},{"method":"reply","data":"welcome"}]}`)
		}
	}))
	defer app.Close()

	srv, _ := servertest.ServeFile(t, fmt.Sprintf(`
listen: { https: "127.0.0.1:0", http: "" }
shutdown_timeout: 5s
trusted_proxies: ["127.0.0.0/8"]
gateway:
  websocket_listen: "127.0.0.1:0"
  push_api: { listen: "127.0.0.1:0", secret_env: WSSGATE_TEST_PUSH_SECRET }
  webhook: { url: "%s/events", secret: %q }
sites:
  - hosts: [localhost]
    tls: { internal: true }
    routes:
      - { path: /wss, gateway: true }
`, app.URL, hookSecret), server.Options{})

	roots := srv.Roots()
	addr := srv.Addr(config.ListenerHTTPS)
	d := websocket.Dialer{
		TLSClientConfig:  &tls.Config{RootCAs: roots},
		HandshakeTimeout: 5 * time.Second,
		NetDial:          func(network, _ string) (net.Conn, error) { return net.Dial(network, addr) },
	}
	ws, _, err := d.Dial("wss://localhost/wss", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "welcome" {
		t.Fatalf("first message %q, %v; want the app's reply action", msg, err)
	}

	push := func(token, method, body string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+srv.Addr(config.ListenerPushAPI)+"/api/"+method, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatalf("push API: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := push("wrong", "sendToAll", `{"data":"x"}`); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d %s, want 401", code, body)
	}
	if code, body := push("push-secret", "sendToGroup", `{"group":"room","data":"to the room"}`); code != 200 || body != `{"result":1}` {
		t.Errorf("sendToGroup: %d %s, want 200 {\"result\":1}", code, body)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "to the room" {
		t.Fatalf("got %q, %v; want the pushed message", msg, err)
	}
	ws.WriteMessage(websocket.TextMessage, []byte("hi"))
	waitEvents := func(want []string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			got := append([]string(nil), events...)
			mu.Unlock()
			if strings.Join(got, "|") == strings.Join(want, "|") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("app got events %q, want %q", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitEvents([]string{"connect", "websocket_connect", "message hi"})

	// The standalone listener, behind a trusted proxy: the gateway takes
	// the client's address from X-Forwarded-For.
	standalone, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr(config.ListenerGatewayWebSocket)+"/", http.Header{"X-Forwarded-For": {"203.0.113.9"}})
	if err != nil {
		t.Fatalf("dial websocket_listen: %v", err)
	}
	standalone.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := standalone.ReadMessage(); err != nil || string(msg) != "welcome" {
		t.Fatalf("standalone client got %q, %v; want the reply action", msg, err)
	}
	standalone.Close()
	mu.Lock()
	if len(ips) != 2 || ips[0] != "127.0.0.1" || ips[1] != "203.0.113.9" {
		t.Errorf("connect events had ip %q, want the edge client's 127.0.0.1, then 203.0.113.9 from X-Forwarded-For", ips)
	}
	mu.Unlock()
	// Stopping delivers the close event before the server returns. The
	// client reads meanwhile, so it answers the close frame as a browser
	// does.
	closed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				closed <- err
				return
			}
		}
	}()
	if err := srv.Stop(); err != nil {
		t.Errorf("serve: %v", err)
	}
	if err := <-closed; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("on shutdown the gateway client got %v, want close 1001", err)
	}
	waitEvents([]string{"connect", "websocket_connect", "message hi", "close"})
}
