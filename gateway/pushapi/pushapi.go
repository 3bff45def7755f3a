package pushapi

import (
	"context"

	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/internal/bearer"
	"github.com/wssgate/wssgate/internal/httpserve"
)

// Options configure a Server.
type Options struct {
	// Secret is the bearer token every request must carry. It is
	// required; leading or trailing white space is refused, as it is
	// almost always the newline at the end of a secret file.
	Secret string
	// MaxBodyBytes bounds a request body; a longer one is answered 413.
	// Zero means 1 MiB.
	MaxBodyBytes int64
	// Logger receives each call at Debug and each failure at Info. Nil
	// discards them.
	Logger *slog.Logger
}

// DefaultMaxBodyBytes is the body limit when Options.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 1 << 20

// maxBatch bounds the calls of one batch request.
const maxBatch = 1000

// Validate reports every problem with o, joined.
func (o Options) Validate() error {
	var errs []error
	if o.Secret == "" {
		errs = append(errs, errors.New("pushapi: secret is required"))
	} else if strings.TrimSpace(o.Secret) != o.Secret {
		errs = append(errs, errors.New("pushapi: secret has leading or trailing white space"))
	}
	if o.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("pushapi: max body bytes is negative"))
	}
	return errors.Join(errs...)
}

// Stats are a Server's counters since it was created.
type Stats struct {
	Calls        int64 // API calls run or refused after authentication; each call of a batch counts
	Failed       int64 // calls answered with an error status
	Unauthorized int64 // requests refused with 401
}

// Server is the push API's http.Handler. Create it with [New]; its
// methods are safe for concurrent use.
type Server struct {
	hub      *gateway.Hub
	secret   bearer.Token // the secret itself is not kept
	guard    *bearer.Guard
	maxBytes int64
	log      *slog.Logger
	known    map[string]bool

	calls        atomic.Int64
	failed       atomic.Int64
	unauthorized atomic.Int64
}

// New returns a Server pushing through hub. It fails when hub is nil or
// opts does not validate.
func New(hub *gateway.Hub, opts Options) (*Server, error) {
	err := opts.Validate()
	if hub == nil {
		err = errors.Join(errors.New("pushapi: hub is nil"), err)
	}
	if err != nil {
		return nil, err
	}
	s := &Server{
		hub:      hub,
		secret:   bearer.New(opts.Secret),
		maxBytes: opts.MaxBodyBytes,
		log:      opts.Logger,
		known:    make(map[string]bool),
	}
	if s.maxBytes == 0 {
		s.maxBytes = DefaultMaxBodyBytes
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "pushapi")
	s.guard = bearer.NewGuard(s.log)
	for _, m := range gateway.Methods() {
		s.known[m] = true
	}
	return s, nil
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Calls:        s.calls.Load(),
		Failed:       s.failed.Load(),
		Unauthorized: s.unauthorized.Load(),
	}
}

// Timeouts of the http.Server that Serve runs. Calls never wait on a
// client socket, so a request is quick once its body has arrived.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownGrace     = 5 * time.Second
)

// Serve serves the push API on ln until ctx is done, then lets requests
// in flight finish for up to 5 seconds and returns. It closes ln. It
// returns nil after ctx is done, or the error that stopped the server.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelInfo),
	}
	return httpserve.Serve(ctx, srv, ln, shutdownGrace)
}
