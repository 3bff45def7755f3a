package listeners

import (
	"sync"
)

// budget counts the connections a Set's sockets hold open, against a
// limit shared by all of them and each socket's own cap.
type budget struct {
	mu      sync.Mutex
	limit   int64         // 0: no process-wide limit
	open    int64         // connections open over every socket
	waiters int           // accept loops waiting for a slot
	wake    chan struct{} // closed, and replaced, when a slot frees while someone waits
}

// SetBudget bounds the connections all sockets hold open at once to n;
// 0 or less removes the bound. Connections already open stay open: a
// lower budget only holds new ones back.
func (ss *Set) SetBudget(n int) {
	b := &ss.budget
	b.mu.Lock()
	b.limit = max(int64(n), 0)
	b.wakeLocked()
	b.mu.Unlock()
}

// Budget returns the bound SetBudget set (0 when none) and how many
// connections are open over every socket now.
func (ss *Set) Budget() (limit, open int64) {
	b := &ss.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit, b.open
}

// SetCap bounds the connections s holds open at once to n, within the
// Set's budget; 0 or less leaves only the budget.
func (s *Socket) SetCap(n int) {
	b := &s.owner.budget
	b.mu.Lock()
	s.cap = max(int64(n), 0)
	b.wakeLocked()
	b.mu.Unlock()
}

// take claims a slot for one connection of s, waiting while s is at its
// cap or the budget is spent; false when s stops accepting first. The
// first wait of an episode is logged and counted.
func (s *Socket) take() bool {
	b := &s.owner.budget
	b.mu.Lock()
	for {
		full := b.limit > 0 && b.open >= b.limit
		capped := s.cap > 0 && s.held >= s.cap
		if !full && !capped {
			b.open++
			s.held++
			b.mu.Unlock()
			if s.paused.Swap(false) {
				s.owner.log.Info("listener accepts again", "listener", s.Name(), "addr", s.addr)
			}
			return true
		}
		if !s.paused.Swap(true) {
			s.stats.pauses.Add(1)
			why := "its connection cap"
			if full {
				why = "the process's connection budget"
			}
			s.owner.log.Warn("listener at "+why+"; new connections wait in the kernel backlog",
				"listener", s.Name(), "addr", s.addr, "open", s.held, "cap", s.cap,
				"open_all", b.open, "budget", b.limit)
		}
		b.waiters++
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-s.stopping:
			b.mu.Lock()
			b.waiters--
			b.mu.Unlock()
			return false
		}
		b.mu.Lock()
		b.waiters--
	}
}

// give returns the slot of one connection of s.
func (s *Socket) give() {
	b := &s.owner.budget
	b.mu.Lock()
	b.open--
	s.held--
	b.wakeLocked()
	b.mu.Unlock()
}

// wakeLocked wakes the accept loops waiting for a slot, if any. The
// caller holds b.mu.
func (b *budget) wakeLocked() {
	if b.waiters > 0 {
		close(b.wake)
		b.wake = make(chan struct{})
	}
}
