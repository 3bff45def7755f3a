package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

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
			// gorilla only answers the handshake: the hub reads and
			// writes frames itself. With no read buffer size of its own
			// gorilla allocates none, and its write buffer comes from a
			// pool only while it writes (the handshake's error answers).
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
	t := &wsTransport{nc: ws.NetConn(), max: wh.hub.maxMessage} // gorilla's Conn is done with
	c := wh.hub.newClient(t, wh.clientAddr(r), localAddr(r, t.nc))
	t.c = c
	req := &WebSocketRequest{
		Method:     r.Method,
		RequestURI: r.RequestURI,
		Proto:      r.Proto,
		Host:       r.Host,
		Path:       r.URL.Path,
		Header:     r.Header.Clone(),
		Query:      r.URL.Query(),
		Cookies:    make(map[string]string),
	}
	if req.RequestURI == "" {
		req.RequestURI = r.URL.RequestURI() // a request not read by a server
	}
	for _, ck := range r.Cookies() {
		req.Cookies[ck.Name] = ck.Value
	}
	var done func()
	if wh.hub.detach != nil {
		done = wh.hub.detach(r)
	}
	go wh.hub.serve(c, func(info ClientInfo) { wh.hub.handler.OnWebSocketConnect(info, req) }, done)
}

func remoteAddr(r *http.Request) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(r.RemoteAddr)
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// localAddr returns the address the client connected to: the one the
// HTTP server that read the request put in its context (through the
// edge, the edge's listener address), else the connection's own.
func localAddr(r *http.Request, nc net.Conn) netip.AddrPort {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap := addrPort(a); ap.IsValid() {
			return ap
		}
	}
	return addrPort(nc.LocalAddr())
}

// wsTransport speaks RFC 6455 frames for the hub, both ways, through
// internal/wsframe: it parses what the reader hands it (masked client
// frames, fragmented messages, control frames between fragments) and
// encodes the writer's items, so that a broadcast builds its frame once
// for all receivers and a batch of items goes out in one write. Every
// frame the hub sends, the answers to pings and closes included, goes
// through the client's send path: the hub is the only writer.
type wsTransport struct {
	nc  net.Conn
	c   *client
	max int64
	p   wsframe.Parser
	op  byte   // opcode of the message being read (text or binary); 0 between messages
	pos uint64 // payload bytes of the current frame read so far
	n   int64  // payload bytes of the message so far
	msg []byte // the message so far, when it spans frames or reads; nil otherwise
}

func (t *wsTransport) kind() string           { return "websocket" }
func (t *wsTransport) conn() net.Conn         { return t.nc }
func (t *wsTransport) wire(m *message) []byte { return m.wsFrame() }

// protocolError ends a client that broke RFC 6455 with close 1002 and
// the reason, as gorilla/websocket does.
func (t *wsTransport) protocolError(reason string) error {
	d := Disconnect{Code: codeProtocol, Reason: reason}
	t.c.close(d)
	return d
}

func (t *wsTransport) consume(b []byte) error {
	for len(b) > 0 {
		n, ev := t.p.Parse(b)
		chunk := b[:n]
		b = b[n:]
		h := t.p.Header()
		switch ev {
		case wsframe.EventHeader:
			if err := t.header(h); err != nil {
				return err
			}
			if h.Length == 0 && h.Fin {
				if err := t.message(t.msg); err != nil {
					return err
				}
			}
		case wsframe.EventPayload:
			// Unmask in place: b is the reader's to reuse, and the key
			// goes on from where the frame's last chunk left it.
			for i := range chunk {
				chunk[i] ^= h.Key[(t.pos+uint64(i))&3]
			}
			whole := t.pos == 0 && uint64(n) == h.Length && t.msg == nil
			t.pos += uint64(n)
			switch {
			case t.pos < h.Length || !h.Fin:
				t.msg = append(t.msg, chunk...)
			case whole:
				// The common case: a message in one frame, read at once.
				if err := t.message(chunk); err != nil {
					return err
				}
			default:
				t.msg = append(t.msg, chunk...)
				if err := t.message(t.msg); err != nil {
					return err
				}
			}
		case wsframe.EventControl:
			if err := t.control(h, t.p.ControlPayload()); err != nil {
				return err
			}
		}
	}
	return nil
}

// header checks a frame header, as gorilla/websocket does, and starts
// the frame.
func (t *wsTransport) header(h *wsframe.Header) error {
	switch {
	case h.RSV != 0:
		return t.protocolError("unexpected reserved bits")
	case !h.Masked:
		return t.protocolError("incorrect mask flag")
	case h.IsControl():
		// The parser streams a control frame only when it is too long.
		return t.protocolError("control frame length > 125")
	case !h.IsData():
		return t.protocolError("unknown opcode")
	case h.Opcode == wsframe.OpContinuation && t.op == 0:
		return t.protocolError("continuation after final message frame")
	case h.Opcode != wsframe.OpContinuation && t.op != 0:
		return t.protocolError("message start before final message frame")
	}
	if h.Opcode != wsframe.OpContinuation {
		t.op, t.n = h.Opcode, 0
	}
	t.pos = 0
	t.n += int64(h.Length)
	if t.n > t.max {
		// Refused on its header: nothing more of it is read. Close
		// 1009 goes out after what is queued.
		t.c.close(disconnectTooBig())
		return disconnectTooBig()
	}
	return nil
}

// message passes a complete message on and readies the next.
func (t *wsTransport) message(data []byte) error {
	t.op = 0
	ok := t.c.deliver(data)
	t.msg = nil // an idle client keeps no buffer
	if !ok {
		return errHandlerPanic
	}
	return nil
}

// control handles a control frame: a ping is answered, a pong counts as
// a sign of life, and a close is echoed and ends the reading.
func (t *wsTransport) control(h *wsframe.Header, payload []byte) error {
	switch {
	case h.RSV != 0:
		return t.protocolError("unexpected reserved bits")
	case !h.Masked:
		return t.protocolError("incorrect mask flag")
	case !h.Fin:
		return t.protocolError("control frame not final")
	}
	c := t.c
	switch h.Opcode {
	case wsframe.OpPing:
		c.lastSeen.Store(c.hub.clock())
		c.enqueue(item{kind: itemPong, ctl: bytes.Clone(payload)})
	case wsframe.OpPong:
		c.lastSeen.Store(c.hub.clock())
	case wsframe.OpClose:
		code := wsframe.CloseCode(payload)
		switch {
		case len(payload) >= 2 && !validReceivedCode(code):
			return t.protocolError("bad close code " + strconv.Itoa(code))
		case len(payload) > 2 && !utf8.Valid(payload[2:]):
			d := Disconnect{Code: codeBadData, Reason: "invalid utf8 payload in close frame"}
			c.close(d)
			return d
		}
		// Echo the client's close; a close we sent first is already
		// queued or written, and this queues nothing then.
		d := Disconnect{Code: code}
		if code == wsframe.CloseNoStatus {
			d.Code = 0
		}
		c.close(d)
		return io.EOF
	default:
		return t.protocolError("unknown opcode")
	}
	return nil
}

// validReceivedCode reports whether a client may send code in a close
// frame: the codes one may send, and 1015 is not among them.
func validReceivedCode(code int) bool { return wsframe.ValidCloseCode(code) }

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

// closed: after our close frame the client answers with its own, which
// the reader sees; nothing else is to do.
func (t *wsTransport) closed() {}
