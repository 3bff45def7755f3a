package proxy

import (
	"context"
	"sync"
)

// registry tracks the WebSocket streams being relayed, so that a shutdown
// can close them: http.Server.Shutdown neither closes nor waits for
// hijacked connections.
type registry struct {
	mu       sync.Mutex
	streams  map[*stream]struct{}
	stopping bool
	empty    chan struct{} // closed when stopping and no stream is left
}

// add registers s and returns the function that removes it. A stream
// added while the registry is shutting down is told to go away at once.
func (g *registry) add(s *stream) (remove func()) {
	g.mu.Lock()
	if g.streams == nil {
		g.streams = map[*stream]struct{}{}
	}
	g.streams[s] = struct{}{}
	stopping := g.stopping
	g.mu.Unlock()
	if stopping {
		s.goAway(1001, "server shutting down")
	}
	return func() {
		g.mu.Lock()
		delete(g.streams, s)
		if g.stopping && len(g.streams) == 0 && g.empty != nil {
			select {
			case <-g.empty:
			default:
				close(g.empty)
			}
		}
		g.mu.Unlock()
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
	if !g.stopping {
		g.stopping = true
		g.empty = make(chan struct{})
		if len(g.streams) == 0 {
			close(g.empty)
		}
	}
	empty := g.empty
	g.mu.Unlock()

	for _, s := range g.snapshot() {
		s.goAway(code, reason)
	}
	select {
	case <-empty:
		return nil
	case <-ctx.Done():
	}
	for _, s := range g.snapshot() {
		s.abort()
	}
	<-empty // abort closes both conns, so every relay returns promptly
	return ctx.Err()
}
