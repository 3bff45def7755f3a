package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// listenSource opens listening sockets. The production source is a
// tableflip.Upgrader, which hands the sockets it opened to the new
// process of a binary upgrade and gives that process the ones it
// inherited; tests use plain net.Listen.
type listenSource interface {
	// Listen opens a socket on addr, or returns the one the previous
	// process handed over under key.
	Listen(key, addr string) (net.Listener, error)
}

// netListen is the listenSource of a process that cannot be upgraded.
type netListen struct{}

func (netListen) Listen(_, addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// socketKey names the socket for a listener: its address, or, for port
// 0 (any free port, in tests), the address and the listener's name, so
// that two such listeners get two sockets and a reload keeps each.
func socketKey(name, addr string) string {
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		return addr + "#" + name
	}
	return addr
}

// sockets owns the process's listening sockets, one per configured
// address, for as long as the configuration keeps the address: a reload
// that keeps an address keeps its socket (and the connections waiting in
// its backlog), one that drops it closes it, and one that adds an
// address opens it. Servers never own a socket: they accept through a
// view, so that a reload can move a socket to a new server (new limits,
// new admin token) without a moment in which nobody accepts.
type sockets struct {
	src     listenSource
	systemd []net.Listener // from LISTEN_FDS, not yet claimed

	mu   sync.Mutex
	open map[string]*socket // by socketKey
}

func newSockets(src listenSource, systemd []net.Listener) *sockets {
	if src == nil {
		src = netListen{}
	}
	return &sockets{src: src, systemd: systemd, open: map[string]*socket{}}
}

// socket is one listening socket. One goroutine accepts on it and hands
// each connection to whichever view asks next.
type socket struct {
	name, addr string
	key        string // socketKey
	ln         net.Listener
	conns      chan net.Conn
	closed     chan struct{}
	closeOnce  sync.Once
	stats      socketStats
}

// socketStats counts a socket's connections and bytes.
type socketStats struct {
	active, total     atomic.Int64
	bytesIn, bytesOut atomic.Int64
}

// get returns the socket for the listener name on addr, opening it when
// it is not open yet. name says what it is for ("https", "admin", ...)
// in messages and statistics. opened reports whether get opened it.
func (ss *sockets) get(name, addr string) (s *socket, opened bool, err error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	key := socketKey(name, addr)
	if s := ss.open[key]; s != nil {
		s.name = name
		return s, false, nil
	}
	ln := ss.claimSystemd(addr)
	if ln != nil {
		if a, ok := ss.src.(interface {
			adopt(string, net.Listener) error
		}); ok {
			if err := a.adopt(key, ln); err != nil {
				ln.Close()
				return nil, false, fmt.Errorf("%s %s: socket from systemd: %w", name, addr, err)
			}
		}
	} else {
		if ln, err = ss.src.Listen(key, addr); err != nil {
			return nil, false, err
		}
	}
	s = &socket{name: name, addr: addr, key: key, ln: ln, conns: make(chan net.Conn), closed: make(chan struct{})}
	ss.open[key] = s
	go s.accept()
	return s, true, nil
}

// claimSystemd returns the socket-activated listener bound to addr, if
// systemd passed one.
func (ss *sockets) claimSystemd(addr string) net.Listener {
	for i, ln := range ss.systemd {
		if sameAddr(ln.Addr(), addr) {
			ss.systemd = append(ss.systemd[:i], ss.systemd[i+1:]...)
			return ln
		}
	}
	return nil
}

// sameAddr reports whether the listening address a is what the
// configured address addr asks for: the same port, and the same IP or,
// for a wildcard host ("", 0.0.0.0, ::), any wildcard.
func sameAddr(a net.Addr, addr string) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || strconv.Itoa(ta.Port) != port {
		return false
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		return ta.IP.IsUnspecified()
	}
	want, err := netip.ParseAddr(host)
	got, ok := netip.AddrFromSlice(ta.IP)
	return err == nil && ok && want.Unmap() == got.Unmap()
}

// drop closes the sockets whose keys are not in keep, so that the port
// stops accepting at once. A socket handed over by an upgrade is also
// open in the other process, so drop is only for reloads.
func (ss *sockets) drop(keep map[string]bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for key, s := range ss.open {
		if !keep[key] {
			delete(ss.open, key)
			s.shutdown()
		}
	}
}

