package admin

import (
	"context"

	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wssgate/wssgate/internal/bearer"
	"github.com/wssgate/wssgate/internal/httpserve"
	"github.com/wssgate/wssgate/status"
)

// DefaultAddr is the admin listener's default address: loopback only.
const DefaultAddr = "127.0.0.1:9180"

// DefaultSampleInterval is how often Run samples when
// Options.SampleInterval is zero.
const DefaultSampleInterval = 10 * time.Second

// Options configure a Server.
type Options struct {
	// Snapshot returns the process's state now. It is required, is
	// called for every /status and /metrics request and on every sample
	// from Run, and must be safe for concurrent use. When it leaves
	// Snapshot.Time zero, the server sets it to the time of the call.
	// Its QPS fields are ignored: the server fills them.
	Snapshot func() status.Snapshot
	// Ready reports whether the process wants new traffic; /readyz
	// answers 503 while it returns false (while draining after an
	// upgrade, or shutting down). Nil means ready whenever the server
	// answers.
	Ready func() bool
	// Token is the bearer token every request must carry. Empty means
	// none, and then the server may only listen on loopback (see
	// CheckBind). Leading or trailing white space is refused, as it is
	// almost always the newline at the end of a token file.
	Token string
	// Pprof serves net/http/pprof under /debug/pprof/. False, the
	// default, answers 404 there. Profiles name the program's functions
	// and cost CPU while they run: enable it with care.
	Pprof bool
	// Logger receives failures at Warn and refused requests at Info.
	// Nil discards them.
	Logger *slog.Logger
	// SampleInterval is how often Run takes a snapshot to measure QPS.
	// Zero means DefaultSampleInterval.
	SampleInterval time.Duration
}

// Validate reports every problem with o, joined.
func (o Options) Validate() error {
	var errs []error
	if o.Snapshot == nil {
		errs = append(errs, errors.New("admin: snapshot function is required"))
	}
	if strings.TrimSpace(o.Token) != o.Token {
		errs = append(errs, errors.New("admin: token has leading or trailing white space"))
	}
	if o.SampleInterval < 0 {
		errs = append(errs, fmt.Errorf("admin: sample interval %v is negative", o.SampleInterval))
	}
	return errors.Join(errs...)
}

// Server is the admin http.Handler. Create it with [New]; sample rates
// with [Server.Run], or serve and sample with [Server.Serve]. Its
// methods are safe for concurrent use.
type Server struct {
	snapshot func() status.Snapshot
	ready    func() bool
	auth     bool
	token    bearer.Token // the token itself is not kept
	guard    *bearer.Guard
	pprof    bool
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time
	sampler  status.Sampler
	mux      *http.ServeMux
}

// New returns a Server with opts' zero fields set to their defaults. It
// fails when opts does not validate.
func New(opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		snapshot: opts.Snapshot,
		ready:    opts.Ready,
		auth:     opts.Token != "",
		token:    bearer.New(opts.Token),
		pprof:    opts.Pprof,
		interval: opts.SampleInterval,
		log:      opts.Logger,
		now:      time.Now,
		mux:      http.NewServeMux(),
	}
	if s.interval == 0 {
		s.interval = DefaultSampleInterval
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "admin")
	s.guard = bearer.NewGuard(s.log)

	reg := prometheus.NewRegistry()
	if err := errors.Join(
		reg.Register(status.NewCollector(s.current)),
		reg.Register(collectors.NewGoCollector()),
		reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
		reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "wssgate_admin_unauthorized_total",
			Help: "Admin requests refused for a missing or wrong token."}, func() float64 { return float64(s.guard.Failures()) })),
	); err != nil {
		return nil, fmt.Errorf("admin: metrics registry: %w", err)
	}
	s.mux.HandleFunc("/status", s.serveStatus)
	s.mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	s.mux.HandleFunc("/readyz", s.serveReady)
	if s.pprof {
		s.mux.HandleFunc("/debug/pprof/", pprof.Index) // and every named profile under it
		s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return s, nil
}

// ServeHTTP authenticates r, refuses methods other than GET and HEAD,
// and answers it from the endpoint its path names.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.auth && !s.token.Authorized(r) {
		s.guard.Refuse(r) // logs once a minute per source, slows down repeated failures
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeText(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeText(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Run samples a snapshot now and then every SampleInterval until ctx
// is done, so that /status reports the QPS of the last interval; it
// returns nil then. Without Run, QPS stays 0 and qps_interval empty.
// Call it once per Server; Serve calls it itself.
func (s *Server) Run(ctx context.Context) error {
	s.sampler.Observe(s.current())
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.sampler.Observe(s.current())
		}
	}
}

// Timeouts of the http.Server that Serve runs. Answers are built in
// memory, so requests are quick once their headers have arrived; only a
// CPU profile or an execution trace, which last as long as their
// seconds parameter asks, need the longer pprofWriteTimeout.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	pprofWriteTimeout = 5 * time.Minute
	idleTimeout       = 2 * time.Minute
	shutdownGrace     = 5 * time.Second
)

// Serve serves on ln and runs the sampler ([Server.Run]) until ctx is
// done, then lets requests in flight finish for up to 5 seconds and
// returns nil; or it returns the error that stopped the server. It
// closes ln. Without a token it refuses, with an error wrapping
// ErrNeedsToken, a TCP listener that is not on a loopback address.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !s.auth {
		if err := CheckBind(tcp.String(), ""); err != nil {
			ln.Close()
			return err
		}
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelInfo),
	}
	if s.pprof {
		srv.WriteTimeout = pprofWriteTimeout
	}
	runCtx, stopRun := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(runCtx) })
	defer wg.Wait()
	defer stopRun()

	if err := httpserve.Serve(ctx, srv, ln, shutdownGrace); err != nil {
		return fmt.Errorf("admin: serve: %w", err)
	}
	return nil
}

// current returns a snapshot with its time set.
func (s *Server) current() status.Snapshot {
	snap := s.snapshot()
	if snap.Time.IsZero() {
		snap.Time = s.now()
	}
	return snap
}

// serveStatus answers the current snapshot with the last interval's
// rates, as indented JSON.
func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	b, err := json.MarshalIndent(s.sampler.Fill(s.current()), "", "  ")
	if err != nil {
		s.log.Warn("encode status", "err", err)
		writeText(w, http.StatusInternalServerError, "cannot encode the status")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

// serveReady answers 200 while the process is ready, else 503.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	if s.ready != nil && !s.ready() {
		writeText(w, http.StatusServiceUnavailable, "not ready")
		return
	}
	writeText(w, http.StatusOK, "ready")
}

// writeText answers code with one line of plain text.
func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, text)
}
