package main

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/gateway/gatewayworker"
	"github.com/wssgate/wssgate/internal/testutil"
	"go.uber.org/goleak"
)

// Every goroutine a test starts has ended when the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// chatWant is what the chat scenario below must show, client ids
// replaced by the clients' names: the built-in chat's lines.
var chatWant = []string{
	"A < Hello A",
	"A < online",
	"A < A login",
	"B < Hello B",
	"B < online A",
	"B < B login",
	"A < B login",
	"C < Hello C",
	"C < online A B",
	"C < C login",
	"A < C login",
	"B < C login",
	"A < B said hello from telnet",
	"B < B said hello from telnet",
	"C < B said hello from telnet",
	"A < A said hi",
	"B < A said hi",
	"C < A said hi",
	"A < C said 你好, world",
	"B < C said 你好, world",
	"C < C said 你好, world",
	"A < B logout",
	"C < B logout",
	"A < C logout",
}

// TestChatWorkerSameAsBuiltIn runs one scenario (two WebSocket clients
// and a telnet-like text client join, talk, answer a heartbeat and
// leave) against the built-in chat (gateway.Chat as the hub's handler)
// and against this program's chat, run by a gatewayworker.Worker that
// finds the gateway through a Register and gets its events from the
// Inner with a secret key, as with wssgate and a PHP BusinessWorker.
// The clients must read the same lines.
func TestChatWorkerSameAsBuiltIn(t *testing.T) {
	t.Run("built-in", func(t *testing.T) {
		chat := &gateway.Chat{}
		env := gatewaytest.New(t, gateway.Options{Handler: chat})
		chat.Hub = env.Hub
		checkTranscript(t, chatScenario(t, env))
	})
	t.Run("worker", func(t *testing.T) {
		checkTranscript(t, chatScenario(t, startWorkerChat(t, "S3cr3t-K3y")))
	})
}

func checkTranscript(t *testing.T, got []string) {
	t.Helper()
	if !slices.Equal(got, chatWant) {
		t.Errorf("transcript:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(chatWant, "\n\t"))
	}
}

// startWorkerChat serves a hub whose events go to an Inner, a Register
// listing the Inner, and a Worker running the chat, until the test
// ends.
func startWorkerChat(t *testing.T, key string) *gatewaytest.Env {
	t.Helper()
	log := testutil.Logger(t)
	innerLn := testutil.Listen(t)
	regLn := testutil.Listen(t)
	addr := innerLn.Addr().(*net.TCPAddr).AddrPort()
	inner, err := gatewayworker.NewInner(gatewayworker.InnerConfig{Address: addr, SecretKey: key, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	env := gatewaytest.Start(t, gateway.New(gateway.Options{Node: addr, Handler: inner, SessionCodec: gatewayworker.PHPSessionCodec{}, Logger: log}))
	reg := gatewayworker.NewRegister(gatewayworker.RegisterConfig{SecretKey: key, Logger: log})
	reg.AddGateway(addr.String())
	w, err := gatewayworker.NewWorker(gatewayworker.WorkerConfig{
		RegisterAddress: regLn.Addr().String(),
		SecretKey:       key,
		Handler:         gatewayworker.Chat{Logger: log},
		Logger:          log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { inner.Serve(ctx, innerLn, env.Hub) })
	wg.Go(func() { reg.Serve(ctx, regLn) })
	wg.Go(func() { w.Run(ctx) })
	t.Cleanup(func() { // before the hub's shutdown, which gatewaytest registered first
		cancel()
		wg.Wait()
	})
	testutil.WaitFor(t, "the worker", func() bool { return inner.Stats().Workers == 1 })
	return env
}

// chatScenario runs the chat scenario against env and returns what each
// client read, as "<name> < <line>" with client ids replaced by names
// and the online list sorted.
func chatScenario(t *testing.T, env *gatewaytest.Env) []string {
	t.Helper()
	var lines []string
	names := map[string]string{} // client id → name
	norm := func(s string) string {
		for id, name := range names {
			s = strings.ReplaceAll(s, id, name)
		}
		if rest, ok := strings.CutPrefix(s, "online "); ok {
			f := strings.Fields(rest)
			slices.Sort(f)
			s = "online " + strings.Join(f, " ")
		}
		return s
	}
	read := func(p *gatewaytest.Peer) {
		t.Helper()
		lines = append(lines, names[p.ID]+" < "+norm(p.Read()))
	}
	join := func(name string, p *gatewaytest.Peer) *gatewaytest.Peer {
		t.Helper()
		names[p.ReadID("Hello ")] = name
		lines = append(lines, name+" < Hello "+name)
		read(p) // online ...
		read(p) // own login
		return p
	}

	a := join("A", env.DialWS(t))
	b := join("B", env.DialText(t))
	read(a)
	c := join("C", env.DialWS(t))
	read(a)
	read(b)
	all := []*gatewaytest.Peer{a, b, c}
	say := func(from *gatewaytest.Peer, msgs ...string) {
		t.Helper()
		for _, m := range msgs {
			from.Send(m)
		}
		for _, p := range all {
			read(p)
		}
	}
	say(b, "hello from telnet")
	say(a, `{"type":"pong"}`, "hi") // a heartbeat answer is not repeated
	say(c, "你好, world")
	b.Close()
	read(a)
	read(c)
	c.Close()
	read(a)
	return lines
}
