package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudflare/tableflip"
	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/wssgate/wssgate/config"
)

// upgradeState is the outcome of the last binary upgrade this process
// tried, for status and for `wssgate upgrade`.
type upgradeState struct {
	mu         sync.Mutex
	inProgress bool
	attempts   int
	time       time.Time
	err        string // "" when the last attempt worked or none was made
}

// processSockets returns the upgrader that opens the process's sockets
// (inheriting them from the parent after an upgrade) and the sockets
// systemd passed by socket activation. Without tableflip (an OS it does
// not support) there are no upgrades.
func processSockets(log *slog.Logger) (upgrader, []net.Listener) {
	var systemd []net.Listener
	if os.Getenv("LISTEN_FDS") != "" {
		lns, err := activation.Listeners() // also unsets LISTEN_*, which a new binary must not see
		if err != nil {
			log.Warn("socket activation: could not use the sockets systemd passed", "err", err)
		}
		for _, ln := range lns {
			if ln != nil {
				systemd = append(systemd, ln)
			}
		}
	}
	upg, err := tableflip.New(tableflip.Options{})
	if err != nil {
		log.Debug("binary upgrades are off in this process", "err", err)
		return nil, systemd
	}
	return tableflipUpgrader{upg}, systemd
}

// tableflipUpgrader adapts tableflip.Upgrader to upgrader.
type tableflipUpgrader struct{ *tableflip.Upgrader }

// Listen returns the socket the previous process handed over under key,
// or opens one on addr and registers it under key for the next.
func (u tableflipUpgrader) Listen(key, addr string) (net.Listener, error) {
	return u.ListenWithCallback("tcp", key, func(network, _ string) (net.Listener, error) {
		return net.Listen(network, addr)
	})
}

// adopt registers a socket-activated listener under its configured
// address, so that an upgrade hands it on.
func (u tableflipUpgrader) adopt(key string, ln net.Listener) error {
	tl, ok := ln.(tableflip.Listener)
	if !ok {
		return fmt.Errorf("%T cannot be handed over", ln)
	}
	return u.AddListener("tcp", key, tl)
}

// ready tells the parent of an upgrade, systemd and the PID file that
// this process serves.
func (s *server) ready() error {
	var errs []error
	if u := s.opts.Upgrader; u != nil {
		if err := u.Ready(); err != nil {
			errs = append(errs, fmt.Errorf("upgrade: %w", err))
		}
	}
	if err := writePIDFile(s.cfg.Load().PIDFile); err != nil {
		errs = append(errs, err)
	}
	notifySystemd(s.log, fmt.Sprintf("READY=1\nMAINPID=%d", os.Getpid()))
	return errors.Join(errs...)
}

// notifySystemd sends state to systemd when it runs wssgate as a
// Type=notify service; it does nothing otherwise.
func notifySystemd(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Debug("sd_notify failed", "err", err)
	}
}

// startUpgrade starts the binary at the same path, with the same
// arguments, handing it the listening sockets. When the new process is
// ready, the upgrader's Exit channel closes and serve drains this one.
// On failure (the new binary or its configuration does not start) this
// process goes on serving.
func (s *server) startUpgrade() {
	u := s.opts.Upgrader
	st := &s.upgrade
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case u == nil:
		st.attempts++
		st.time, st.err = time.Now(), "binary upgrades are not available in this process"
		s.log.Error("upgrade refused", "err", st.err)
		return
	case st.inProgress:
		s.log.Warn("upgrade already in progress")
		return
	case s.draining.Load():
		s.log.Warn("upgrade refused: this process is stopping or draining")
		return
	}
	st.inProgress = true
	st.attempts++
	s.log.Info("upgrading: starting the new binary with the listening sockets", "signal", "SIGUSR2")
	go func() {
		err := u.Upgrade()
		st.mu.Lock()
		defer st.mu.Unlock()
		st.inProgress, st.time, st.err = false, time.Now(), ""
		if err != nil {
			if strings.Contains(err.Error(), "parent hasn't exited") {
				err = fmt.Errorf("the process this one replaced is still draining (drain_timeout); upgrade again once it has exited: %w", err)
			}
			st.err = err.Error()
			s.log.Error("upgrade failed; this process goes on serving", "err", err)
		}
	}()
}

// drain runs after an upgrade handed the sockets to the new process:
// this one accepts nothing more, finishes its plain requests, and serves
// its open WebSocket streams and gateway clients until they end,
// drain_timeout passes or ctx ends. serve then shuts down what is left.
func (s *server) drain(ctx context.Context) {
	s.mu.Lock()
	cfg := s.cfg.Load()
	s.draining.Store(true)
	fronts := make([]*front, 0, len(s.fronts))
	for _, f := range s.fronts {
		f.stopping.Store(true)
		fronts = append(fronts, f)
	}
	s.sockets.closeAll() // the new process has its own descriptors of them
	s.mu.Unlock()
	s.log.Info("upgraded: the new process accepts connections; draining this one",
		"streams", s.proxy.Streams(), "gateway_clients", s.gatewayClients(), "drain_timeout", cfg.Drain())
	dctx, cancel := context.WithTimeout(ctx, cfg.Drain())
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range fronts {
		wg.Go(func() { f.stopFront(dctx) })
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for s.proxy.Streams() > 0 || s.gatewayClients() > 0 {
		select {
		case <-dctx.Done():
			wg.Wait()
			return
		case <-tick.C:
		}
	}
	wg.Wait()
}

// gatewayClients is how many clients the gateway has.
func (s *server) gatewayClients() int {
	if s.gateway == nil {
		return 0
	}
	return s.gateway.hub.Stats().Clients
}

// writePIDFile writes this process's PID to path atomically; "" writes
// nothing.
func writePIDFile(path string) error {
	if path == "" {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".wssgate-pid-*")
	if err != nil {
		return fmt.Errorf("pid_file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := fmt.Fprintf(tmp, "%d\n", os.Getpid()); err != nil {
		tmp.Close()
		return fmt.Errorf("pid_file: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("pid_file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pid_file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("pid_file: %w", err)
	}
	return nil
}

// removePIDFile removes cfg's PID file if it still names this process
// (after an upgrade it names the new one).
func (s *server) removePIDFile(cfg *config.Config) {
	if cfg.PIDFile == "" {
		return
	}
	if pid, err := readPIDFile(cfg.PIDFile); err == nil && pid == os.Getpid() {
		os.Remove(cfg.PIDFile)
	}
}

// readPIDFile returns the PID written in path.
func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pid_file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid_file: %s does not hold a PID", path)
	}
	return pid, nil
}
