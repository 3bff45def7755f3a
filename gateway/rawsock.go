//go:build unix

package gateway

import (
	"io"
	"net"
	"syscall"
)

// byteCounter is a connection wrapper that counts the bytes passing its
// Read and Write (the edge's listeners count them per listener): what
// the hub moves on the socket itself, past the wrapper, it reports here.
type byteCounter interface {
	CountBytes(in, out int)
}

// rawSocket writes to a connection's socket without ever blocking, as
// workerman's send does before it buffers: one write(2) that takes what
// the kernel accepts now. It is part of its client and used under the
// client's qmu. The zero value (ok false) writes nothing: a TLS
// connection, say, whose bytes must pass its own Write.
type rawSocket struct {
	rc      syscall.RawConn
	counter byteCounter           // nil when the connection counts nothing
	fn      func(fd uintptr) bool // s.write, made once: RawConn.Write takes a func, and one made per call would allocate
	buf     []byte                // fn's argument ...
	n       int                   // ... and results
	err     error

	// The same for reads, which may run while a send writes.
	rfn  func(fd uintptr) bool // s.read
	rbuf []byte
	rn   int
	rerr error
}

// init readies s for nc's socket, if nc exposes one (syscall.Conn).
func (s *rawSocket) init(nc net.Conn) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	s.rc = rc
	s.counter, _ = nc.(byteCounter)
	s.fn = s.write
	s.rfn = s.read
}

// ok reports whether s can write.
func (s *rawSocket) ok() bool { return s.rc != nil }

func (s *rawSocket) write(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), s.buf)
		if err == syscall.EINTR {
			continue
		}
		s.n, s.err = max(n, 0), err
		return true // done, whatever happened: never wait for the socket
	}
}

// tryWrite writes as much of b as the socket takes at once and returns
// how much that was. err is nil when the socket took all of b, part of
// it or, being full, none; otherwise the connection is broken (or
// closed).
func (s *rawSocket) tryWrite(b []byte) (int, error) {
	s.buf = b
	err := s.rc.Write(s.fn)
	s.buf = nil
	if err != nil {
		return 0, err
	}
	n, err := s.n, s.err
	if err == syscall.EAGAIN {
		err = nil
	}
	if n > 0 && s.counter != nil {
		s.counter.CountBytes(0, n)
	}
	return n, err
}

func (s *rawSocket) read(fd uintptr) bool {
	for {
		n, err := syscall.Read(int(fd), s.rbuf)
		if err == syscall.EINTR {
			continue
		}
		s.rn, s.rerr = max(n, 0), err
		return true // never wait: the hub's poller says when to read
	}
}

// tryRead reads what the socket holds into b, without waiting. It
// returns 0, nil when there is nothing to read, and 0, io.EOF when the
// peer has closed its side.
func (s *rawSocket) tryRead(b []byte) (int, error) {
	s.rbuf = b
	err := s.rc.Read(s.rfn)
	s.rbuf = nil
	if err != nil {
		return 0, err
	}
	n, err := s.rn, s.rerr
	switch {
	case err == syscall.EAGAIN:
		return 0, nil
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	if s.counter != nil {
		s.counter.CountBytes(n, 0)
	}
	return n, nil
}

// fd returns the socket's descriptor, for registering it with a poller,
// or -1 if the connection is closed.
func (s *rawSocket) fd() int {
	fd := -1
	if s.rc.Control(func(d uintptr) { fd = int(d) }) != nil {
		return -1
	}
	return fd
}

// shutdown shuts the socket down in the given direction(s)
// (syscall.SHUT_RD, SHUT_WR or SHUT_RDWR) without closing the
// descriptor: a blocked write fails, and the socket reads as ended, so
// that whoever reads it finds out and closes it. It never blocks.
func (s *rawSocket) shutdown(how int) {
	s.rc.Control(func(fd uintptr) { syscall.Shutdown(int(fd), how) })
}
