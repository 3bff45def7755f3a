package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// envHandoff carries, from a process to the binary it starts for an
// upgrade, the keys of the sockets it hands over: descriptors 3, 4, ...
// in that order, followed by the pipe the new process says "ready" on.
const envHandoff = "WSSGATE_HANDOFF"

// upgradeTimeout bounds how long a new binary may take to serve.
const upgradeTimeout = time.Minute

// handoff passes listening sockets from a process to the next binary,
// as systemd passes sockets in LISTEN_FDS: the new process gets a
// descriptor of every socket, opens what its configuration adds, closes
// what it drops, and writes a byte to the ready pipe once it serves.
// Until then the old process serves as before, and the kernel queues
// new connections on the shared sockets, so none is refused.
//
// It is written here rather than taken from a library because a reload
// must be able to close a socket for good: a handoff library that keeps
// its own descriptor of every socket it ever opened (tableflip does)
// leaves a dropped address bound and completing handshakes nobody
// accepts.
type handoff struct {
	exe       string // the binary Upgrade starts; "" is os.Args[0], this process's path
	log       *slog.Logger
	inherited map[string]net.Listener // by socket key, not yet claimed
	ready     *os.File                // to the parent; nil when no upgrade started this process
}

// newHandoff takes the sockets a parent handed this process, if one
// did, and clears the variable so that no later binary misreads it.
func newHandoff(log *slog.Logger) (*handoff, error) {
	h := &handoff{log: log, inherited: map[string]net.Listener{}}
	v, ok := os.LookupEnv(envHandoff)
	if !ok {
		return h, nil
	}
	os.Unsetenv(envHandoff)
	var keys []string
	if err := json.Unmarshal([]byte(v), &keys); err != nil {
		return h, fmt.Errorf("%s: %w", envHandoff, err)
	}
	var errs []error
	for i, key := range keys {
		fd := 3 + i
		syscall.CloseOnExec(fd) // a later upgrade passes what it means to, nothing more
		f := os.NewFile(uintptr(fd), key)
		ln, err := net.FileListener(f) // a descriptor of its own
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("socket %s from the previous process: %w", key, err))
			continue
		}
		h.inherited[key] = ln
	}
	fd := 3 + len(keys)
	syscall.CloseOnExec(fd)
	h.ready = os.NewFile(uintptr(fd), "upgrade-ready")
	return h, errors.Join(errs...)
}

// Listen returns the socket handed over under key, or opens one on addr.
func (h *handoff) Listen(key, addr string) (net.Listener, error) {
	if ln, ok := h.inherited[key]; ok {
		delete(h.inherited, key)
		return ln, nil
	}
	return net.Listen("tcp", addr)
}

// Ready closes the handed-over sockets this process's configuration
// does not use (the parent closes its own when it drains, and the
// address is free then) and tells the parent that this process serves.
func (h *handoff) Ready() error {
	for key, ln := range h.inherited {
		ln.Close()
		delete(h.inherited, key)
	}
	if h.ready == nil {
		return nil
	}
	defer func() { h.ready = nil }()
	_, err := h.ready.Write([]byte{1})
	if cerr := h.ready.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("telling the previous process: %w", err)
	}
	return nil
}

// Upgrade starts the binary at this process's path, with its arguments
// and environment, handing it lns, and returns once it serves. It fails
// when the binary cannot start, exits first, or is not ready within
// upgradeTimeout (it is killed then). The caller goes on serving until
// Upgrade returns nil.
func (h *handoff) Upgrade(ctx context.Context, lns map[string]net.Listener) error {
	exe := h.exe
	if exe == "" {
		exe = os.Args[0]
	}
	if !strings.Contains(exe, "/") {
		p, err := exec.LookPath(exe)
		if err != nil {
			return fmt.Errorf("find the binary: %w", err)
		}
		exe = p
	}
	keys := slices.Sorted(maps.Keys(lns))
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, key := range keys {
		f, err := dupSocket(key, lns[key]) // closed once the child has its own
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer readyR.Close()
	files = append(files, readyW)
	names, _ := json.Marshal(keys)
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = files
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, envHandoff+"=")
	}), envHandoff+"="+string(names))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", exe, err)
	}
	readyW.Close() // only the child holds the write end now: EOF if it exits
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps the child whenever it ends
	ready := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := io.ReadFull(readyR, b[:])
		ready <- err
	}()
	timer := time.NewTimer(upgradeTimeout)
	defer timer.Stop()
	pid := cmd.Process.Pid
	select {
	case err := <-ready:
		if err == nil {
			h.log.Info("the new process serves", "pid", pid, "binary", exe)
			return nil
		}
		return fmt.Errorf("new process %d exited before it served: %v", pid, <-exited)
	case err := <-exited:
		return fmt.Errorf("new process %d exited before it served: %v", pid, err)
	case <-timer.C:
		cmd.Process.Kill() // the process this one started
		return fmt.Errorf("new process %d did not serve within %s; killed it", pid, upgradeTimeout)
	case <-ctx.Done(): // this process stops: so does the one it was starting
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("new process %d stopped with this one: %w", pid, ctx.Err())
	}
}

// dupSocket returns a new descriptor of ln's socket, close-on-exec, for
// the new process. Not (*net.TCPListener).File: exec would put that
// descriptor, and with it the socket this process still accepts on, in
// blocking mode, and closing a blocking listener waits for a
// connection.
func dupSocket(key string, ln net.Listener) (*os.File, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("socket %s (%T) cannot be handed over", key, ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", key, err)
	}
	dup, derr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, fmt.Errorf("socket %s: %w", key, err)
	}
	if derr != nil {
		return nil, fmt.Errorf("socket %s: dup: %w", key, derr)
	}
	return os.NewFile(uintptr(dup), key), nil // non-blocking, and left so by exec
}
