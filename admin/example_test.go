package admin_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/wssgate/wssgate/admin"
	"github.com/wssgate/wssgate/status"
)

// A process serves its admin listener, and `wssgate status` reads it.
func Example() {
	srv, err := admin.New(admin.Options{
		Snapshot: func() status.Snapshot {
			// In wssgate: built from the proxy's, listeners', hub's and
			// push API's statistics, with status.ReadProcess.
			return status.Snapshot{
				Listeners: []status.Listener{{Name: "https", Addr: ":443", Conns: 12}},
				Gateway:   &status.Gateway{Clients: 11, UIDs: 9, Groups: 2},
			}
		},
		Ready: func() bool { return true },
	})
	if err != nil {
		log.Fatal(err)
	}
	addr := "127.0.0.1:0" // admin.DefaultAddr in wssgate
	if err := admin.CheckBind(addr, ""); err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	snap, err := admin.Fetch(context.Background(), ln.Addr().String(), "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("https conns %d, gateway clients %d\n", snap.Listeners[0].Conns, snap.Gateway.Clients)

	stop()
	if err := <-served; err != nil {
		log.Fatal(err)
	}
	// Output: https conns 12, gateway clients 11
}

func ExampleCheckBind() {
	for _, addr := range []string{"127.0.0.1:9180", "[::1]:9180", ":9180", "0.0.0.0:9180", "admin.example.com:9180"} {
		fmt.Printf("%-22s %v\n", addr, admin.CheckBind(addr, ""))
	}
	fmt.Printf("%-22s %v\n", ":9180 with a token", admin.CheckBind(":9180", "s3cret"))
	// Output:
	// 127.0.0.1:9180         <nil>
	// [::1]:9180             <nil>
	// :9180                  admin: an admin listener off loopback needs a token: ":9180" listens on every interface; listen on 127.0.0.1 or [::1], or set a token
	// 0.0.0.0:9180           admin: an admin listener off loopback needs a token: "0.0.0.0:9180" listens on every interface; listen on 127.0.0.1 or [::1], or set a token
	// admin.example.com:9180 admin: an admin listener off loopback needs a token: "admin.example.com:9180" names a host other than localhost; listen on 127.0.0.1 or [::1], or set a token
	// :9180 with a token     <nil>
}
