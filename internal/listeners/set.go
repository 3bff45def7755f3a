package listeners

import (
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Source opens listening sockets. The production source is a
// [Handoff], which gives a process started by a binary upgrade the
// sockets its parent handed it.
type Source interface {
	// Listen returns the socket handed over under id, or opens one on
	// addr.
	Listen(id, addr string) (net.Listener, error)
}

// NetListen is the Source of a process that cannot be upgraded: it
// opens every socket with net.Listen.
type NetListen struct{}

// Listen opens a TCP socket on addr.
func (NetListen) Listen(_, addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// ID names the socket of the listener called name on addr: the address
// itself, or, for port 0 (any free port, in tests), the address and the
// name, so that two such listeners get two sockets and a reload keeps
// each. A [Handoff] passes sockets under their ids.
func ID(name, addr string) string {
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		return addr + "#" + name
	}
	return addr
}

// FailFunc is told when a socket's accept fails for good; the socket is
// closed then, and its listeners return errors.
type FailFunc func(name, addr string, err error)

// Options configure a [Set]. The zero value opens sockets with
// net.Listen, bounds nothing and logs nothing.
type Options struct {
	// Source opens sockets; nil is [NetListen].
	Source Source
	// Activated are sockets systemd passed (see [Activated]), used for
	// the configured addresses they are bound to before Source is asked.
	Activated []net.Listener
	// Failed is told when a socket stops accepting for good; nil is
	// told nothing.
	Failed FailFunc
	// Logger is told, once per episode, when a socket stops accepting
	// because its cap or the budget is reached, and when accept runs
	// out of file descriptors. Nil discards.
	Logger *slog.Logger
}

// Set owns a process's listening sockets, one per configured address,
// for as long as the configuration keeps the address: a reload that
// keeps an address keeps its socket (and the connections waiting in its
// backlog), one that drops it closes it, and one that adds an address
// opens it.
//
// Each socket is one descriptor in this process, so closing it frees
// the address; a binary upgrade hands the new process descriptors of
// its own. Each socket has one accept goroutine, owned by the Set:
// [Set.CloseAll] waits for all of them.
//
// The Set also bounds how many connections its sockets hold open at
// once: a process-wide budget ([Set.SetBudget]) and a cap per socket
// ([Socket.SetCap]), counted from accept until the connection is
// closed, TLS handshake included. A socket at its cap, or any socket
// when the budget is spent, stops calling accept until a connection
// closes: new connections wait in the kernel's backlog, which costs
// this process no descriptor, rather than being accepted and closed,
// which would cost one for each and tell a flood to retry at once.
type Set struct {
	src       Source
	activated []net.Listener // from systemd, not yet claimed
	failed    FailFunc       // may be nil
	log       *slog.Logger
	wg        sync.WaitGroup // accept and redelivery goroutines
	goMu      sync.Mutex     // guards closed, so that no goroutine starts while CloseAll waits
	closed    bool

	budget budget

	mu   sync.Mutex
	open map[string]*Socket // by ID
}

// NewSet returns a Set with opts.
func NewSet(opts Options) *Set {
	src := opts.Source
	if src == nil {
		src = NetListen{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Set{src: src, activated: opts.Activated, failed: opts.Failed, log: log,
		open: map[string]*Socket{}, budget: budget{wake: make(chan struct{})}}
}

// Open returns the socket of the listener called name on addr, opening
// it when it is not open yet; opened reports whether Open opened it.
// name says what the socket is for ("https", "admin", ...) in messages
// and statistics.
func (ss *Set) Open(name, addr string) (s *Socket, opened bool, err error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	id := ID(name, addr)
	if s := ss.open[id]; s != nil {
		s.name.Store(&name)
		return s, false, nil
	}
	ln := ss.claimActivated(addr)
	if ln == nil {
		if ln, err = ss.src.Listen(id, addr); err != nil {
			return nil, false, err
		}
	}
	s = newSocket(name, addr, id, ln, ss)
	if !ss.spawn(func() { s.accept(ss.failed) }) {
		ln.Close()
		return nil, false, net.ErrClosed
	}
	ss.open[id] = s
	return s, true, nil
}

// spawn runs f on a goroutine CloseAll waits for, unless the Set is
// closed; it reports whether f runs.
func (ss *Set) spawn(f func()) bool {
	ss.goMu.Lock()
	defer ss.goMu.Unlock()
	if ss.closed {
		return false
	}
	ss.wg.Go(f)
	return true
}

// claimActivated returns the socket-activated listener bound to addr,
// if systemd passed one. The caller holds ss.mu.
func (ss *Set) claimActivated(addr string) net.Listener {
	for i, ln := range ss.activated {
		if sameAddr(ln.Addr(), addr) {
			ss.activated = append(ss.activated[:i], ss.activated[i+1:]...)
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

// Lookup returns the open socket of the listener called name on addr,
// or nil.
func (ss *Set) Lookup(name, addr string) *Socket {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.open[ID(name, addr)]
}

// Addr returns the bound address of the listener called name on addr,
// or nil when its socket is not open.
func (ss *Set) Addr(name, addr string) net.Addr {
	if s := ss.Lookup(name, addr); s != nil {
		return s.Addr()
	}
	return nil
}

// Keep closes the sockets whose ids are not in ids, for a reload: their
// addresses stop accepting at once.
func (ss *Set) Keep(ids map[string]bool) {
	ss.mu.Lock()
	var gone []*Socket
	for id, s := range ss.open {
		if !ids[id] {
			delete(ss.open, id)
			gone = append(gone, s)
		}
	}
	ss.mu.Unlock()
	for _, s := range gone {
		s.release()
	}
}

// Remove closes s, which a failed reload opened.
func (ss *Set) Remove(s *Socket) {
	ss.mu.Lock()
	if ss.open[s.id] == s {
		delete(ss.open, s.id)
	}
	ss.mu.Unlock()
	s.release()
}

// Quiesce stops every socket accepting and waits (up to wait) until
// each has handed the connection it held to a server: for a process
// that stops, or that has handed its sockets to a new process. The
// servers must still be running.
func (ss *Set) Quiesce(wait time.Duration) {
	open := ss.sockets()
	for _, s := range open {
		s.stopAccepting()
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for _, s := range open {
		select {
		case <-s.accepting:
		case <-deadline.C:
			return
		}
	}
}

// CloseAll closes every socket, and the activated sockets no listener
// claimed, and waits until every accept goroutine has returned. The Set
// opens nothing after it.
func (ss *Set) CloseAll() {
	ss.mu.Lock()
	open := make([]*Socket, 0, len(ss.open))
	for id, s := range ss.open {
		delete(ss.open, id)
		open = append(open, s)
	}
	ss.closeUnclaimedLocked()
	ss.mu.Unlock()
	for _, s := range open {
		s.release()
	}
	ss.goMu.Lock()
	ss.closed = true
	ss.goMu.Unlock()
	ss.wg.Wait()
}

// CloseUnclaimed closes the activated sockets that no configured
// address uses: nobody would accept on them.
func (ss *Set) CloseUnclaimed() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closeUnclaimedLocked()
}

func (ss *Set) closeUnclaimedLocked() {
	for _, ln := range ss.activated {
		ln.Close()
	}
	ss.activated = nil
}

// Listeners returns the open sockets by id, to hand to a new process.
func (ss *Set) Listeners() map[string]net.Listener {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make(map[string]net.Listener, len(ss.open))
	for id, s := range ss.open {
		out[id] = s.ln
	}
	return out
}

// Info describes an open socket, for status.
type Info struct {
	Name  string   // what it is for: "https", "admin", ...
	Bound net.Addr // the address it is bound to
	Stats Stats
}

// List describes the open sockets.
func (ss *Set) List() []Info {
	open := ss.sockets()
	out := make([]Info, 0, len(open))
	for _, s := range open {
		out = append(out, Info{Name: s.Name(), Bound: s.Addr(), Stats: s.Stats()})
	}
	return out
}

// logStarved logs, once per episode of s, that accept ran out of file
// descriptors, with what every socket holds open then.
func (ss *Set) logStarved(s *Socket, err error) {
	args := []any{"listener", s.Name(), "addr", s.addr, "err", err}
	for _, o := range ss.sockets() {
		args = append(args, "open_"+o.Name(), o.stats.active.Load())
	}
	limit, open := ss.Budget()
	args = append(args, "open_all", open, "budget", limit)
	ss.log.Error("out of file descriptors: the listener cannot accept; raise the open-file limit (systemd LimitNOFILE, ulimit -n) or lower the listeners' caps", args...)
}

// sockets returns the open sockets.
func (ss *Set) sockets() []*Socket {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]*Socket, 0, len(ss.open))
	for _, s := range ss.open {
		out = append(out, s)
	}
	return out
}
