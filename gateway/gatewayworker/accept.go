package gatewayworker

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// acceptRetry is how long serveConns waits after a timeout from Accept.
const acceptRetry = 5 * time.Millisecond

// serveConns accepts connections on ln until ctx is done or ln fails,
// serving each with serve on a goroutine of its own, under a context
// that ends with ctx or when serveConns returns. extra, if not nil,
// runs on one more goroutine under that context. Before it returns,
// serveConns closes ln and waits for every goroutine it started; it
// returns nil when ctx ended it or ln was closed, else the Accept error.
func serveConns(ctx context.Context, ln net.Listener, serve func(context.Context, net.Conn), extra func(context.Context)) error {
	var wg sync.WaitGroup
	connCtx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		ln.Close()
		wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	if extra != nil {
		wg.Go(func() { extra(connCtx) })
	}
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(acceptRetry)
				continue
			}
			return err
		}
		wg.Go(func() { serve(connCtx, nc) })
	}
}
