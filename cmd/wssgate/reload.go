package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wssgate/wssgate/config"
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

// reload reads the configuration again and applies it: new sites,
// routes, upstreams, limits, certificates and listener addresses take
// effect for new connections, and every open connection is left as it
// is. It is all or nothing: when anything is wrong, the running
// configuration stays and the problems are returned, each naming file,
// line and key where it can.
func (s *server) reload() error {
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

func (s *server) reloadLocked() error {
	if s.draining.Load() {
		return errors.New("reload refused: the server is stopping, or draining after an upgrade")
	}
	if s.upgrading() {
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
	setMaxConnections(cfg, openFileLimit(), s.log)
	if err := errors.Join(restartRequired(old, cfg), secretProblems(cfg)); err != nil {
		return err
	}
	specs, err := s.frontSpecs(cfg)
	if err != nil {
		return positioned(cfg, err)
	}
	opened, err := s.openSockets(cfg, specs)
	if err != nil {
		return err
	}
	undo := func() {
		for _, o := range opened {
			s.sockets.remove(o)
		}
	}
	routes, err := s.proxy.Prepare(cfg)
	if err != nil {
		undo()
		return positioned(cfg, err)
	}
	certs, err := s.certs.Prepare(cfg)
	if err != nil {
		undo()
		return positioned(cfg, upgradeHint(err))
	}

	// Applied from here on; nothing below fails.
	certs()
	routes.Commit()
	keep, names := map[string]bool{}, map[string]bool{}
	for _, sp := range specs {
		keep[socketKey(sp.name, sp.addr)], names[sp.name] = true, true
		prev := s.fronts[sp.name]
		if prev != nil && prev.addr == sp.addr && prev.key == sp.key {
			continue
		}
		s.startFront(sp) // accepting before the previous front stops
		if prev != nil {
			s.retire(prev, cfg)
		}
	}
	for name, f := range s.fronts {
		if !names[name] {
			delete(s.fronts, name)
			s.retire(f, cfg)
		}
	}
	s.sockets.drop(keep)
	setLevel(s.opts.Level, cfg.Log)
	if cfg.PIDFile != old.PIDFile {
		s.removePIDFile(old)
		if err := writePIDFile(cfg.PIDFile); err != nil {
			s.log.Error("writing the PID file failed", "pid_file", cfg.PIDFile, "err", err)
		}
	}
	s.cfg.Store(cfg)
	return nil
}

// retire stops a front a reload replaced: it accepts no more, and its
// requests in flight get drain_timeout (at least shutdown_timeout) to
// finish, or less if the server stops meanwhile.
func (s *server) retire(f *front, cfg *config.Config) {
	f.stopping.Store(true)
	grace := max(cfg.Drain(), cfg.ShutdownTimeout)
	s.retiring.add(f, func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		f.stopFront(ctx)
	})
}

// retiring tracks the fronts a reload replaced until they have stopped.
type retiring struct {
	mu     sync.Mutex
	fronts map[*front]bool
	wg     sync.WaitGroup
}

// add runs stop for f on a goroutine of its own, keeping f listed until
// stop returns.
func (r *retiring) add(f *front, stop func()) {
	r.mu.Lock()
	if r.fronts == nil {
		r.fronts = map[*front]bool{}
	}
	r.fronts[f] = true
	r.mu.Unlock()
	r.wg.Go(func() {
		stop()
		r.mu.Lock()
		delete(r.fronts, f)
		r.mu.Unlock()
	})
}

// list returns the fronts still stopping.
func (r *retiring) list() []*front {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Collect(maps.Keys(r.fronts))
}

// wait waits until every retiring front has stopped.
func (r *retiring) wait() { r.wg.Wait() }

// upgradeHint tells how to apply the changes a reload cannot.
func upgradeHint(err error) error {
	if errors.Is(err, tlsconf.ErrRestartRequired) {
		return fmt.Errorf("%w; apply it with wssgate upgrade", err)
	}
	return err
}

// restartRequired returns a problem for each changed key that a reload
// cannot apply without touching open connections or process-wide state:
// tls.min_version and ACME settings or hosts (the TLS stack and the ACME
// client are built once), the log format and access log, turning the
// gateway on or off, and the hub's own settings (heartbeats, queues,
// node, events), which every connected client was set up with. Listener
// addresses and the push API secret can change.
func restartRequired(old, cfg *config.Config) error {
	var errs []error
	add := func(key, what string) {
		e := &config.Error{Key: key, Msg: what + "; a reload cannot apply it: run wssgate upgrade (open connections stay on the old process until they end)"}
		if cfg.Source != nil {
			e.File, e.Line = cfg.Source.File, cfg.Source.Line(key)
		}
		errs = append(errs, e)
	}
	if old.TLS.MinVersion != cfg.TLS.MinVersion {
		add("tls.min_version", fmt.Sprintf("changed from %q to %q", old.TLS.MinVersion, cfg.TLS.MinVersion))
	}
	if (old.UsesACME() || cfg.UsesACME()) && old.TLS.ACME != cfg.TLS.ACME {
		for _, key := range changedKeys("tls.acme", old.TLS.ACME, cfg.TLS.ACME) {
			add(key, "changed")
		}
	}
	had := acmeHosts(old)
	for i, site := range cfg.Sites {
		for _, h := range site.Hosts {
			if site.TLS.ACME && !had[strings.ToLower(h)] {
				add(fmt.Sprintf("sites[%d].tls.acme", i), fmt.Sprintf("host %s is new to ACME", h))
				break
			}
		}
	}
	if old.Log.Format != cfg.Log.Format {
		add("log.format", fmt.Sprintf("changed from %q to %q", old.Log.Format, cfg.Log.Format))
	}
	if old.Log.AccessEnabled() != cfg.Log.AccessEnabled() {
		add("log.access", "changed")
	}
	if old.Log.AccessFile != cfg.Log.AccessFile {
		add("log.access_file", fmt.Sprintf("changed from %q to %q", old.Log.AccessFile, cfg.Log.AccessFile))
	}
	switch {
	case old.UsesGateway() != cfg.UsesGateway():
		add("gateway", "the bundled gateway is turned on or off")
	case cfg.UsesGateway():
		for _, key := range changedKeys("gateway", hubSettings(old.Gateway), hubSettings(cfg.Gateway)) {
			add(key, "changed")
		}
	}
	return errors.Join(errs...)
}

// acmeHosts is the set of hosts of cfg's ACME sites, lower-cased.
func acmeHosts(cfg *config.Config) map[string]bool {
	hosts := map[string]bool{}
	for _, site := range cfg.Sites {
		if site.TLS.ACME {
			for _, h := range site.Hosts {
				hosts[strings.ToLower(h)] = true
			}
		}
	}
	return hosts
}

// hubSettings is g without the keys a reload applies.
func hubSettings(g config.Gateway) config.Gateway {
	g.TextListen, g.WebSocketListen = "", ""
	g.PushAPI = config.PushAPI{}
	return g
}

// changedKeys lists the keys (by their YAML names, under prefix) whose
// values differ between the structs a and b.
func changedKeys(prefix string, a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		f := va.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + "." + name
		fa, fb := va.Field(i), vb.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
			out = append(out, changedKeys(key, fa.Interface(), fb.Interface())...)
			continue
		}
		if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			out = append(out, key)
		}
	}
	return out
}
