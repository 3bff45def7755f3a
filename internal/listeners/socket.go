package listeners

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// acceptBackoff is how long a socket waits before it accepts again after
// a temporary error, such as running out of file descriptors (as
// http.Server does).
const acceptBackoff = 50 * time.Millisecond

// Socket is one listening socket. One goroutine accepts on it and hands
// each connection to whichever of its listeners ([Socket.Listener]) asks
// next.
//
// It ends in two steps. stopAccepting closes the descriptor: no new
// connection, and the accept goroutine returns once the connection it
// holds, if any, is handed to a listener; a process that stops or hands
// its sockets to a new one does this first, while its servers still run,
// so that no connection the kernel gave it is dropped. release then lets
// go of the listeners, closing any connection nobody took.
type Socket struct {
	name      atomic.Pointer[string] // a reload may rename it
	addr, id  string
	ln        net.Listener
	conns     chan net.Conn
	stopping  chan struct{} // closed by stopAccepting
	accepting chan struct{} // closed when the accept goroutine returns
	gone      chan struct{} // closed by release, or when the socket fails
	stopOnce  sync.Once
	goneOnce  sync.Once
	owner     *Set // runs its redeliveries, holds the budget
	stats     counters
	cap, held int64       // under owner.budget.mu: the cap (0: none) and the connections open
	paused    atomic.Bool // not accepting: at its cap or out of budget
	starved   atomic.Bool // accept is failing for want of descriptors
}

func newSocket(name, addr, id string, ln net.Listener, owner *Set) *Socket {
	s := &Socket{addr: addr, id: id, ln: ln, conns: make(chan net.Conn), owner: owner,
		stopping: make(chan struct{}), accepting: make(chan struct{}), gone: make(chan struct{})}
	s.name.Store(&name)
	return s
}

// Name says what the socket is for ("https", "admin", ...).
func (s *Socket) Name() string { return *s.name.Load() }

// Addr is the address the socket is bound to.
func (s *Socket) Addr() net.Addr { return s.ln.Addr() }

// Stats are a socket's connection and byte counts.
type Stats struct {
	Active, Total     int64 // connections open now, and accepted so far
	BytesIn, BytesOut int64 // read from and written to its connections
	Cap               int64 // the socket's cap; 0 when only the budget bounds it
	Paused            bool  // not accepting now: at its cap or out of budget
	Pauses            int64 // times it stopped accepting so
	FDErrors          int64 // accepts that failed for want of file descriptors
}

// counters are a socket's Stats as they change.
type counters struct {
	active, total     atomic.Int64
	bytesIn, bytesOut atomic.Int64
	pauses, fdErrors  atomic.Int64
}

// Stats returns the socket's counts now.
func (s *Socket) Stats() Stats {
	b := &s.owner.budget
	b.mu.Lock()
	capacity := s.cap
	b.mu.Unlock()
	return Stats{Active: s.stats.active.Load(), Total: s.stats.total.Load(),
		BytesIn: s.stats.bytesIn.Load(), BytesOut: s.stats.bytesOut.Load(),
		Cap: capacity, Paused: s.paused.Load(), Pauses: s.stats.pauses.Load(), FDErrors: s.stats.fdErrors.Load()}
}

func (s *Socket) accept(failed FailFunc) {
	defer close(s.accepting)
	for {
		if !s.take() {
			return
		}
		c, err := s.ln.Accept()
		if err != nil {
			s.give()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			select {
			case <-s.stopping:
				return
			default:
			}
			if isTemporary(err) {
				if outOfFiles(err) {
					s.stats.fdErrors.Add(1)
					if !s.starved.Swap(true) {
						s.owner.logStarved(s, err)
					}
				}
				if !s.sleep(acceptBackoff) {
					return
				}
				continue
			}
			if failed != nil { // first, so that the errno is what the server reports
				failed(s.Name(), s.addr, err)
			}
			s.release() // the socket failed: its servers stop
			return
		}
		if s.starved.Swap(false) {
			s.owner.log.Info("listener accepts again after running out of file descriptors", "listener", s.Name(), "addr", s.addr)
		}
		s.stats.active.Add(1)
		s.stats.total.Add(1)
		cc := &countedConn{Conn: c, sock: s}
		select {
		case s.conns <- cc:
		case <-s.gone:
			cc.Close()
			return
		}
	}
}

