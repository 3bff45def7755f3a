package listeners

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

// EnvHandoff carries, from a process to the binary it starts, the ids
// of the sockets it hands over: descriptors 3, 4, ... in that order,
// followed by the pipe the new process says "ready" on.
const EnvHandoff = "WSSGATE_HANDOFF"

// StartTimeout bounds how long a new binary may take to serve.
const StartTimeout = time.Minute

// Handoff passes listening sockets from a process to the next binary,
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
//
// A Handoff is a [Source]: [Handoff.Listen] returns an inherited socket
// before it opens a new one.
type Handoff struct {
	// Exe is the binary [Handoff.Start] runs; "" is os.Args[0], this
	// process's own path (looked up in PATH when it has no slash).
	Exe string

	log       *slog.Logger
	inherited map[string]net.Listener // by socket id, not yet claimed
	ready     *os.File                // to the parent; nil when no handoff started this process
}

// NewHandoff takes the sockets a parent handed this process, if one
// did, and clears the variable so that no later binary misreads it.
// log (nil discards) is told when a new binary serves. The error lists
// the sockets that could not be taken over; the Handoff is usable
// anyway, and opens those addresses anew.
func NewHandoff(log *slog.Logger) (*Handoff, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handoff{log: log, inherited: map[string]net.Listener{}}
	v, ok := os.LookupEnv(EnvHandoff)
	if !ok {
		return h, nil
	}
	os.Unsetenv(EnvHandoff)
	var ids []string
	if err := json.Unmarshal([]byte(v), &ids); err != nil {
		return h, fmt.Errorf("listeners: %s: %w", EnvHandoff, err)
	}
	var errs []error
	for i, id := range ids {
		fd := 3 + i
		syscall.CloseOnExec(fd) // a later handoff passes what it means to, nothing more
		f := os.NewFile(uintptr(fd), id)
		ln, err := net.FileListener(f) // a descriptor of its own
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("listeners: socket %s from the previous process: %w", id, err))
			continue
		}
		h.inherited[id] = ln
	}
	fd := 3 + len(ids)
	syscall.CloseOnExec(fd)
	h.ready = os.NewFile(uintptr(fd), "upgrade-ready")
	return h, errors.Join(errs...)
}

// Listen returns the socket handed over under id, or opens one on addr.
func (h *Handoff) Listen(id, addr string) (net.Listener, error) {
	if ln, ok := h.inherited[id]; ok {
		delete(h.inherited, id)
		return ln, nil
	}
	return net.Listen("tcp", addr)
}

// Ready closes the handed-over sockets this process's configuration
// does not use (the parent closes its own when it drains, and the
// address is free then) and tells the parent that this process serves.
func (h *Handoff) Ready() error {
	for id, ln := range h.inherited {
		ln.Close()
		delete(h.inherited, id)
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
		return fmt.Errorf("listeners: telling the previous process: %w", err)
	}
	return nil
}

// Start starts the binary at this process's path (or Exe), with its
// arguments and environment, handing it lns (by socket id), and returns
// once it serves. It fails when the binary cannot start, exits first,
// or is not ready within StartTimeout (it is killed then), and kills it
// when ctx ends first. The caller goes on serving until Start returns
// nil.
//
// The new process outlives Start: a goroutine waits for it to exit, so
// that it is reaped, and ends with it (or with this process, which
// normally exits first).
func (h *Handoff) Start(ctx context.Context, lns map[string]net.Listener) error {
	exe := h.Exe
	if exe == "" {
		exe = os.Args[0]
	}
	if !strings.Contains(exe, "/") {
		p, err := exec.LookPath(exe)
		if err != nil {
			return fmt.Errorf("listeners: find the binary: %w", err)
		}
		exe = p
	}
	ids := slices.Sorted(maps.Keys(lns))
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, id := range ids {
		f, err := dupSocket(id, lns[id]) // closed once the child has its own
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	files = append(files, readyW)
	names, _ := json.Marshal(ids)
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = files
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, EnvHandoff+"=")
	}), EnvHandoff+"="+string(names))
	if err := cmd.Start(); err != nil {
		readyR.Close()
		return fmt.Errorf("listeners: start %s: %w", exe, err)
	}
	readyW.Close() // only the child holds the write end now: EOF if it exits
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps the child whenever it ends
	ready, readerDone := make(chan error, 1), make(chan struct{})
	go func() { // ends when the pipe is closed below, if not before
		defer close(readerDone)
		var b [1]byte
		_, err := io.ReadFull(readyR, b[:])
		ready <- err
	}()
	defer func() {
		readyR.Close()
		<-readerDone
	}()
	timer := time.NewTimer(StartTimeout)
	defer timer.Stop()
	pid := cmd.Process.Pid
	select {
	case err := <-ready:
		if err == nil {
			h.log.Info("the new process serves", "pid", pid, "binary", exe)
			return nil
		}
		return fmt.Errorf("listeners: new process %d exited before it served: %v", pid, <-exited)
	case err := <-exited:
		return fmt.Errorf("listeners: new process %d exited before it served: %v", pid, err)
	case <-timer.C:
		cmd.Process.Kill() // the process this one started
		<-exited
		return fmt.Errorf("listeners: new process %d did not serve within %s; killed it", pid, StartTimeout)
	case <-ctx.Done(): // this process stops: so does the one it was starting
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("listeners: new process %d stopped with this one: %w", pid, ctx.Err())
	}
}

// dupSocket returns a new descriptor of ln's socket, close-on-exec, for
// the new process. Not (*net.TCPListener).File: exec would put that
// descriptor, and with it the socket this process still accepts on, in
// blocking mode, and closing a blocking listener waits for a
// connection.
func dupSocket(id string, ln net.Listener) (*os.File, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("listeners: socket %s (%T) cannot be handed over", id, ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("listeners: socket %s: %w", id, err)
	}
	dup, derr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, fmt.Errorf("listeners: socket %s: %w", id, err)
	}
	if derr != nil {
		return nil, fmt.Errorf("listeners: socket %s: dup: %w", id, derr)
	}
	return os.NewFile(uintptr(dup), id), nil // non-blocking, and left so by exec
}
