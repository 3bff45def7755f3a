package proxy

import "sync/atomic"

// relayCounters are the live traffic counters of a route's streams and
// responses, added to as bytes pass: one atomic add per read chunk and
// direction for bytes, one for the messages it completed.
type relayCounters struct {
	in  dirCounters // client to upstream
	out dirCounters // upstream to client
	// sendFail counts streams and responses cut by a write toward a peer
	// that failed or made no progress within send_timeout.
	sendFail atomic.Int64
}

// dirCounters count the traffic of one direction. Each direction has a
// cache line of its own, so that the two forwarders of a stream, on two
// goroutines, do not contend for one.
type dirCounters struct {
	bytes    atomic.Int64 // relayed as on the wire: frame headers included
	messages atomic.Int64 // complete data messages
	_        [cacheLineSize - 16]byte
}

// cacheLineSize is the cache line size of common CPUs (amd64, arm64).
const cacheLineSize = 64