// sleep waits d, or less when the socket stops accepting; false then.
func (s *Socket) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stopping:
		return false
	}
}

// stopAccepting closes the socket's descriptor; connections already
// accepted still go to the listeners.
func (s *Socket) stopAccepting() {
	s.stopOnce.Do(func() {
		close(s.stopping)
		s.ln.Close()
	})
}

// release stops accepting and ends the listeners: a connection still
// waiting for one is closed.
func (s *Socket) release() {
	s.stopAccepting()
	s.goneOnce.Do(func() { close(s.gone) })
}

// Listener returns a net.Listener that accepts the socket's connections
// until it is closed, for one server. Closing it leaves the socket open,
// so that the next server can take over.
func (s *Socket) Listener() net.Listener {
	return &shared{s: s, done: make(chan struct{})}
}

// shared is one server's share of a socket.
type shared struct {
	s    *Socket
	done chan struct{}
	once sync.Once
}

func (l *shared) Accept() (net.Conn, error) {
	select {
	case <-l.done:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-l.s.conns:
		select {
		case <-l.done: // closed meanwhile: the next listener serves it
			if !l.s.owner.spawn(func() { l.s.redeliver(c) }) {
				c.Close() // the Set is closed: nobody will accept it
			}
			return nil, net.ErrClosed
		default:
			return c, nil
		}
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.s.gone:
		return nil, net.ErrClosed
	}
}

// redeliver hands c to the next listener that accepts, or closes it
// when the socket is released first.
func (s *Socket) redeliver(c net.Conn) {
	select {
	case s.conns <- c:
	case <-s.gone:
		c.Close()
	}
}

func (l *shared) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *shared) Addr() net.Addr { return l.s.ln.Addr() }

// countedConn counts a connection's bytes and its end in its socket's
// statistics, and gives its slot back when it is closed.
type countedConn struct {
	net.Conn
	sock   *Socket
	closed atomic.Bool
}

func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.sock.stats.bytesIn.Add(int64(n))
	}
	return n, err
}

func (c *countedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.sock.stats.bytesOut.Add(int64(n))
	}
	return n, err
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.sock.stats.active.Add(-1)
		c.sock.give()
	}
	return err
}

// SyscallConn is the socket's, for a reader or writer that uses it
// directly (the gateway writes without blocking); what it moves that
// way it reports through CountBytes.
func (c *countedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("listeners: connection has no socket")
	}
	return sc.SyscallConn()
}

// CountBytes counts bytes read and written on the socket past Read and
// Write.
func (c *countedConn) CountBytes(in, out int) {
	if in > 0 {
		c.sock.stats.bytesIn.Add(int64(in))
	}
	if out > 0 {
		c.sock.stats.bytesOut.Add(int64(out))
	}
}

// CloseWrite half-closes a TCP connection, as the gateway does before it
// drops a client that broke a limit.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// outOfFiles reports whether err says the process or the system has no
// file descriptor to spare.
func outOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// isTemporary reports whether an accept error passes: the process or
// system is out of file descriptors, or a client gave up before accept.
// Linux also reports, from accept, network errors that belong to the
// one pending connection (accept(2) says to retry on them).
func isTemporary(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.EPROTO, syscall.ENETDOWN, syscall.ENOPROTOOPT, syscall.EHOSTDOWN,
		syscall.ENONET, syscall.EHOSTUNREACH, syscall.EOPNOTSUPP, syscall.ENETUNREACH, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
