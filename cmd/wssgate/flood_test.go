package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wssgate/wssgate/admin"
	"github.com/wssgate/wssgate/cmd/wssgate/internal/server/servertest"
	"github.com/wssgate/wssgate/internal/testutil"
	"github.com/wssgate/wssgate/status"
)

// floodFiles is the open-file limit the flooded process runs under: low,
// so that a flood of a few hundred connections would exhaust it.
const floodFiles = 400

// TestProcessDescriptorFlood floods the unauthenticated text port of a
// real process, run under a low open-file limit, with more connections
// than the limit allows. The text listener stops at its cap (a quarter
// of the connection budget) and leaves the rest in the kernel backlog,
// so the descriptors stay free for everyone else: meanwhile a wss client
// handshakes through the edge and echoes through a relayed route, and
// the admin listener answers. Without the budget, the flood took every
// descriptor and the edge refused everyone.
func TestProcessDescriptorFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	textAddr, adminAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	cfg := servertest.WriteFile(t, dir, "config.yaml", fmt.Sprintf(`listen: { https: "127.0.0.1:0", http: "" }
admin: { listen: %q }
gateway:
  text_listen: %q
  ping_interval: 0s
sites:
  - hosts: [localhost]
    tls: { internal: true }
    routes:
      - { path: /echo, upstreams: ["ws://%s"] }
`, adminAddr, textAddr, testutil.EchoServer(t).Listener.Addr()))
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, floodFiles), bin, "run", "-config", cfg)
	p := startCmd(t, cmd, dir)

	snapshot := func() status.Snapshot {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := admin.Fetch(ctx, adminAddr, "")
		if err != nil {
			t.Fatalf("the admin listener: %v", err)
		}
		return s
	}
	text := func(s status.Snapshot) status.Listener {
		for _, l := range s.Listeners {
			if l.Name == "gateway_text" {
				return l
			}
		}
		t.Fatalf("no gateway_text listener in %+v", s.Listeners)
		return status.Listener{}
	}
	s := snapshot()
	if s.Budget.Limit <= 0 || s.Budget.Limit >= floodFiles {
		t.Fatalf("connection budget %d under %d open files: want one below the limit", s.Budget.Limit, floodFiles)
	}
	textCap := text(s).Cap
	if textCap <= 0 || textCap > s.Budget.Limit/4 {
		t.Fatalf("text listener cap %d, want a quarter of the budget %d at most", textCap, s.Budget.Limit)
	}

	// The flood: more connections than the process may have descriptors.
	const flood = 2 * floodFiles
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range flood {
		c, err := net.DialTimeout("tcp", textAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("flood connection %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	testutil.WaitFor(t, "the text listener paused at its cap", func() bool {
		l := text(snapshot())
		return l.Paused && l.Conns == textCap
	})

	// Meanwhile the edge serves: a full TLS handshake, the upgrade, and
	// an echo through the relayed route.
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: processRoots(t, dir)}, HandshakeTimeout: 10 * time.Second}
	began := time.Now()
	ws, _, err := d.Dial("wss://localhost:"+p.port+"/echo", nil)
	if err != nil {
		t.Fatalf("the edge refused a client during the flood: %v", err)
	}
	defer ws.Close()
	testutil.EchoRoundTrip(t, ws, websocket.TextMessage, []byte("during the flood"))
	t.Logf("during a flood of %d connections to the text port: wss handshake + echo through the edge took %v", flood, time.Since(began).Round(time.Microsecond))
	s = snapshot()
	if l := text(s); l.FDErrors != 0 || l.Pauses < 1 {
		t.Errorf("text listener %+v: want no descriptor errors and a pause", l)
	}
	if !strings.Contains(p.log.String(), "listener at its connection cap") {
		t.Errorf("the pause was not logged:\n%s", p.log.String())
	}

	// The flood ends: the listener accepts again.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	testutil.WaitFor(t, "the text listener accepting again", func() bool { return !text(snapshot()).Paused })
	tc, err := net.DialTimeout("tcp", textAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tc.Close()
}
