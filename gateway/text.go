package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
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
		t := &textTransport{nc: nc, r: bufio.NewReaderSize(nc, 4096), max: h.maxMessage}
		c := h.newClient(t, remoteAddr4(nc.RemoteAddr())) // counted before its goroutine starts
		t.c = c
		go h.serve(c, nil)
	}
}

func remoteAddr4(a net.Addr) netip.AddrPort {
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
	r    *bufio.Reader
	c    *client
	max  int64
	line []byte
}

func (t *textTransport) kind() string           { return "text" }
func (t *textTransport) conn() net.Conn         { return t.nc }
func (t *textTransport) wire(m *message) []byte { return m.textLine() }

func (t *textTransport) readMessage() ([]byte, error) {
	t.line = t.line[:0]
	for {
		frag, err := t.r.ReadSlice('\n')
		t.line = append(t.line, frag...)
		var line []byte
		if err == nil {
			line = bytes.TrimSuffix(t.line[:len(t.line)-1], []byte("\r"))
		}
		// Past max (plus room for "\r\n" while the line is unfinished),
		// the line is refused without reading the rest of it.
		if int64(len(line)) > t.max || (err != nil && int64(len(t.line)) > t.max+2) {
			t.c.closeAfter(newMessage([]byte("error: "+reasonTooBig)), disconnectTooBig())
			return nil, disconnectTooBig()
		}
		switch {
		case err == nil:
			if cap(t.line) > 64<<10 {
				t.line = nil
				return bytes.Clone(line), nil
			}
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, io.EOF
		default:
			return nil, err
		}
	}
}

func (t *textTransport) write(w *bufio.Writer, it item) error {
	if it.kind != itemData {
		return nil // pings, pongs and close frames are WebSocket's
	}
	_, err := w.Write(it.msg.textLine()[it.off:])
	return err
}

// closed half-closes the connection after the last line, so that it is
// delivered, then waits for the client to close until deadline.
func (t *textTransport) closed(deadline time.Time) {
	if cw, ok := t.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	t.nc.SetReadDeadline(deadline)
}
