package gateway

import (
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller tells the hub which connections have something to read, so that
// an idle connection needs no goroutine: no reader's stack, which was
// most of an idle connection's memory. It is the design of gobwas/ws and
// mailru/easygo ("a million WebSockets"), with one change: the epoll
// instance is itself registered with the Go runtime's netpoller (an
// epoll descriptor polls as readable when it has events), so that the
// goroutine waiting on it parks like any network read instead of
// holding a thread and, with GOMAXPROCS=1, the only P in epoll_wait.
//
// Each connection is registered edge-triggered for input; an event
// calls its client's readable, which runs a burst of reads on a
// goroutine of its own (see client.readable). The poller's goroutine
// runs only while a connection is registered: the first add starts it,
// and the last remove ends it and waits for it.
type poller struct {
	mu      sync.Mutex
	ep      *os.File // the epoll instance; nil while nothing is registered
	done    chan struct{}
	clients map[int32]*client // by the key in their events
	next    int32
}

// add registers c's socket. An error means c must be read by a goroutine
// of its own.
func (p *poller) add(c *client) error {
	fd := c.sock.fd()
	if fd < 0 {
		return fmt.Errorf("gateway: poller: connection closed")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ep == nil {
		if err := p.startLocked(); err != nil {
			return err
		}
	}
	key := p.next
	for p.clients[key] != nil {
		key++
	}
	p.next = key + 1
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: key}
	if err := p.ctl(unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.stopIfIdleLocked()
		return fmt.Errorf("gateway: poller: add: %w", err)
	}
	p.clients[key] = c
	c.pollKey = key
	return nil
}

// remove unregisters c, which has stopped reading. When c was the last,
// it ends the poller's goroutine and waits for it.
func (p *poller) remove(c *client) {
	p.mu.Lock()
	if p.clients[c.pollKey] != c {
		p.mu.Unlock()
		return
	}
	delete(p.clients, c.pollKey)
	if fd := c.sock.fd(); fd >= 0 {
		p.ctl(unix.EPOLL_CTL_DEL, fd, nil)
	}
	done := p.stopIfIdleLocked()
	p.mu.Unlock()
	if done != nil {
		<-done
	}
}

// ctl runs epoll_ctl on the instance; p.mu is held.
func (p *poller) ctl(op, fd int, ev *unix.EpollEvent) error {
	var err error
	rc, rerr := p.ep.SyscallConn()
	if rerr != nil {
		return rerr
	}
	if cerr := rc.Control(func(ep uintptr) { err = unix.EpollCtl(int(ep), op, fd, ev) }); cerr != nil {
		return cerr
	}
	return err
}

// startLocked makes the epoll instance and starts the goroutine that
// waits on it; p.mu is held.
func (p *poller) startLocked() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("gateway: poller: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return fmt.Errorf("gateway: poller: %w", err)
	}
	// Non-blocking, NewFile registers it with the runtime's netpoller.
	ep := os.NewFile(uintptr(epfd), "gateway-epoll")
	rc, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return fmt.Errorf("gateway: poller: %w", err)
	}
	if p.clients == nil {
		p.clients = make(map[int32]*client)
	}
	p.ep, p.done = ep, make(chan struct{})
	go p.run(rc, p.done)
	return nil
}

// stopIfIdleLocked closes the epoll instance when nothing is registered,
// which ends its goroutine, and returns the channel that closes when it
// has; nil when it still runs. p.mu is held.
func (p *poller) stopIfIdleLocked() chan struct{} {
	if len(p.clients) > 0 || p.ep == nil {
		return nil
	}
	p.ep.Close() // wakes the goroutine, whose read fails
	done := p.done
	p.ep, p.done = nil, nil
	return done
}

// run waits on the epoll instance behind rc until it is closed, and
// tells each client with an event that it is readable. The owner of the
// instance (the last remove) waits for it through done.
func (p *poller) run(rc syscall.RawConn, done chan struct{}) {
	defer close(done)
	events := make([]unix.EpollEvent, 256)
	var n int
	var werr error
	wait := func(ep uintptr) bool {
		for {
			k, err := unix.EpollWait(int(ep), events, 0)
			switch {
			case err == unix.EINTR:
				continue
			case err != nil:
				werr = err
				return true
			case k == 0:
				return false // park until the instance has events
			}
			n = k
			return true
		}
	}
	type event struct {
		c   *client
		hup bool
	}
	var ready []event
	for {
		if err := rc.Read(wait); err != nil || werr != nil {
			return // closed
		}
		p.mu.Lock()
		for _, ev := range events[:n] {
			if c := p.clients[ev.Fd]; c != nil {
				ready = append(ready, event{c, ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0})
			}
		}
		p.mu.Unlock()
		for _, e := range ready {
			e.c.readable(e.hup)
		}
		clear(ready)
		ready = ready[:0]
	}
}
