package gatewayworker_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewayworker"
)

// greeter is a BusinessWorker's Events: it welcomes each client and
// answers its messages.
type greeter struct{ gatewayworker.NopWorkerHandler }

func (greeter) OnConnect(e *gatewayworker.Event) {
	e.Worker.SendToClient(e.ClientID, []byte("welcome"))
}

func (greeter) OnMessage(e *gatewayworker.Event) {
	e.Worker.SendToClient(e.ClientID, []byte("you said "+string(e.Message)))
}

// A Go BusinessWorker beside a Gateway: the Worker finds the Gateway
// through the Register and gets the events of a telnet-like client.
func ExampleWorker() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	innerLn, _ := net.Listen("tcp", "127.0.0.1:0")
	registerLn, _ := net.Listen("tcp", "127.0.0.1:0")
	textLn, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := innerLn.Addr().(*net.TCPAddr).AddrPort()

	// The Gateway side, as wssgate wires it.
	inner, _ := gatewayworker.NewInner(gatewayworker.InnerConfig{Address: addr})
	hub := gateway.New(gateway.Options{Node: addr, Handler: inner, SessionCodec: gatewayworker.PHPSessionCodec{}})
	register := gatewayworker.NewRegister(gatewayworker.RegisterConfig{})
	register.AddGateway(addr.String())

	// The BusinessWorker.
	worker, err := gatewayworker.NewWorker(gatewayworker.WorkerConfig{
		RegisterAddress: registerLn.Addr().String(),
		Handler:         greeter{},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	var wg sync.WaitGroup
	wg.Go(func() { inner.Serve(ctx, innerLn, hub) })
	wg.Go(func() { register.Serve(ctx, registerLn) })
	wg.Go(func() { hub.ServeText(ctx, textLn) })
	wg.Go(func() { worker.Run(ctx) })
	for inner.Stats().Workers == 0 {
		time.Sleep(time.Millisecond)
	}

	nc, _ := net.Dial("tcp", textLn.Addr().String())
	r := bufio.NewReader(nc)
	line := func() { s, _ := r.ReadString('\n'); fmt.Print(s) }
	line()
	nc.Write([]byte("hi\n"))
	line()
	nc.Write([]byte("again\n"))
	line()

	nc.Close()
	hub.Shutdown(context.Background())
	cancel()
	wg.Wait()
	// Output:
	// welcome
	// you said hi
	// you said again
}
