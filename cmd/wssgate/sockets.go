package main

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// listenSource opens listening sockets. The production source is the
// process's handoff, which gives a process started by an upgrade the
// sockets its parent handed it; tests use plain net.Listen.
type listenSource interface {
	// Listen returns the socket the previous process handed over under
	// key, or opens one on addr.
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
//
// Each socket is one descriptor in this process, so closing it frees
// the address; a binary upgrade hands the new process descriptors of
// its own (see handoff).
type sockets struct {
	src     listenSource
	systemd []net.Listener                     // from LISTEN_FDS, not yet claimed
	failed  func(name, addr string, err error) // told when a socket's accept fails for good; may be nil

	mu   sync.Mutex
	open map[string]*socket // by socketKey
}

// newSockets opens sockets through src (nil: net.Listen), taking those
// systemd passed first, and tells failed (which may be nil) when one
// stops accepting for good.
func newSockets(src listenSource, systemd []net.Listener, failed func(name, addr string, err error)) *sockets {
	if src == nil {
		src = netListen{}
	}
	return &sockets{src: src, systemd: systemd, failed: failed, open: map[string]*socket{}}
}

// socket is one listening socket. One goroutine accepts on it and hands
// each connection to whichever view asks next.
//
// It ends in two steps. stopAccepting closes the descriptor: no new
// connection, and the accept goroutine returns once the connection it
// holds, if any, is handed to a view; a process that stops or hands its
// sockets to a new one does this first, while its servers still run, so
// that no connection the kernel gave it is dropped. release then lets go
// of the views, closing any connection nobody took.
type socket struct {
	name, addr string
	key        string // socketKey
	ln         net.Listener
	conns      chan net.Conn
	stopping   chan struct{} // closed by stopAccepting
	accepting  chan struct{} // closed when the accept goroutine returns
	gone       chan struct{} // closed by release, or when the socket fails
	stopOnce   sync.Once
	goneOnce   sync.Once
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
	if ln == nil {
		if ln, err = ss.src.Listen(key, addr); err != nil {
			return nil, false, err
		}
	}
	s = &socket{name: name, addr: addr, key: key, ln: ln, conns: make(chan net.Conn),
		stopping: make(chan struct{}), accepting: make(chan struct{}), gone: make(chan struct{})}
	ss.open[key] = s
	go s.accept(ss.failed)
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

// drop closes the sockets whose keys are not in keep, for a reload:
// their addresses stop accepting at once.
func (ss *sockets) drop(keep map[string]bool) {
	ss.mu.Lock()
	var gone []*socket
	for key, s := range ss.open {
		if !keep[key] {
			delete(ss.open, key)
			gone = append(gone, s)
		}
	}
	ss.mu.Unlock()
	for _, s := range gone {
		s.release()
	}
}

// remove closes s, which a failed reload opened.
func (ss *sockets) remove(s *socket) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.open[s.key] == s {
		delete(ss.open, s.key)
	}
	s.release()
}

// quiesce stops every socket accepting and waits (up to wait) until
// each has handed the connection it held to a server: for a process
// that stops or has handed its sockets to a new process. The servers
// must still be running.
func (ss *sockets) quiesce(wait time.Duration) {
	ss.mu.Lock()
	open := make([]*socket, 0, len(ss.open))
	for _, s := range ss.open {
		open = append(open, s)
	}
	ss.mu.Unlock()
	for _, s := range open {
		s.stopAccepting()
	}
	deadline := time.After(wait)
	for _, s := range open {
		select {
		case <-s.accepting:
		case <-deadline:
			return
		}
	}
}

// closeAll releases every socket, and the sockets systemd passed that no
// listener claimed.
func (ss *sockets) closeAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for key, s := range ss.open {
		delete(ss.open, key)
		s.release()
	}
	ss.closeUnclaimedLocked()
}

// closeUnclaimed closes the sockets systemd passed that no configured
// address uses: nobody would accept on them.
func (ss *sockets) closeUnclaimed() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closeUnclaimedLocked()
}

func (ss *sockets) closeUnclaimedLocked() {
	for _, ln := range ss.systemd {
		ln.Close()
	}
	ss.systemd = nil
}

// listeners returns the open sockets by key, to hand to a new process.
func (ss *sockets) listeners() map[string]net.Listener {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make(map[string]net.Listener, len(ss.open))
	for key, s := range ss.open {
		out[key] = s.ln
	}
	return out
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

func (s *socket) accept(failed func(name, addr string, err error)) {
	defer close(s.accepting)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			select {
			case <-s.stopping:
				return
			default:
			}
			if isTemporary(err) { // out of file descriptors: back off as http.Server does
				sleepBackoff()
				continue
			}
			if failed != nil { // first, so that the errno is what the server reports
				failed(s.name, s.addr, err)
			}
			s.release() // the socket failed: its servers stop
			return
		}
		s.stats.active.Add(1)
		s.stats.total.Add(1)
		cc := &countedConn{Conn: c, stats: &s.stats}
		select {
		case s.conns <- cc:
		case <-s.gone:
			cc.Close()
			return
		}
	}
}

// stopAccepting closes the socket's descriptor; connections already
// accepted still go to the views.
func (s *socket) stopAccepting() {
	s.stopOnce.Do(func() {
		close(s.stopping)
		s.ln.Close()
	})
}

// release stops accepting and ends the views: a connection still
// waiting for one is closed.
func (s *socket) release() {
	s.stopAccepting()
	s.goneOnce.Do(func() { close(s.gone) })
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
	case <-v.s.gone:
		return nil, net.ErrClosed
	}
}

func (s *socket) redeliver(c net.Conn) {
	select {
	case s.conns <- c:
	case <-s.gone:
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

// sleepBackoff waits before the next accept after a temporary error.
func sleepBackoff() { time.Sleep(50 * time.Millisecond) }
