package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wssgate/wssgate/internal/wsframe"
)

// The gateway benchmark's client speaks the wire itself: a WebSocket
// handshake written by hand and frames read with wsframe.Parser, so that
// a connection costs the client one goroutine and a small buffer, and
// the client keeps up with the server it measures on a CPU of its own.

// Gateway client timings.
const (
	gwDialTimeout      = 5 * time.Second
	gwHandshakeTimeout = 10 * time.Second
	gwBroadcastTimeout = 5 * time.Second // a broadcast not everywhere by then counts its missing deliveries as lost
	gwReadBuffer       = 512             // per receiving connection
)

// wsKey and wsAccept are a fixed handshake key and the answer RFC 6455
// requires for it (its §1.3 example): the server does not care which key
// a client sends, and checking a constant answer costs nothing.
const (
	wsKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	wsAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// gwDialer opens the benchmark's connections to one listener, from its
// source addresses in turn.
type gwDialer struct {
	addr    string       // host:port
	host    string       // Host header and TLS server name
	tls     *tls.Config  // nil: plain ws
	sources []netip.Addr // empty: the kernel's choice
	next    atomic.Uint64
}

// dialTCP connects from the next source address.
func (d *gwDialer) dialTCP(ctx context.Context) (net.Conn, error) {
	nd := net.Dialer{Timeout: gwDialTimeout}
	if len(d.sources) > 0 {
		src := d.sources[(d.next.Add(1)-1)%uint64(len(d.sources))]
		nd.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	return nd.DialContext(ctx, "tcp", d.addr)
}

// dialWS opens a WebSocket to path and returns it with the bytes that
// came after the server's handshake answer (none, from a well-behaved
// server that has nothing to send yet).
func (d *gwDialer) dialWS(ctx context.Context, path string) (net.Conn, []byte, error) {
	nc, err := d.dialTCP(ctx)
	if err != nil {
		return nil, nil, err
	}
	if d.tls != nil {
		tc := tls.Client(nc, d.tls)
		hctx, cancel := context.WithTimeout(ctx, gwHandshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("tls: %w", err)
		}
		nc = tc
	}
	rest, err := wsHandshake(nc, d.host, path)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, rest, nil
}

// wsHandshake sends the upgrade request for path and reads the 101
// answer, within gwHandshakeTimeout. It returns the bytes read past the
// answer.
func wsHandshake(nc net.Conn, host, path string) ([]byte, error) {
	nc.SetDeadline(time.Now().Add(gwHandshakeTimeout))
	defer nc.SetDeadline(time.Time{})
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + wsKey +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	buf := make([]byte, 0, 1024)
	for {
		if len(buf) == cap(buf) {
			return nil, errors.New("handshake: answer longer than 1 KiB")
		}
		n, err := nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if end := bytes.Index(buf, []byte("\r\n\r\n")); end >= 0 {
			head := buf[:end]
			if !bytes.HasPrefix(head, []byte("HTTP/1.1 101 ")) {
				line, _, _ := bytes.Cut(head, []byte("\r\n"))
				return nil, fmt.Errorf("handshake: got %q, want 101", line)
			}
			if !bytes.Contains(bytes.ToLower(head), []byte("\r\nsec-websocket-accept: "+string(bytes.ToLower([]byte(wsAccept))))) {
				return nil, errors.New("handshake: wrong or missing Sec-WebSocket-Accept")
			}
			return bytes.Clone(buf[end+4:]), nil
		}
		if err != nil {
			return nil, fmt.Errorf("handshake: %w", err)
		}
	}
}

// dialMany opens n connections with dial, par at a time, and closes what
// it opened if one fails or ctx ends.
func dialMany[T any](ctx context.Context, n, par int, dial func(ctx context.Context, i int) (T, error), closeOne func(T)) ([]T, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	out := make([]T, n)
	ok := make([]bool, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(par, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := dial(ctx, i)
				if err != nil {
					cancel(fmt.Errorf("connection %d: %w", i, err))
					return
				}
				out[i], ok[i] = c, true
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		for i, c := range out {
			if ok[i] {
				closeOne(c)
			}
		}
		return nil, err
	}
	return out, nil
}

// maskedFrame returns a client's text frame carrying payload, masked as
// RFC 6455 requires of clients.
func maskedFrame(payload []byte) []byte {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	f := wsframe.AppendHeader(nil, wsframe.Header{Fin: true, Opcode: wsframe.OpText, Masked: true, Key: key, Length: uint64(len(payload))})
	start := len(f)
	f = append(f, payload...)
	wsframe.Mask(key, f[start:])
	return f
}

// broadcastPayload is broadcast number seq, padded with 'x' to size
// bytes: "b <seq> xxxx...".
func broadcastPayload(seq, size int) []byte {
	p := fmt.Appendf(nil, "b %d ", seq)
	for len(p) < size {
		p = append(p, 'x')
	}
	return p
}

// parseSeq returns the number of a broadcast payload's prefix, or -1.
func parseSeq(prefix []byte) int {
	rest, ok := bytes.CutPrefix(prefix, []byte("b "))
	if !ok {
		return -1
	}
	digits, _, _ := bytes.Cut(rest, []byte(" "))
	n, err := strconv.Atoi(string(digits))
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// receiver records, for every connection of a phase, when each broadcast
// reached it.
type receiver struct {
	n     int
	epoch time.Time
	at    []atomic.Int64 // [seq*n + conn]: nanoseconds after epoch when it arrived; 0 = not yet
	got   []atomic.Int32 // per broadcast: connections that have it
	all   []chan struct{}
	stray atomic.Int64 // messages that were no broadcast of this phase, or repeats
	wg    sync.WaitGroup
}

func newReceiver(n, k int) *receiver {
	r := &receiver{n: n, epoch: time.Now(), at: make([]atomic.Int64, n*k), got: make([]atomic.Int32, k), all: make([]chan struct{}, k)}
	for i := range r.all {
		r.all[i] = make(chan struct{})
	}
	return r
}

// now is the time since r.epoch, at least 1 ns.
func (r *receiver) now() int64 { return max(1, int64(time.Since(r.epoch))) }

// start reads connection i until it fails or closes; rest is what the
// handshake read past its answer.
func (r *receiver) start(i int, nc net.Conn, rest []byte) {
	r.wg.Go(func() { r.read(i, nc, rest) })
}

func (r *receiver) read(i int, nc net.Conn, rest []byte) {
	var p wsframe.Parser
	var prefix [24]byte
	plen := 0
	var left uint64 // payload bytes of the current frame still to come
	deliver := func() {
		seq := parseSeq(prefix[:plen])
		if seq < 0 || seq >= len(r.got) || !r.at[seq*r.n+i].CompareAndSwap(0, r.now()) {
			r.stray.Add(1)
			return
		}
		if r.got[seq].Add(1) == int32(r.n) {
			close(r.all[seq])
		}
	}
	consume := func(b []byte) bool {
		for len(b) > 0 {
			n, ev := p.Parse(b)
			chunk := b[:n]
			b = b[n:]
			h := p.Header()
			switch ev {
			case wsframe.EventHeader:
				if !h.IsData() {
					continue
				}
				if h.Opcode != wsframe.OpContinuation {
					plen = 0
				}
				left = h.Length
				if left == 0 && h.Fin {
					deliver()
				}
			case wsframe.EventPayload:
				if !h.IsData() {
					continue
				}
				plen += copy(prefix[plen:], chunk)
				left -= uint64(len(chunk))
				if left == 0 && h.Fin {
					deliver()
				}
			case wsframe.EventControl:
				if h.Opcode == wsframe.OpClose {
					return false
				}
			}
		}
		return true
	}
	if !consume(rest) {
		return
	}
	buf := make([]byte, gwReadBuffer)
	for {
		n, err := nc.Read(buf)
		if n > 0 && !consume(buf[:n]) {
			return
		}
		if err != nil {
			return
		}
	}
}

// broadcastStats are the figures of one trigger's broadcasts.
type broadcastStats struct {
	Deliveries int64
	Lost       int64
	First      []time.Duration // per broadcast: trigger to its first receipt
	Last       []time.Duration // per broadcast: trigger to its last receipt
}

// runBroadcasts triggers broadcasts seqs[0], seqs[1], ... interval apart
// (waiting for each to reach every connection, or gwBroadcastTimeout,
// before the next) and collects when each reached every connection.
func (r *receiver) runBroadcasts(ctx context.Context, seqs []int, interval time.Duration, trigger func(seq int) error) (broadcastStats, error) {
	var st broadcastStats
	start := time.Now()
	t0 := make([]int64, len(seqs))
	for j, seq := range seqs {
		if wait := time.Until(start.Add(time.Duration(j) * interval)); wait > 0 {
			select {
			case <-ctx.Done():
				return st, context.Cause(ctx)
			case <-time.After(wait):
			}
		}
		t0[j] = r.now()
		if err := trigger(seq); err != nil {
			return st, fmt.Errorf("broadcast %d: %w", seq, err)
		}
		select {
		case <-ctx.Done():
			return st, context.Cause(ctx)
		case <-r.all[seq]:
		case <-time.After(gwBroadcastTimeout):
		}
	}
	for j, seq := range seqs {
		first, last := int64(0), int64(0)
		got := int64(0)
		for i := range r.n {
			at := r.at[seq*r.n+i].Load()
			if at == 0 {
				continue
			}
			got++
			if first == 0 || at < first {
				first = at
			}
			last = max(last, at)
		}
		st.Deliveries += got
		st.Lost += int64(r.n) - got
		if got > 0 {
			st.First = append(st.First, time.Duration(first-t0[j]))
			st.Last = append(st.Last, time.Duration(last-t0[j]))
		}
	}
	return st, nil
}

// runWSEcho has every connection send a size-byte message and read it
// back, over and over, up to rounds times or until d has passed. Every
// echo must arrive intact; a round trip cut off by the end of the phase
// is not counted.
func runWSEcho(ctx context.Context, conns []net.Conn, rests [][]byte, rounds, size int, d time.Duration, start func()) (echoResult, error) {
	return echoSwarm(ctx, len(conns), rounds, d, start,
		func(i int, t time.Time) { conns[i].SetDeadline(t) },
		func(i int) func() error {
			nc := conns[i]
			payload := bytes.Repeat([]byte{byte('a' + i%26)}, size)
			frame := maskedFrame(payload)
			e := wsEchoReader{nc: nc, pending: rests[i], buf: make([]byte, 4096)}
			return func() error {
				if _, err := nc.Write(frame); err != nil {
					return err
				}
				got, err := e.next()
				if err != nil {
					return err
				}
				if !bytes.Equal(got, payload) {
					return fmt.Errorf("got %q, want %q", got, payload)
				}
				return nil
			}
		})
}

// wsEchoReader reads whole data messages from a server.
type wsEchoReader struct {
	nc      net.Conn
	p       wsframe.Parser
	pending []byte
	buf     []byte
	msg     []byte
	left    uint64
}

// next returns the next data message; it is valid until the next call.
func (e *wsEchoReader) next() ([]byte, error) {
	e.msg = e.msg[:0]
	for {
		for len(e.pending) > 0 {
			n, ev := e.p.Parse(e.pending)
			chunk := e.pending[:n]
			e.pending = e.pending[n:]
			h := e.p.Header()
			switch ev {
			case wsframe.EventHeader:
				if h.IsData() {
					e.left = h.Length
					if e.left == 0 && h.Fin {
						return e.msg, nil
					}
				}
			case wsframe.EventPayload:
				if h.IsData() {
					e.msg = append(e.msg, chunk...)
					e.left -= uint64(len(chunk))
					if e.left == 0 && h.Fin {
						return e.msg, nil
					}
				}
			case wsframe.EventControl:
				if h.Opcode == wsframe.OpClose {
					return nil, errors.New("server closed the connection")
				}
			}
		}
		n, err := e.nc.Read(e.buf)
		e.pending = e.buf[:n]
		if n == 0 && err != nil {
			return nil, err
		}
	}
}
