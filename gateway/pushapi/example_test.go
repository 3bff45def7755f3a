package pushapi_test

import (
	"context"
	"log"
	"net"
	"os"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/pushapi"
)

// The push API on its own loopback listener, beside a hub.
func Example() {
	hub := gateway.New(gateway.Options{})
	api, err := pushapi.New(hub, pushapi.Options{Secret: os.Getenv("WSSGATE_PUSH_SECRET")})
	if err != nil {
		log.Fatal(err) // pushapi: secret is required
	}
	ln, err := net.Listen("tcp", "127.0.0.1:9181")
	if err != nil {
		log.Fatal(err)
	}
	// curl -H "Authorization: Bearer $WSSGATE_PUSH_SECRET" -H 'Content-Type: application/json' \
	//   -d '{"data":"hello"}' http://127.0.0.1:9181/api/sendToAll
	ctx := context.Background() // in a program: signal.NotifyContext
	if err := api.Serve(ctx, ln); err != nil {
		log.Print(err)
	}
}
