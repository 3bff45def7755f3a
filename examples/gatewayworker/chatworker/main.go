// Command chatworker is the seed's chat demo as a GatewayWorker
// BusinessWorker written in Go, on gatewayworker.Worker: it asks the
// Register for the gateways, connects to each, and answers their events
// as the built-in chat does. Run it beside wssgate (or a PHP Gateway)
// instead of, or together with, `php start_businessworker.php start`:
//
//	export GATEWAYWORKER_SECRET=change-me
//	go run ./cmd/wssgate run -config examples/gatewayworker/config.yaml
//	go run ./examples/gatewayworker/chatworker -register 127.0.0.1:1238
//
// then open https://localhost:8443/ or run `telnet 127.0.0.1 8282`.
// Ctrl-C stops it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/wssgate/wssgate/gateway/gatewayworker"
)

func main() {
	register := flag.String("register", "127.0.0.1:1238", "the Register's address ($worker->registerAddress)")
	secret := flag.String("secret", "", "the secret key ($worker->secretKey; default: $GATEWAYWORKER_SECRET)")
	name := flag.String("name", "", `the worker key the gateways see (default "BusinessWorker:" and a random suffix)`)
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: chatworker [-register HOST:PORT] [-secret KEY | $GATEWAYWORKER_SECRET] [-name NAME] [-debug]")
		os.Exit(2)
	}
	if *secret == "" {
		*secret = os.Getenv("GATEWAYWORKER_SECRET")
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	w, err := gatewayworker.NewWorker(gatewayworker.WorkerConfig{
		RegisterAddress: *register,
		SecretKey:       *secret,
		WorkerKey:       *name,
		Handler:         gatewayworker.Chat{Logger: log},
		Logger:          log,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatworker:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("chat worker running; Ctrl-C stops it", "register", *register, "worker_key", w.WorkerKey())
	w.Run(ctx)
}
