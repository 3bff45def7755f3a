package gateway

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sync"
)

// A client id is 20 hex digits, as in GatewayWorker: the node's IPv4
// address (8 digits), the node's port (4) and a connection counter (8,
// from 1), so that an id names the node that holds the connection.
const idLen = 20

// ParseClientID decodes a client id into the node address and the
// connection counter it was made from.
func ParseClientID(id string) (node netip.AddrPort, counter uint32, err error) {
	if len(id) != idLen {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: %q is not %d hex digits", ErrBadClientID, id, idLen)
	}
	var b [idLen / 2]byte
	if _, err := hex.Decode(b[:], []byte(id)); err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: %q: %w", ErrBadClientID, id, err)
	}
	ip := netip.AddrFrom4([4]byte(b[0:4]))
	port := binary.BigEndian.Uint16(b[4:6])
	return netip.AddrPortFrom(ip, port), binary.BigEndian.Uint32(b[6:10]), nil
}

// idGen makes client ids for one node. As in GatewayWorker, the counter
// starts at 1 and skips 0 when it wraps at 2³²; an id still held by a
// connection is skipped too.
type idGen struct {
	mu     sync.Mutex
	prefix [6]byte // node IPv4 and port
	next   uint32
}

// newIDGen returns the generator of node's ids; its first counter is
// start, or 1 when start is 0.
func newIDGen(node netip.AddrPort, start uint32) *idGen {
	g := &idGen{next: max(start, 1)}
	ip := node.Addr().Unmap()
	if !ip.Is4() {
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	a := ip.As4()
	copy(g.prefix[:4], a[:])
	binary.BigEndian.PutUint16(g.prefix[4:], node.Port())
	return g
}

// newID returns the next id for which inUse reports false. It gives up
// (returning "") only when all 2³²-1 counter values are in use, which
// the open-file limit makes impossible.
func (g *idGen) newID(inUse func(string) bool) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var b [idLen / 2]byte
	copy(b[:6], g.prefix[:])
	for range 1 << 32 {
		n := g.next
		g.next++
		if n == 0 {
			continue // never a connection id, as in GatewayWorker
		}
		binary.BigEndian.PutUint32(b[6:], n)
		id := hex.EncodeToString(b[:])
		if !inUse(id) {
			return id
		}
	}
	return ""
}
