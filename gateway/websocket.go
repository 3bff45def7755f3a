package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wssgate/wssgate/internal/wsframe"
)

// WebSocketHandler returns the http.Handler that upgrades requests to
// WebSocket and serves them as clients of h. Once a request is upgraded,
// ServeHTTP hands the connection to goroutines of its own and returns,
// which frees the HTTP server's per-connection state and the handler's
// stack; [Options.Detach] tells an edge when the connection has ended.
//
// clientAddr gives the client's address for a request; nil means the
// request's RemoteAddr. An edge mounting the handler passes the address
// it worked out (trusted forwarding headers included).
//
// Origins are not checked here: the edge route's allowed_origins does
// that before the handler runs.
func (h *Hub) WebSocketHandler(clientAddr func(*http.Request) netip.AddrPort) http.Handler {
	if clientAddr == nil {
		clientAddr = remoteAddr
	}
	return &wsHandler{
		hub:        h,
		clientAddr: clientAddr,
		upgrader: websocket.Upgrader{
			// A small read buffer of its own lets the HTTP server's 4 KiB
			// one go; gorilla's write buffer comes from a pool only while
			// gorilla writes (the handshake's error answers): the hub
			// writes frames itself.
			ReadBufferSize:   1024,
			WriteBufferPool:  &sync.Pool{},
			HandshakeTimeout: 10 * time.Second,
			CheckOrigin:      func(*http.Request) bool { return true },
			Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
				if status == http.StatusBadRequest && r.Header.Get("Sec-Websocket-Version") != "13" {
					w.Header().Set("Sec-WebSocket-Version", "13")
					status = http.StatusUpgradeRequired
				}
				http.Error(w, http.StatusText(status)+": "+reason.Error(), status)
			},
		},
	}
}

type wsHandler struct {
	hub        *Hub
	clientAddr func(*http.Request) netip.AddrPort
	upgrader   websocket.Upgrader
}

func (wh *wsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	ws, err := wh.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	t := newWSTransport(ws, wh.hub.maxMessage)
	c := wh.hub.newClient(t, wh.clientAddr(r))
	t.c = c
	req := &WebSocketRequest{
		Path:    r.URL.Path,
		Header:  r.Header.Clone(),
		Query:   r.URL.Query(),
		Cookies: make(map[string]string),
	}
	for _, ck := range r.Cookies() {
		req.Cookies[ck.Name] = ck.Value
	}
	var done func()
	if wh.hub.detach != nil {
		done = wh.hub.detach(r)
	}
	go func() {
		if done != nil {
			defer done()
		}
		wh.hub.serve(c, func(info ClientInfo) { wh.hub.handler.OnWebSocketConnect(info, req) })
	}()
}

func remoteAddr(r *http.Request) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(r.RemoteAddr)
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// wsTransport reads with gorilla/websocket and writes frames itself, so
// that a broadcast encodes its frame header once for all receivers and
// a batch of messages goes out in one write. gorilla's own control
// writes (pong, close echo) are replaced by handlers that queue them, so
// the hub's writer is the only writer, with one exception: a client that
// breaks the protocol (a bad opcode, an oversized control frame) gets
// gorilla's close 1002 written by the reader, and its connection ends.
type wsTransport struct {
	ws  *websocket.Conn
	nc  net.Conn
	c   *client
	max int64
	buf bytes.Buffer
	lim io.LimitedReader // reused for every message: no allocation per read
}

func newWSTransport(ws *websocket.Conn, max int64) *wsTransport {
	t := &wsTransport{ws: ws, nc: ws.NetConn(), max: max}
	ws.SetPingHandler(func(data string) error {
		t.c.lastSeen.Store(t.c.hub.clock())
		t.c.enqueue(item{kind: itemPong, ctl: []byte(data)})
		return nil
	})
	ws.SetPongHandler(func(string) error {
		t.c.lastSeen.Store(t.c.hub.clock())
		return nil
	})
	ws.SetCloseHandler(func(code int, text string) error {
		// Echo the client's close; a close we sent first is already
		// queued or written, and this queues nothing then.
		d := Disconnect{Code: code}
		if code == websocket.CloseNoStatusReceived {
			d.Code = 0
		}
		t.c.close(d)
		return nil
	})
	return t
}

func (t *wsTransport) kind() string           { return "websocket" }
func (t *wsTransport) conn() net.Conn         { return t.nc }
func (t *wsTransport) wire(m *message) []byte { return m.wsFrame() }

func (t *wsTransport) readMessage() ([]byte, error) {
	_, r, err := t.ws.NextReader()
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return nil, io.EOF
		}
		return nil, err
	}
	t.buf.Reset()
	if t.buf.Cap() > 64<<10 {
		t.buf = bytes.Buffer{} // let one big message's buffer go
	}
	t.lim.R, t.lim.N = r, t.max+1
	n, err := t.buf.ReadFrom(&t.lim)
	t.lim.R = nil
	if err != nil {
		return nil, err
	}
	if n > t.max {
		// Close 1009 goes out after what is queued; the connection ends
		// once it is written.
		t.c.close(disconnectTooBig())
		return nil, disconnectTooBig()
	}
	return t.buf.Bytes(), nil
}

func (t *wsTransport) write(w *bufio.Writer, it item) error {
	// Control frames are built in w's free space, so that writing them
	// copies nothing and allocates nothing. Servers do not mask.
	var frame []byte
	switch it.kind {
	case itemData:
		_, err := w.Write(it.msg.wsFrame()[it.off:])
		return err
	case itemPing:
		frame = wsframe.AppendControlFrame(w.AvailableBuffer(), wsframe.OpPing, "", false, [4]byte{})
	case itemPong:
		frame = wsframe.AppendControlFrame(w.AvailableBuffer(), wsframe.OpPong, it.ctl, false, [4]byte{})
	case itemClose:
		// A disconnect whose code may not be sent (none, 1005, 1006)
		// gets a close frame without a payload.
		frame = wsframe.AppendCloseFrame(w.AvailableBuffer(), it.disc.Code, it.disc.Reason, false, [4]byte{})
	default:
		return nil
	}
	_, err := w.Write(frame)
	return err
}

// closed runs once our close frame is out: the reader goes on until the
// client's close frame answers it, or the deadline.
func (t *wsTransport) closed(deadline time.Time) { t.nc.SetReadDeadline(deadline) }
