//go:build unix

package gateway

import (
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
