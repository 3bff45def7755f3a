package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/wssgate/wssgate/gateway"
)

// echoUpper is business logic embedded in Go: it answers each message in
// upper case and puts every client in the "lobby" group.
type echoUpper struct {
	gateway.NopHandler
	hub *gateway.Hub
}

func (e *echoUpper) OnConnect(c gateway.ClientInfo) {
	e.hub.JoinGroup(c.ID, "lobby")
	e.hub.SendToClient(c.ID, []byte("welcome "+c.ID))
}

func (e *echoUpper) OnMessage(c gateway.ClientInfo, data []byte) {
	e.hub.SendToClient(c.ID, []byte(strings.ToUpper(string(data))))
}

// A hub with business logic in Go, serving the text protocol; a client
// connects, is greeted with its id and gets its message back.
func Example() {
	logic := &echoUpper{}
	hub := gateway.New(gateway.Options{
		Node:    netip.MustParseAddrPort("127.0.0.1:2902"),
		Handler: logic,
	})
	logic.hub = hub

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go hub.Run(ctx)
	go hub.ServeText(ctx, ln)
	defer func() {
		cancel()
		sctx, done := context.WithTimeout(context.Background(), time.Second)
		defer done()
		hub.Shutdown(sctx)
	}()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	greeting, _ := r.ReadString('\n')
	fmt.Print(greeting)
	fmt.Fprint(c, "hello\r\n")
	answer, _ := r.ReadString('\n')
	fmt.Print(answer)
	fmt.Println(hub.GetClientIDCountByGroup("lobby"), "in the lobby")
	// Output:
	// welcome 7f0000010b5600000001
	// HELLO
	// 1 in the lobby
}
