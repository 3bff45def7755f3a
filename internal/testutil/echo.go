package testutil

import (
	"net/http"

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
