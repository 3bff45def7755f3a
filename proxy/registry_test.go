package proxy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wssgate/wssgate/internal/testutil"
)

// waitNoStreams waits, within relayWait, until e has no stream open.
func waitNoStreams(t *testing.T, e *edge) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), relayWait)
	defer cancel()
	if err := e.Wait(ctx); err != nil {
		t.Fatalf("Wait: got %v with %d streams open, want nil", err, e.Streams())
	}
}

// waitResult runs g.wait(ctx) on a goroutine and returns where its
// result will arrive.
func waitResult(g *registry, ctx context.Context) <-chan error {
	done := make(chan error, 1)
	go func() { done <- g.wait(ctx) }()
	return done
}

// TestRegistryWait drives the registry's completion signal through its
// states: empty, busy, emptied, busy again.
func TestRegistryWait(t *testing.T) {
	var g registry
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	// Empty: at once, even with a done context.
	if err := g.wait(cancelled); err != nil {
		t.Fatalf("empty, done ctx: got %v, want nil", err)
	}

	// Busy: a done context ends the wait.
	a, b := &stream{}, &stream{}
	removeA, removeB := g.add(a), g.add(b)
	if err := g.wait(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("two streams, done ctx: got %v, want context.Canceled", err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancelShort()
	if err := g.wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("two streams, deadline: got %v, want context.DeadlineExceeded", err)
	}

	// Emptied: a waiter returns once the last stream is removed.
	done := waitResult(&g, context.Background())
	removeA()
	removeA() // removing twice changes nothing
	select {
	case err := <-done:
		t.Fatalf("one stream open: wait returned %v, want it to block", err)
	default:
	}
	removeB()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("emptied: got %v, want nil", err)
		}
	case <-time.After(relayWait):
		t.Fatal("emptied: wait did not return")
	}
	removeB()
	if err := g.wait(cancelled); err != nil {
		t.Fatalf("emptied, done ctx: got %v, want nil", err)
	}

	// Busy again: the signal is re-armed.
	removeC := g.add(&stream{})
	if err := g.wait(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("busy again, done ctx: got %v, want context.Canceled", err)
	}
	done = waitResult(&g, context.Background())
	removeC()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("emptied again: got %v, want nil", err)
		}
	case <-time.After(relayWait):
		t.Fatal("emptied again: wait did not return")
	}
	if n := g.len(); n != 0 {
		t.Errorf("got %d streams, want 0", n)
	}
}

// TestProxyWait: Wait blocks while a stream relays, returns ctx's error
// when that ends first, and nil once the stream ended, without closing
// anything itself.
func TestProxyWait(t *testing.T) {
	b, e, c := openStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with a stream open: got %v, want context.DeadlineExceeded", err)
	}
	testutil.EchoRoundTrip(t, c, websocket.BinaryMessage, []byte("still relaying")) // Wait closed nothing

	done := make(chan error, 1)
	go func() { done <- e.Wait(context.Background()) }()
	if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(relayWait)); err != nil {
		t.Fatalf("write close: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait after the stream closed: got %v, want nil", err)
		}
	case <-time.After(relayWait):
		t.Fatalf("Wait did not return after the stream closed (%d open)", e.Streams())
	}
	if n := e.Streams(); n != 0 {
		t.Errorf("got %d streams after Wait, want 0", n)
	}
	select {
	case err := <-b.ends:
		if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Errorf("upstream: got %v, want the client's close 1000", err)
		}
	case <-time.After(relayWait):
		t.Error("upstream connection still open after Wait")
	}
}
