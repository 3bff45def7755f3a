package webhook_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/webhook"
)

// A hub whose business worker is a web application.
func Example() {
	wh, err := webhook.New(webhook.Options{
		URL:    "http://127.0.0.1:8000/api/gateway/events",
		Secret: os.Getenv("WSSGATE_WEBHOOK_SECRET"),
	})
	if err != nil {
		log.Fatal(err)
	}
	hub := gateway.New(gateway.Options{Handler: wh})
	wh.SetHub(hub) // before the hub serves its first client

	// ... serve clients with hub.WebSocketHandler and hub.ServeText ...

	// On the way out: the close events of the shutdown are delivered,
	// then deliveries still retrying are ended.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stop := context.AfterFunc(ctx, wh.Close) // a deadline also ends deliveries
	defer stop()
	hub.Shutdown(ctx)
	wh.Close()
}
