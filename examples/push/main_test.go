package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/pushapi"
)

// TestCall pushes through a real push API to a real WebSocket client.
func TestCall(t *testing.T) {
	hub := gateway.New(gateway.Options{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Shutdown(ctx)
	})
	api, err := pushapi.New(hub, pushapi.Options{Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(api)
	defer apiSrv.Close()
	wsSrv := httptest.NewServer(hub.WebSocketHandler(nil))
	defer wsSrv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(wsSrv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for deadline := time.Now().Add(5 * time.Second); hub.GetAllClientIDCount() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the client did not register")
		}
	}

	ctx := context.Background()
	got, err := call(ctx, apiSrv.URL+"/", "s", "sendToAll", map[string]any{"data": "hi"})
	if err != nil || got != `{"result":1}` {
		t.Fatalf("call = %q, %v; want {\"result\":1}", got, err)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "hi" {
		t.Errorf("client got %q, %v; want hi", msg, err)
	}
	if _, err := call(ctx, apiSrv.URL, "wrong", "sendToAll", map[string]any{"data": "x"}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong secret: got %v, want a 401 error", err)
	}
	if _, err := call(ctx, apiSrv.URL, "s", "sendToClient", map[string]any{"data": "x"}); err == nil || !strings.Contains(err.Error(), "client_id is required") {
		t.Errorf("missing client_id: got %v, want the API's message", err)
	}
}
