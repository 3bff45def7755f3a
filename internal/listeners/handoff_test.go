package listeners

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wssgate/wssgate/internal/testutil"
)

// nonBlocking reports whether ln's socket is in non-blocking mode.
func nonBlocking(t *testing.T, ln net.Listener) bool {
	t.Helper()
	rc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	return flags&unix.O_NONBLOCK != 0
}

// TestHandoffFailures runs upgrades whose new binary does not come up:
// each returns an error saying so, the sockets stay non-blocking (a
// blocking listener's Close would wait for a connection), and a socket
// still stops accepting at once after a connection.
func TestHandoffFailures(t *testing.T) {
	dir := t.TempDir()
	slow := filepath.Join(dir, "slow")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, exe string
		ctx       func() context.Context
		want      string
	}{
		{"missing binary", filepath.Join(dir, "nonexistent"), context.Background, "start"},
		{"exits at once", "/bin/false", context.Background, "exited before it served"},
		{"stopped while starting", slow, func() context.Context {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			t.Cleanup(cancel)
			return ctx
		}, "stopped with this one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := NewSet(Options{})
			sock, _, err := ss.Open("https", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			v := sock.Listener()
			served := make(chan struct{})
			go func() {
				defer close(served)
				for {
					c, err := v.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
			h := &Handoff{Exe: tt.exe, log: testutil.Logger(t)}
			began := time.Now()
			err = h.Start(tt.ctx(), ss.Listeners())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start: %v, want an error with %q", err, tt.want)
			}
			if d := time.Since(began); d > 10*time.Second {
				t.Errorf("Start took %s to give up", d)
			}
			if !nonBlocking(t, sock.ln) {
				t.Error("the upgrade left the listening socket blocking")
			}
			c, err := net.Dial("tcp", sock.ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			quiesced := make(chan struct{})
			go func() { ss.Quiesce(5 * time.Second); close(quiesced) }()
			select {
			case <-quiesced:
			case <-time.After(3 * time.Second):
				t.Fatal("stopping the socket waited for another connection")
			}
			v.Close()
			<-served
			ss.CloseAll()
		})
	}
}

// failingListener accepts nothing: its socket has failed for good.
type failingListener struct{ net.Listener }

func (failingListener) Accept() (net.Conn, error) { return nil, syscall.EINVAL }

type failingSource struct{}

func (failingSource) Listen(_, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	return failingListener{ln}, err
}

// TestSocketFailureReported checks that a socket whose accept fails for
// good is reported with its error, whatever server it feeds.
func TestSocketFailureReported(t *testing.T) {
	got := make(chan error, 1)
	ss := NewSet(Options{Source: failingSource{}, Failed: func(name, addr string, err error) { got <- err }})
	if _, _, err := ss.Open("gateway_text", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer ss.CloseAll()
	select {
	case err := <-got:
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("reported %v, want EINVAL", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the failure was not reported")
	}
}
