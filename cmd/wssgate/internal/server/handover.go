package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// handoverState is the outcome of the last binary upgrade this process
// tried, for status and for `wssgate upgrade`.
type handoverState struct {
	mu         sync.Mutex
	inProgress bool
	attempts   int
	time       time.Time
	err        string // "" when the last attempt worked or none was made
}

// ready tells systemd, the PID file and the parent of an upgrade, in
// that order, that this process serves: systemd must know the new main
// PID before the parent, told last, drains and exits.
func (s *Server) ready() error {
	var errs []error
	if err := writePIDFile(s.cfg.Load().PIDFile); err != nil {
		errs = append(errs, err)
	}
	notifySystemd(s.log, fmt.Sprintf("MAINPID=%d\nREADY=1", os.Getpid()))
	if h := s.opts.Handover; h != nil {
		if err := h.Ready(); err != nil {
			errs = append(errs, fmt.Errorf("upgrade: %w", err))
		}
	}
	s.sockets.CloseUnclaimed()
	return errors.Join(errs...)
}

// notifySystemd sends state to systemd when it runs wssgate as a
// Type=notify service; it does nothing otherwise.
func notifySystemd(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Debug("sd_notify failed", "err", err)
	}
}

// Upgrade starts the binary at the same path, with the same arguments,
// handing it the listening sockets, and returns at once; status tells
// how it went. When the new process serves, Run drains this one. On
// failure (the new binary or its configuration does not start) this
// process goes on serving. It returns an error when it starts nothing:
// upgrades are not available, one is in progress, or this process is
// stopping or draining.
func (s *Server) Upgrade() error {
	s.mu.Lock() // the sockets handed over are those of one configuration
	defer s.mu.Unlock()
	h := s.opts.Handover
	st := &s.handover
	st.mu.Lock()
	defer st.mu.Unlock()
	refuse := func(why string) error {
		st.attempts++
		st.time, st.err = time.Now(), why
		return errors.New(why)
	}
	switch {
	case h == nil:
		return refuse("binary upgrades are not available in this process")
	case st.inProgress:
		return errors.New("upgrade already in progress")
	case s.draining.Load() || s.handoverCtx.Err() != nil:
		return refuse("this process is stopping or draining; upgrade the one serving")
	}
	st.inProgress = true
	st.attempts++
	lns := s.sockets.Listeners()
	s.handovers.Go(func() {
		err := h.Start(s.handoverCtx, lns)
		st.mu.Lock()
		defer st.mu.Unlock()
		st.inProgress, st.time, st.err = false, time.Now(), ""
		if err != nil {
			st.err = err.Error()
			s.log.Error("upgrade failed; this process goes on serving", "err", err)
			return
		}
		close(s.handedOff)
	})
	return nil
}

// handingOver reports whether a new binary is starting.
func (s *Server) handingOver() bool {
	s.handover.mu.Lock()
	defer s.handover.mu.Unlock()
	return s.handover.inProgress
}

// drain runs after an upgrade handed the sockets to the new process:
// this one accepts nothing more, finishes its plain requests, and serves
// its open WebSocket streams and gateway clients until they end,
// drain_timeout passes or ctx ends. Run then shuts down what is left.
func (s *Server) drain(ctx context.Context) {
	s.mu.Lock()
	cfg := s.cfg.Load()
	s.draining.Store(true)
	s.sockets.Quiesce(time.Second) // the new process has descriptors of its own
	endpoints := s.allEndpoints()
	s.mu.Unlock()
	s.log.Info("upgraded: the new process accepts connections; draining this one",
		"streams", s.proxy.Streams(), "gateway_clients", s.gatewayClients(), "drain_timeout", cfg.Drain())
	dctx, cancel := context.WithTimeout(ctx, cfg.Drain())
	defer cancel()
	var wg sync.WaitGroup
	for _, e := range endpoints {
		wg.Go(func() { e.stop(dctx) })
	}
	wg.Go(func() { _ = s.proxy.Wait(dctx) })
	if s.gateway != nil {
		wg.Go(func() { _ = s.gateway.hub.Wait(dctx) })
	}
	wg.Wait()
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

// removePIDFile removes the PID file at path if it still names this
// process (after an upgrade it names the new one); "" removes nothing.
func removePIDFile(path string) {
	if path == "" {
		return
	}
	if pid, err := ReadPIDFile(path); err == nil && pid == os.Getpid() {
		os.Remove(path)
	}
}

// ReadPIDFile returns the PID written in the PID file at path.
func ReadPIDFile(path string) (int, error) {
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