// closeAll stops accepting on every socket, for a process that stops or
// has handed its sockets to a new process (which keeps its copies open).
func (ss *sockets) closeAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for key, s := range ss.open {
		delete(ss.open, key)
		s.close()
	}
	for _, ln := range ss.systemd {
		ln.Close()
	}
	ss.systemd = nil
}

// socketInfo is what status shows of a socket.
type socketInfo struct {
	name  string
	bound net.Addr
	stats *socketStats
}

// list describes the open sockets.
func (ss *sockets) list() []socketInfo {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]socketInfo, 0, len(ss.open))
	for _, s := range ss.open {
		out = append(out, socketInfo{name: s.name, bound: s.ln.Addr(), stats: &s.stats})
	}
	return out
}

func (s *socket) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			select {
			case <-s.closed:
				return
			default:
			}
			if isTemporary(err) { // out of file descriptors: back off as http.Server does
				sleepBackoff()
				continue
			}
			s.close()
			return
		}
		s.stats.active.Add(1)
		s.stats.total.Add(1)
		cc := &countedConn{Conn: c, stats: &s.stats}
		select {
		case s.conns <- cc:
		case <-s.closed:
			cc.Close()
			return
		}
	}
}

// close stops accepting; connections already accepted are not touched.
func (s *socket) close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.ln.Close()
	})
}

// shutdown stops the socket listening even where another descriptor of
// it is open (tableflip keeps one to hand over on an upgrade): without
// it a dropped port would go on completing TCP handshakes that nobody
// accepts.
func (s *socket) shutdown() {
	if sc, ok := s.ln.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_RD) })
		}
	}
	s.close()
}

// view returns a listener that accepts the socket's connections until
// it is closed. Closing a view leaves the socket open.
func (s *socket) view() *view { return &view{s: s, done: make(chan struct{})} }

// view is one server's share of a socket.
type view struct {
	s    *socket
	done chan struct{}
	once sync.Once
}

func (v *view) Accept() (net.Conn, error) {
	select {
	case <-v.done:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-v.s.conns:
		select {
		case <-v.done: // closed meanwhile: the next view serves it
			go v.s.redeliver(c)
			return nil, net.ErrClosed
		default:
			return c, nil
		}
	case <-v.done:
		return nil, net.ErrClosed
	case <-v.s.closed:
		return nil, net.ErrClosed
	}
}

func (s *socket) redeliver(c net.Conn) {
	select {
	case s.conns <- c:
	case <-s.closed:
		c.Close()
	}
}

func (v *view) Close() error {
	v.once.Do(func() { close(v.done) })
	return nil
}

func (v *view) Addr() net.Addr { return v.s.ln.Addr() }

// countedConn counts a connection's bytes and its end in its socket's
// statistics.
type countedConn struct {
	net.Conn
	stats  *socketStats
	closed atomic.Bool
}

func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.stats.bytesIn.Add(int64(n))
	}
	return n, err
}

func (c *countedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.stats.bytesOut.Add(int64(n))
	}
	return n, err
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.stats.active.Add(-1)
	}
	return c.Conn.Close()
}

// CloseWrite half-closes a TCP connection, as the gateway does before it
// drops a client that broke a limit.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// lookup returns the open socket of the listener name on addr, or nil.
func (ss *sockets) lookup(name, addr string) *socket {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.open[socketKey(name, addr)]
}

// addr returns the bound address of the listener name on addr, or nil.
func (ss *sockets) addr(name, addr string) net.Addr {
	if s := ss.lookup(name, addr); s != nil {
		return s.ln.Addr()
	}
	return nil
}

// remove closes s, which this process opened and nobody else has.
func (ss *sockets) remove(s *socket) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.open[s.key] == s {
		delete(ss.open, s.key)
	}
	s.shutdown()
}

// isTemporary reports whether an accept error passes: the process or
// system is out of file descriptors, or a client gave up before accept.
func isTemporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// sleepBackoff waits before the next accept after a temporary error.
func sleepBackoff() { time.Sleep(50 * time.Millisecond) }
