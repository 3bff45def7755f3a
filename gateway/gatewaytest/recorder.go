package gatewaytest

import (
	"sync"
	"testing"
	"time"

	"github.com/wssgate/wssgate/gateway"
)

// eventWait bounds [Recorder.Wait].
const eventWait = 5 * time.Second

// Recorder is a gateway.Handler that records the hub's events, for tests
// to read and wait on. Its zero value is ready to use; embed it in a
// handler to record while doing something else.
type Recorder struct {
	mu       sync.Mutex
	connects []string
	ws       map[string]*gateway.WebSocketRequest
	messages []string // "id: data"
	closes   []gateway.ClientInfo
	changed  chan struct{} // closed and replaced at every event; nil until a Wait
}

// note runs f under the lock and wakes every Wait.
func (r *Recorder) note(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// OnConnect records c's id.
func (r *Recorder) OnConnect(c gateway.ClientInfo) {
	r.note(func() { r.connects = append(r.connects, c.ID) })
}

// OnWebSocketConnect records req under c's id.
func (r *Recorder) OnWebSocketConnect(c gateway.ClientInfo, req *gateway.WebSocketRequest) {
	r.note(func() {
		if r.ws == nil {
			r.ws = make(map[string]*gateway.WebSocketRequest)
		}
		r.ws[c.ID] = req
	})
}

// OnMessage records "id: data".
func (r *Recorder) OnMessage(c gateway.ClientInfo, data []byte) {
	r.note(func() { r.messages = append(r.messages, c.ID+": "+string(data)) })
}

// OnClose records c.
func (r *Recorder) OnClose(c gateway.ClientInfo) {
	r.note(func() { r.closes = append(r.closes, c) })
}

// Connects returns the ids of the clients connected so far, in order.
func (r *Recorder) Connects() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.connects...)
}

// WebSocketRequest returns what OnWebSocketConnect got for client id;
// nil if it has not run for it.
func (r *Recorder) WebSocketRequest(id string) *gateway.WebSocketRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ws[id]
}

// Messages returns the messages received so far, in order, each as
// "client_id: data".
func (r *Recorder) Messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.messages...)
}

// Closes returns what OnClose got so far, in order.
func (r *Recorder) Closes() []gateway.ClientInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gateway.ClientInfo(nil), r.closes...)
}

// Closed reports whether OnClose has run for client id.
func (r *Recorder) Closed(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.closes {
		if c.ID == id {
			return true
		}
	}
	return false
}

// Wait returns once cond holds, checking it at once and after each
// event; it fails the test if cond does not hold within 5s. cond reads
// the recorder (through its methods, not holding its lock), so it
// changes only with an event; for other state use testutil.WaitFor.
// what names the awaited state in the failure.
func (r *Recorder) Wait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	timeout := time.NewTimer(eventWait)
	defer timeout.Stop()
	for {
		r.mu.Lock()
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()
		// An event after this check closes changed, so none is missed.
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("timed out after %v waiting for %s", eventWait, what)
		}
	}
}

// WaitConnects waits until at least n clients have connected and
// returns their ids, in order.
func (r *Recorder) WaitConnects(t testing.TB, n int) []string {
	t.Helper()
	var ids []string
	r.Wait(t, "connects", func() bool { ids = r.Connects(); return len(ids) >= n })
	return ids
}

// WaitCloses waits until OnClose has run at least n times and returns
// what it got, in order.
func (r *Recorder) WaitCloses(t testing.TB, n int) []gateway.ClientInfo {
	t.Helper()
	var cs []gateway.ClientInfo
	r.Wait(t, "closes", func() bool { cs = r.Closes(); return len(cs) >= n })
	return cs
}
