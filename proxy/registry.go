package proxy

import (
	"context"
	"sync"
)

// registry tracks the WebSocket streams being relayed, so that a shutdown
// can close them and a drain can wait for them: http.Server.Shutdown
// neither closes nor waits for hijacked connections. The zero value is an
// empty registry, ready to use.
//
// A stream is registered by the goroutine that runs it (see
// serveWebSocket), which removes it as the very last thing it does: a
// registry that is empty has no stream goroutine left doing work.
type registry struct {
	mu       sync.Mutex
	streams  map[*stream]struct{}
	stopping bool
	// idle is closed while no stream is open. It is nil until a waiter
	// asks for it; the first stream to open after it was closed drops it,
	// and the next waiter makes a new one. So it is nil, or closed exactly
	// when streams is empty.
	idle chan struct{}
}

// add registers s and returns the function that removes it. A stream
// added while the registry is shutting down is told to go away at once.
func (g *registry) add(s *stream) (remove func()) {
	g.mu.Lock()
	if g.streams == nil {
		g.streams = map[*stream]struct{}{}
	}
	if len(g.streams) == 0 {
		g.idle = nil // closed, if a waiter made it: no longer true
	}
	g.streams[s] = struct{}{}
	stopping := g.stopping
	g.mu.Unlock()
	if stopping {
		s.goAway(1001, "server shutting down")
	}
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if _, ok := g.streams[s]; !ok {
			return
		}
		delete(g.streams, s)
		if len(g.streams) == 0 && g.idle != nil {
			close(g.idle)
		}
	}
}

// idleChan returns a channel that is closed once no stream is open: at
// once, when none is now.
func (g *registry) idleChan() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.idle == nil {
		g.idle = make(chan struct{})
		if len(g.streams) == 0 {
			close(g.idle)
		}
	}
	return g.idle
}

// wait returns nil once no stream is open, or ctx.Err() if ctx ends
// first. An empty registry wins over a done ctx.
func (g *registry) wait(ctx context.Context) error {
	idle := g.idleChan()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	select {
	case <-idle:
		return nil
	default:
		return ctx.Err()
	}
}

func (g *registry) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.streams)
}

func (g *registry) closing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stopping
}

// snapshot returns the streams open now; the caller acts on them without
// holding the lock.
func (g *registry) snapshot() []*stream {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*stream, 0, len(g.streams))
	for s := range g.streams {
		out = append(out, s)
	}
	return out
}

// shutdown tells every stream to go away with code and reason, waits for
// them to end until ctx is done, then aborts the rest and waits for them
// to unwind. It is idempotent.
func (g *registry) shutdown(ctx context.Context, code uint16, reason string) error {
	g.mu.Lock()
	g.stopping = true // streams added from now on go away by themselves
	g.mu.Unlock()

	for _, s := range g.snapshot() {
		s.goAway(code, reason)
	}
	err := g.wait(ctx)
	if err == nil {
		return nil
	}
	for _, s := range g.snapshot() {
		s.abort()
	}
	// abort closes both conns, so every relay returns promptly; a stream
	// added since went away by itself, within its CloseTimeout.
	<-g.idleChan()
	return err
}
