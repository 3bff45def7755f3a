package gatewayworker_test

import (
	"context"
	"fmt"
	"net"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewayworker"
)

// A Gateway as wssgate wires it: the hub makes GatewayWorker client ids
// from the inner address, keeps sessions in PHP's form, and sends its
// events to the Inner; the Inner runs the BusinessWorkers' and
// GatewayClient's commands on the hub. A Register hands the inner
// address out.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	innerLn, _ := net.Listen("tcp", "127.0.0.1:0")
	registerLn, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := innerLn.Addr().(*net.TCPAddr).AddrPort()

	inner, err := gatewayworker.NewInner(gatewayworker.InnerConfig{Address: addr})
	if err != nil {
		fmt.Println(err)
		return
	}
	hub := gateway.New(gateway.Options{Node: addr, Handler: inner, SessionCodec: gatewayworker.PHPSessionCodec{}})
	register := gatewayworker.NewRegister(gatewayworker.RegisterConfig{})
	defer register.AddGateway(addr.String())()

	done := make(chan struct{}, 2)
	go func() { inner.Serve(ctx, innerLn, hub); done <- struct{}{} }()
	go func() { register.Serve(ctx, registerLn); done <- struct{}{} }()

	// What GatewayClient does for Gateway::isOnline($client_id).
	addrs, _ := gatewayworker.FetchAddresses(ctx, registerLn.Addr().String(), "")
	id, _ := gatewayworker.ParseClientID("7f00000107d000000001")
	nc, _ := net.Dial("tcp", addrs[0])
	q := gatewayworker.Packet{Cmd: gatewayworker.CmdIsOnline, ConnectionID: id.ConnectionID, Flag: gatewayworker.FlagBodyIsScalar}
	b, _ := q.Encode()
	nc.Write(b)
	reply, _ := gatewayworker.ReadReply(nc, 0)
	nc.Close()
	fmt.Printf("%s\n", reply)

	cancel()
	<-done
	<-done
	hub.Shutdown(context.Background())
	// Output: i:0;
}
