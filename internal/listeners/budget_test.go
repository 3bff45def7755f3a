package listeners

import (
	"net"
	"testing"
	"time"
)

// serveAll accepts on l until it is closed, sending every connection on
// the returned channel.
func serveAll(t *testing.T, l net.Listener) <-chan net.Conn {
	t.Helper()
	ch := make(chan net.Conn, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return ch
}

// next returns the next accepted connection, or nil when none comes
// within wait.
func next(ch <-chan net.Conn, wait time.Duration) net.Conn {
	select {
	case c := <-ch:
		return c
	case <-time.After(wait):
		return nil
	}
}

// TestCapAndBudget checks that a socket at its cap stops accepting, and
// every socket does when the budget is spent; the connections wait in
// the backlog and are accepted, in turn, as slots free.
func TestCapAndBudget(t *testing.T) {
	ss := NewSet(Options{})
	defer ss.CloseAll()
	text, _, err := ss.Open("gateway_text", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	edge, _, err := ss.Open("https", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	text.SetCap(2)
	ss.SetBudget(3)
	texts, edges := serveAll(t, text.Listener()), serveAll(t, edge.Listener())

	for range 4 { // a flood of the text port: two are accepted, two wait
		dial(t, text.Addr())
	}
	a, b := next(texts, 5*time.Second), next(texts, 5*time.Second)
	if a == nil || b == nil {
		t.Fatal("the text socket did not accept up to its cap")
	}
	if c := next(texts, 200*time.Millisecond); c != nil {
		t.Fatal("the text socket accepted past its cap")
	}
	if st := text.Stats(); !st.Paused || st.Pauses != 1 || st.Active != 2 || st.Cap != 2 {
		t.Errorf("text stats %+v: want paused once, 2 open, cap 2", st)
	}

	dial(t, edge.Addr()) // the edge still has the budget's third slot ...
	if next(edges, 5*time.Second) == nil {
		t.Fatal("the edge did not accept within the budget")
	}
	dial(t, edge.Addr()) // ... but not a fourth
	if c := next(edges, 200*time.Millisecond); c != nil {
		t.Fatal("the edge accepted past the budget")
	}
	if limit, open := ss.Budget(); limit != 3 || open != 3 {
		t.Errorf("Budget() = %d, %d; want 3, 3", limit, open)
	}

	a.Close() // a slot frees: one waiting connection is accepted, text's or the edge's
	first := 0
	for _, ch := range []<-chan net.Conn{texts, edges} {
		if next(ch, 500*time.Millisecond) != nil {
			first++
		}
	}
	if first != 1 {
		t.Errorf("after one close %d waiting connections were accepted, want 1", first)
	}
	// Without the budget only the text socket's cap is left: it holds
	// two (b and one of the waiting), and the edge takes its second.
	ss.SetBudget(0)
	deadline := time.Now().Add(5 * time.Second)
	for (text.Stats().Active != 2 || edge.Stats().Active != 2) && time.Now().Before(deadline) {
		select {
		case <-texts:
		case <-edges:
		case <-time.After(10 * time.Millisecond):
		}
	}
	if ta, ea := text.Stats().Active, edge.Stats().Active; ta != 2 || ea != 2 {
		t.Errorf("without the budget: text holds %d, edge %d; want 2 and 2", ta, ea)
	}
	if c := next(texts, 200*time.Millisecond); c != nil {
		t.Error("the text socket accepted past its cap once the budget was gone")
	}
}
