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

// processSockets returns the handoff that opens the process's sockets
// (taking over those its parent handed it, after an upgrade) and the
// sockets systemd passed by socket activation.
func processSockets(log *slog.Logger) (*handoff, []net.Listener) {
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
	h, err := newHandoff(log)
	if err != nil {
		log.Warn("upgrade: some sockets of the previous process could not be taken over; their addresses are opened anew", "err", err)
	}
	return h, systemd
}

// ready tells systemd, the PID file and the parent of an upgrade, in
// that order, that this process serves: systemd must know the new main
// PID before the parent, told last, drains and exits.
func (s *server) ready() error {
	var errs []error
	if err := writePIDFile(s.cfg.Load().PIDFile); err != nil {
		errs = append(errs, err)
	}
	notifySystemd(s.log, fmt.Sprintf("MAINPID=%d\nREADY=1", os.Getpid()))
	if u := s.opts.Upgrader; u != nil {
		if err := u.Ready(); err != nil {
			errs = append(errs, fmt.Errorf("upgrade: %w", err))
		}
	}
	s.sockets.closeUnclaimed()
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
// arguments, handing it the listening sockets. When the new process
// serves, s.upgraded is closed and serve drains this one. On failure
// (the new binary or its configuration does not start) this process
// goes on serving. It runs on serve's goroutine, as reloads do, so the
// sockets it hands over are those of one configuration.
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
		st.attempts++
		st.time, st.err = time.Now(), "this process is stopping or draining; upgrade the one serving"
		s.log.Warn("upgrade refused", "err", st.err)
		return
	}
	st.inProgress = true
	st.attempts++
	s.log.Info("upgrading: starting the new binary with the listening sockets", "signal", "SIGUSR2")
	lns := s.sockets.listeners()
	s.upgrades.Go(func() {
		err := u.Upgrade(s.upgradeCtx, lns)
		st.mu.Lock()
		defer st.mu.Unlock()
		st.inProgress, st.time, st.err = false, time.Now(), ""
		if err != nil {
			st.err = err.Error()
			s.log.Error("upgrade failed; this process goes on serving", "err", err)
			return
		}
		close(s.upgraded)
	})
}

// upgrading reports whether a new binary is starting.
func (s *server) upgrading() bool {
	s.upgrade.mu.Lock()
	defer s.upgrade.mu.Unlock()
	return s.upgrade.inProgress
}

// drain runs after an upgrade handed the sockets to the new process:
// this one accepts nothing more, finishes its plain requests, and serves
// its open WebSocket streams and gateway clients until they end,
// drain_timeout passes or ctx ends. serve then shuts down what is left.
func (s *server) drain(ctx context.Context) {
	s.mu.Lock()
	cfg := s.cfg.Load()
	s.draining.Store(true)
	s.sockets.quiesce(time.Second) // the new process has descriptors of its own
	fronts := s.allFronts()
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
