package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/listeners"
	"github.com/wssgate/wssgate/tlsconf"
)

// reloadState is the outcome of the reloads so far, for status and for
// `wssgate reload`, which waits for it to change.
type reloadState struct {
	mu         sync.Mutex
	generation int       // successful reloads
	attempts   int       // reloads tried
	began      time.Time // when the last attempt began
	time       time.Time // when it ended
	ok         bool      // whether the last attempt applied
	problems   []string  // why the last attempt did not
}

// Reload reads the configuration again and applies it: new sites,
// routes, upstreams, limits, certificates and listener addresses take
// effect for new connections, and every open connection is left as it
// is. It is all or nothing: when anything is wrong, the running
// configuration stays and the problems are returned, each naming file,
// line and key where it can.
func (s *Server) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	began := time.Now()
	err := s.reloadLocked()
	r := &s.reloads
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	r.began, r.time, r.ok, r.problems = began, time.Now(), err == nil, nil
	if err == nil {
		r.generation++
		s.log.Info("configuration reloaded", "generation", r.generation, "took", time.Since(began).Round(time.Microsecond))
		notifySystemd(s.log, "READY=1")
	}
	for _, e := range config.Errors(err) {
		r.problems = append(r.problems, e.Error())
	}
	return err
}

func (s *Server) reloadLocked() error {
	if s.draining.Load() {
		return fmt.Errorf("reload refused: %w", ErrNotServing)
	}
	if s.handingOver() {
		return errors.New("reload refused: a new binary is starting (wssgate upgrade); reload it once it serves")
	}
	if s.opts.Load == nil {
		return errors.New("reload: this server was not started from a configuration it can read again")
	}
	cfg, err := s.opts.Load()
	if err != nil {
		return err
	}
	old := s.cfg.Load()
	if warn := cfg.ApplyOpenFileLimit(config.OpenFileLimit()); warn != nil {
		s.log.Warn(warn.Error())
	}
	if err := errors.Join(config.RestartRequired(old, cfg), cfg.CheckSecrets()); err != nil {
		return err
	}
	specs, err := s.endpointSpecs(cfg)
	if err != nil {
		return cfg.Positioned(err)
	}
	opened, err := s.openSockets(cfg, specs)
	if err != nil {
		return err
	}
	undo := func() {
		for _, o := range opened {
			s.sockets.Remove(o)
		}
	}
	routes, err := s.proxy.Prepare(cfg)
	if err != nil {
		undo()
		return cfg.Positioned(err)
	}
	certs, err := s.certs.Prepare(cfg)
	if err != nil {
		undo()
		return upgradeHint(cfg, err)
	}

	// Applied from here on; nothing below fails.
	certs()
	routes.Commit()
	s.applyCaps(cfg, specs)
	keep, names := map[string]bool{}, map[config.Listener]bool{}
	for _, sp := range specs {
		keep[listeners.ID(string(sp.name), sp.addr)], names[sp.name] = true, true
		prev := s.endpoints[sp.name]
		if prev != nil && prev.addr == sp.addr && prev.settings == sp.settings {
			continue
		}
		s.startEndpoint(sp) // accepting before the previous endpoint stops
		if prev != nil {
			s.retire(prev, cfg)
		}
	}
	for name, e := range s.endpoints {
		if !names[name] {
			delete(s.endpoints, name)
			s.retire(e, cfg)
		}
	}
	s.sockets.Keep(keep)
	setLevel(s.opts.Level, cfg.Log)
	if cfg.PIDFile != old.PIDFile {
		removePIDFile(old.PIDFile)
		if err := writePIDFile(cfg.PIDFile); err != nil {
			s.log.Error("writing the PID file failed", "pid_file", cfg.PIDFile, "err", err)
		}
	}
	s.cfg.Store(cfg)
	return nil
}

// retire stops an endpoint a reload replaced: it accepts no more, and
// its requests in flight get drain_timeout (at least shutdown_timeout)
// to finish, or less if the server stops meanwhile.
func (s *Server) retire(e *endpoint, cfg *config.Config) {
	e.stopping.Store(true)
	grace := max(cfg.Drain(), cfg.ShutdownTimeout)
	s.retiring.add(e, func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		e.stop(ctx)
	})
}

// retiring tracks the endpoints a reload replaced until they have
// stopped.
type retiring struct {
	mu        sync.Mutex
	endpoints map[*endpoint]bool
	wg        sync.WaitGroup
}

// add runs stop for e on a goroutine of its own, keeping e listed until
// stop returns.
func (r *retiring) add(e *endpoint, stop func()) {
	r.mu.Lock()
	if r.endpoints == nil {
		r.endpoints = map[*endpoint]bool{}
	}
	r.endpoints[e] = true
	r.mu.Unlock()
	r.wg.Go(func() {
		stop()
		r.mu.Lock()
		delete(r.endpoints, e)
		r.mu.Unlock()
	})
}

// list returns the endpoints still stopping.
func (r *retiring) list() []*endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Collect(maps.Keys(r.endpoints))
}

// wait waits until every retiring endpoint has stopped.
func (r *retiring) wait() { r.wg.Wait() }

// upgradeHint returns the problems joined in err, positioned, each that
// only a binary upgrade can apply saying so.
func upgradeHint(cfg *config.Config, err error) error {
	var out []error
	for _, e := range config.Errors(err) {
		p := cfg.Positioned(e)
		if errors.Is(e, tlsconf.ErrRestartRequired) {
			if ce, ok := p.(*config.Error); ok {
				hinted := *ce
				hinted.Msg += "; apply it with wssgate upgrade"
				p = &hinted
			} else {
				p = fmt.Errorf("%w; apply it with wssgate upgrade", p)
			}
		}
		out = append(out, p)
	}
	return errors.Join(out...)
}
