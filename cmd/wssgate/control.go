package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/wssgate/wssgate/admin"
	"github.com/wssgate/wssgate/cmd/wssgate/internal/server"
	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/listeners"
	"github.com/wssgate/wssgate/status"
)

// The control commands (status, reload, upgrade, stop) find the running
// server through the configuration it was started with: its admin
// listener for state, and its PID (pid_file, else the admin listener's
// status) for signals. Signals, not HTTP, change things, so only the
// server's owner or root can reload, upgrade or stop it.

// target is how to reach a running server.
type target struct {
	adminAddr, token string
	pidFile          string
}

// controlFlags parses a control command's flags and reads the
// configuration. extra adds the command's own flags.
func controlFlags(cmd string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*config.Config, *target, int) {
	var pidFile string
	_, cfg, code := configFlags(cmd, args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&pidFile, "pid", "", "PID file of the running server (default: pid_file of the configuration)")
		if extra != nil {
			extra(fs)
		}
	})
	if cfg == nil {
		return nil, nil, code
	}
	a := cfg.Admin
	token, err := cfg.AdminToken()
	if err != nil {
		fmt.Fprintf(stderr, "wssgate %s: %v\n", cmd, err)
		return nil, nil, exitFail
	}
	t := &target{adminAddr: a.Listen, token: token, pidFile: cfg.PIDFile}
	if pidFile != "" {
		t.pidFile = pidFile
	}
	return cfg, t, exitOK
}

// snapshot fetches the server's status from its admin listener.
func (t *target) snapshot(ctx context.Context) (status.Snapshot, error) {
	if t.adminAddr == "" {
		return status.Snapshot{}, errors.New("admin.listen is off in this configuration; turn it on to see the server's state")
	}
	return admin.Fetch(ctx, t.adminAddr, t.token)
}

// pid returns the running server's PID: from the PID file, else from
// its admin listener. Both come from the file the command reads, which a
// reload may be about to change: either one that still finds the server
// will do.
func (t *target) pid(ctx context.Context) (int, error) {
	if t.pidFile == "" && t.adminAddr == "" {
		return 0, errors.New("neither pid_file nor admin.listen is set: there is no way to find the server (use -pid FILE)")
	}
	var errs []error
	if t.pidFile != "" {
		pid, err := server.ReadPIDFile(t.pidFile)
		if err == nil {
			return pid, nil
		}
		errs = append(errs, err)
	}
	if t.adminAddr != "" {
		s, err := t.snapshot(ctx)
		if err == nil {
			return s.Process.PID, nil
		}
		errs = append(errs, err)
	}
	return 0, fmt.Errorf("cannot find the server (if this reload changes pid_file and the admin address or token together, send SIGHUP yourself): %w", errors.Join(errs...))
}

// signal sends sig to the server and returns its PID.
func (t *target) signal(ctx context.Context, sig syscall.Signal) (int, error) {
	pid, err := t.pid(ctx)
	if err != nil {
		return 0, err
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return 0, fmt.Errorf("signal %d: %w", pid, err)
	}
	return pid, nil
}

// cmdStatus prints the server's status table, or its JSON with -json.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var asJSON bool
	_, t, code := controlFlags("status", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print the status as JSON")
	})
	if t == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := t.snapshot(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "wssgate status: %v\n", err)
		return exitFail
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(s)
	} else {
		err = status.WriteTable(stdout, s)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wssgate status: %v\n", err)
		return exitFail
	}
	return exitOK
}

