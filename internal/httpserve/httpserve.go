// Package httpserve runs an http.Server for as long as a context lives.
package httpserve

import (
	"context"
	"net"
	"net/http"
	"time"
)

// Serve serves srv on ln until ctx is done, then shuts srv down, letting
// requests in flight finish for up to grace before it closes them, and
// returns nil. If srv stops first (ln failed), it returns that error.
// It closes ln either way.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration) error {
	stopped := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(stopped)
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	})
	err := srv.Serve(ln)
	if !stop() {
		<-stopped // ctx ended: wait for Shutdown
		return nil
	}
	return err
}
