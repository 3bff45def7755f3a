package chatpage_test

import (
	"net/http"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/chatpage"
)

// The page at / and the hub's WebSocket at /wss, where the page looks
// for it.
func ExampleHandler() {
	chat := &gateway.Chat{}
	hub := gateway.New(gateway.Options{Handler: chat})
	chat.Hub = hub

	mux := http.NewServeMux()
	mux.Handle("/", chatpage.Handler())
	mux.Handle("/wss", hub.WebSocketHandler(nil))
	_ = &http.Server{Handler: mux}
}