// cmdReload checks the configuration as validate does and, when it is
// valid, has the server reload it (SIGHUP) and waits for the server's
// own verdict: exit 0 when it applied, 1 with every problem when it
// kept the previous configuration.
func cmdReload(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, t, code := controlFlags("reload", args, stderr, nil)
	if t == nil {
		return code
	}
	if problems, _ := checkConfig(cfg); problems != nil {
		printProblems(stderr, problems)
		fmt.Fprintln(stderr, "wssgate reload: not reloaded; the server goes on with its configuration")
		return exitFail
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sent := time.Now()
	pid, err := t.signal(ctx, syscall.SIGHUP)
	if err != nil {
		fmt.Fprintf(stderr, "wssgate reload: %v\n", err)
		return exitFail
	}
	if t.adminAddr == "" {
		fmt.Fprintf(stdout, "sent SIGHUP to %d; its log says whether the reload applied (admin.listen is off)\n", pid)
		return exitOK
	}
	// The verdict: that of the first reload the server began after the
	// signal.
	// Its admin listener may be the new one by then, which is the one
	// this file names.
	var lastErr error
	for {
		s, err := t.snapshot(ctx)
		lastErr = err
		if err == nil && !s.Reload.Began.Before(sent) {
			if s.Reload.Failed {
				for _, p := range s.Reload.Problems {
					fmt.Fprintln(stderr, p)
				}
				fmt.Fprintf(stderr, "wssgate reload: refused by the server (pid %d); it goes on with its previous configuration\n", pid)
				return exitFail
			}
			fmt.Fprintf(stdout, "reloaded (pid %d, generation %d)\n", pid, s.Reload.Generation)
			return exitOK
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			fmt.Fprintf(stderr, "wssgate reload: sent SIGHUP to %d, but read no verdict in time (%v; last: %v); see its log\n", pid, ctx.Err(), lastErr)
			return exitFail
		}
	}
}

// cmdUpgrade has the server start the binary at its path with the
// listening sockets (SIGUSR2) and waits until the new process serves:
// exit 0 with both PIDs, 1 when the new process did not come up and the
// old one goes on serving.
func cmdUpgrade(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	_, t, code := controlFlags("upgrade", args, stderr, nil)
	if t == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, listeners.StartTimeout+30*time.Second)
	defer cancel()
	var before status.Upgrade
	if s, err := t.snapshot(ctx); err == nil {
		before = s.Upgrade
	}
	pid, err := t.signal(ctx, syscall.SIGUSR2)
	if err != nil {
		fmt.Fprintf(stderr, "wssgate upgrade: %v\n", err)
		return exitFail
	}
	for {
		var now int
		if t.pidFile != "" {
			now, _ = server.ReadPIDFile(t.pidFile)
		}
		if t.adminAddr != "" {
			if s, err := t.snapshot(ctx); err == nil {
				if s.Process.PID == pid && s.Upgrade.Attempts > before.Attempts && !s.Upgrade.InProgress && s.Upgrade.Error != "" {
					fmt.Fprintf(stderr, "wssgate upgrade: %s; pid %d goes on serving\n", s.Upgrade.Error, pid)
					return exitFail
				}
				if now == 0 || now == pid {
					now = s.Process.PID
				}
			}
		}
		if now != 0 && now != pid {
			fmt.Fprintf(stdout, "upgraded: pid %d serves; pid %d drains its open connections\n", now, pid)
			return exitOK
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			state := "goes on serving"
			if syscall.Kill(pid, 0) != nil {
				state = "has exited: nothing may be serving, check the log"
			}
			fmt.Fprintf(stderr, "wssgate upgrade: no new process in time (%v); pid %d %s\n", ctx.Err(), pid, state)
			return exitFail
		}
	}
}

// cmdStop stops the server gracefully (SIGTERM) and waits until it has
// exited.
func cmdStop(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, t, code := controlFlags("stop", args, stderr, nil)
	if t == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.ShutdownTimeout+30*time.Second)
	defer cancel()
	pid, err := t.signal(ctx, syscall.SIGTERM)
	if err != nil {
		fmt.Fprintf(stderr, "wssgate stop: %v\n", err)
		return exitFail
	}
	for syscall.Kill(pid, 0) == nil {
		if !sleepCtx(ctx, 50*time.Millisecond) {
			fmt.Fprintf(stderr, "wssgate stop: pid %d is still running: %v\n", pid, ctx.Err())
			return exitFail
		}
	}
	fmt.Fprintf(stdout, "stopped (pid %d)\n", pid)
	return exitOK
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
