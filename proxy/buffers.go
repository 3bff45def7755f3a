package proxy

import "sync"

// Relay buffer sizes.
const (
	// smallBufSize is the size of the read buffer every direction has,
	// used while its traffic is light: the first wsframe.MaxHeldLen bytes
	// are room for held bytes, the rest, 885 bytes, is read into. It is
	// part of every stream, so it is kept small.
	smallBufSize = 1024
	// largeBufSize is the size of the pooled buffers a direction reads
	// into while a read fills the small buffer (the same room included).
	largeBufSize = 32 << 10
)

// bufferPool is a pool of large relay buffers shared by the streams of a
// Proxy. A stream takes one only while its reads fill the small buffer it
// always has, and gives it back when they drain. The zero value is ready
// to use.
type bufferPool struct {
	pool sync.Pool // of *[]byte, each largeBufSize long
}

// newBufferPool returns an empty pool.
func newBufferPool() *bufferPool { return new(bufferPool) }

// get returns a buffer of largeBufSize bytes.
func (p *bufferPool) get() *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, largeBufSize)
	return &b
}

// put returns b to the pool.
func (p *bufferPool) put(b *[]byte) { p.pool.Put(b) }

// Get returns a buffer of largeBufSize bytes. With Put it makes the pool
// an httputil.BufferPool, so that plain HTTP proxying shares its buffers.
func (p *bufferPool) Get() []byte { return *p.get() }

// Put returns a buffer obtained from Get. Buffers shorter than
// largeBufSize are dropped.
func (p *bufferPool) Put(b []byte) {
	if cap(b) >= largeBufSize {
		b = b[:largeBufSize]
		p.put(&b)
	}
}
