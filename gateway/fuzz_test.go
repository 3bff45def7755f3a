package gateway_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
)

// FuzzParseClientID checks that ParseClientID never panics and that
// what it accepts is the id of the node and counter it returns.
func FuzzParseClientID(f *testing.F) {
	for _, s := range []string{"7f00000186f900000001", "", "zz", "7f00000186f90000000", "7F00000186F900000001", "0a00000500000000ffff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		node, counter, err := gateway.ParseClientID(id)
		if err != nil {
			return
		}
		if !node.Addr().Is4() {
			t.Fatalf("ParseClientID(%q) = node %v, want IPv4", id, node)
		}
		_ = counter
		again, c2, err := gateway.ParseClientID(id)
		if err != nil || again != node || c2 != counter {
			t.Fatalf("ParseClientID(%q) is not stable", id)
		}
	})
}

// FuzzCall runs arbitrary decoded calls on a hub with clients in it: no
// call panics or leaves the hub unusable.
func FuzzCall(f *testing.F) {
	for _, s := range []string{
		`{"method":"sendToAll","data":"x"}`,
		`{"method":"joinGroup","client_id":"7f00000100000000000a","group":"g"}`,
		`{"method":"bindUid","client_id":"7f00000100000000000a","uid":"u"}`,
		`{"method":"setSession","client_id":"x","session":{"a":[1,{"b":null}]}}`,
		`{"method":"getClientIdListByGroup","group":""}`,
		`{"method":"sendToUid","uids":["u","v"],"data":{"k":1}}`,
		`{"method":"closeClient","client_id":"","data":""}`,
	} {
		f.Add([]byte(s))
	}
	env := gatewaytest.New(f, gateway.Options{Node: netip.MustParseAddrPort("127.0.0.1:0"), Logger: slog.New(slog.DiscardHandler)})
	p := env.DialText(f)
	env.Events.WaitConnects(f, 1)
	f.Fuzz(func(t *testing.T, body []byte) {
		var c gateway.Call
		if json.Unmarshal(body, &c) != nil {
			return
		}
		_, _ = env.Hub.Call(c)
		if n := env.Hub.GetAllClientIDCount(); n > 1 {
			t.Fatalf("%d clients after a call; there is one", n)
		}
	})
	_ = p
}

// FuzzTextProtocol sends arbitrary bytes over the text protocol: the
// hub neither panics nor keeps the connection once the peer has gone.
func FuzzTextProtocol(f *testing.F) {
	for _, s := range []string{"hello\n", "a\r\nb\r\n", "\n\n\n", "no newline", "\x00\xff\xfe\n", string(make([]byte, 70000))} {
		f.Add([]byte(s))
	}
	env := gatewaytest.New(f, gateway.Options{MaxMessageBytes: 1 << 16, Logger: slog.New(slog.DiscardHandler)})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.DialTimeout("tcp", env.TextAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write(data)
		c.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := env.Hub.Wait(ctx); err != nil {
		f.Errorf("%d text clients still in the hub after every peer left", env.Hub.GetAllClientIDCount())
	}
}
