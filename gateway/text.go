package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// ServeText accepts connections on ln and serves them with the text
// protocol (GatewayWorker's Text): each message is one line, ended by
// "\n" (a "\r" before it is dropped), both ways. It returns when ctx is
// done or ln fails, after closing ln; the connections it accepted live
// on until they end or the hub shuts down. Their goroutines belong to
// the hub: [Hub.Wait] and [Hub.Shutdown] wait for them. Closing ln also
// stops it, without an error.
func (h *Hub) ServeText(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil // stopped, or the listener was closed on purpose
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			ln.Close()
			return err
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetKeepAlive(true)
		}
		t := &textTransport{nc: nc, max: h.maxMessage}
		c := h.newClient(t, addrPort(nc.RemoteAddr()), addrPort(nc.LocalAddr())) // counted before its goroutine starts
		t.c = c
		go h.serve(c, nil, nil)
	}
}

// addrPort returns a TCP address as an AddrPort, an IPv4-mapped IPv6
// address as IPv4; the zero AddrPort if a is not an IP address and port.
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// textTransport speaks the line protocol.
type textTransport struct {
	nc   net.Conn
	c    *client
	max  int64
	line []byte // a line that spans reads, so far; nil otherwise
}

func (t *textTransport) kind() string           { return "text" }
func (t *textTransport) conn() net.Conn         { return t.nc }
func (t *textTransport) wire(m *message) []byte { return m.textLine() }

func (t *textTransport) consume(b []byte) error {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			// Past max (plus room for a "\r"), the unfinished line is
			// refused without reading the rest of it.
			if int64(len(t.line)+len(b)) > t.max+1 {
				return t.tooBig()
			}
			t.line = append(t.line, b...)
			return nil
		}
		line := b[:i]
		b = b[i+1:]
		if t.line != nil {
			t.line = append(t.line, line...)
			line = t.line
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if int64(len(line)) > t.max {
			return t.tooBig()
		}
		ok := t.c.deliver(line)
		t.line = nil // an idle client keeps no buffer
		if !ok {
			return errHandlerPanic
		}
	}
	return nil
}

// tooBig ends a client whose line is over the limit: an error line is
// its last message.
func (t *textTransport) tooBig() error {
	t.c.closeAfter(newMessage([]byte("error: "+reasonTooBig)), disconnectTooBig())
	return disconnectTooBig()
}

func (t *textTransport) write(w *bufio.Writer, it item) error {
	if it.kind != itemData {
		return nil // pings, pongs and close frames are WebSocket's
	}
	_, err := w.Write(it.msg.textLine()[it.off:])
	return err
}

// closed half-closes the connection after the last line, so that it is
// delivered; the client then closes its side.
func (t *textTransport) closed() {
	if cw, ok := t.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}
