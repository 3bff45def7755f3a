// Command echo is a WebSocket gateway stand-in for trying wssgate: it
// echoes every message back and logs what the edge told it about the
// client (X-Real-IP, X-Forwarded-For).
//
//	go run ./examples/echo -addr 127.0.0.1:8282
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8282", "listen address")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *addr, log); err != nil {
		log.Error("echo", "err", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, addr string, log *slog.Logger) error {
	upgrader := websocket.Upgrader{HandshakeTimeout: 10 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade already answered with an HTTP error
		}
		defer c.Close()
		log.Info("connected", "path", r.URL.Path, "real_ip", r.Header.Get("X-Real-IP"), "forwarded_for", r.Header.Get("X-Forwarded-For"))
		c.SetReadLimit(1 << 20)
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				log.Info("disconnected", "err", err)
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("echo gateway listening", "addr", addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
