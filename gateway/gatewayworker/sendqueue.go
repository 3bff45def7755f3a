package gatewayworker

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// writeTimeout bounds one write to a peer (a Register peer, a
// BusinessWorker or GatewayClient connection): a peer that takes nothing
// for that long is dropped.
const writeTimeout = 10 * time.Second

// sendQueue writes to one connection through a bounded queue and a
// writer goroutine of its own, so that a slow peer never holds up the
// goroutine that sends to it. When more than limit bytes wait, a send
// is dropped (dropWhenFull, as workerman drops data over a connection's
// maxSendBufferSize) or the connection is closed.
type sendQueue struct {
	nc           net.Conn
	limit        int
	dropWhenFull bool
	dropped      atomic.Int64

	mu     sync.Mutex
	q      [][]byte
	queued int  // bytes in q
	shut   bool // no more sends
	wake   chan struct{}
	done   chan struct{} // closed when the writer has ended
	once   sync.Once
}

func newSendQueue(nc net.Conn, limit int, dropWhenFull bool) *sendQueue {
	s := &sendQueue{nc: nc, limit: limit, dropWhenFull: dropWhenFull, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.writeLoop()
	return s
}

// send queues b, which must not change afterwards. It reports whether b
// was queued.
func (s *sendQueue) send(b []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return false
	}
	if s.queued+len(b) > s.limit && s.queued > 0 {
		s.dropped.Add(1)
		if !s.dropWhenFull {
			s.shut = true
			s.q = nil
			go s.nc.Close()
		}
		return false
	}
	s.q = append(s.q, b)
	s.queued += len(b)
	s.poke()
	return true
}

func (s *sendQueue) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// closeAfterSends makes the writer close the connection once what is
// queued is written.
func (s *sendQueue) closeAfterSends() {
	s.mu.Lock()
	s.shut = true
	s.poke()
	s.mu.Unlock()
}

// close drops what is queued and closes the connection at once.
func (s *sendQueue) close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.shut = true
		s.q = nil
		s.poke()
		s.mu.Unlock()
		s.nc.Close()
	})
}

// wait returns when the writer has ended.
func (s *sendQueue) wait() { <-s.done }

func (s *sendQueue) writeLoop() {
	defer close(s.done)
	for {
		s.mu.Lock()
		q, shut := s.q, s.shut
		s.q, s.queued = nil, 0
		s.mu.Unlock()
		if len(q) > 0 {
			s.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			bufs := net.Buffers(q)
			if _, err := bufs.WriteTo(s.nc); err != nil {
				s.close()
				return
			}
			continue // look again before sleeping or closing
		}
		if shut {
			s.nc.Close()
			return
		}
		<-s.wake
	}
}
