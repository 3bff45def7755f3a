package gateway

import (
	"sync"
	"unicode/utf8"

	"github.com/wssgate/wssgate/internal/wsframe"
)

// message is one payload sent to one or many clients. A broadcast
// shares one message among all receivers: each wire form (a WebSocket
// frame, a text line) is built once, by the first send that needs it,
// so that a send to each client is one write of ready bytes.
type message struct {
	data     []byte
	wsOnce   sync.Once
	ws       []byte // unmasked, unfragmented server frame carrying data
	textOnce sync.Once
	text     []byte // data and "\n"
}

func newMessage(data []byte) *message { return &message{data: data} }

// wsFrame returns the frame carrying m.data: a text frame when data is
// valid UTF-8, else binary.
func (m *message) wsFrame() []byte {
	m.wsOnce.Do(func() {
		op := byte(wsframe.OpText)
		if !utf8.Valid(m.data) {
			op = wsframe.OpBinary
		}
		h := wsframe.Header{Fin: true, Opcode: op, Length: uint64(len(m.data))}
		m.ws = append(wsframe.AppendHeader(make([]byte, 0, wsframe.MaxHeaderLen+len(m.data)), h), m.data...)
	})
	return m.ws
}

// textLine returns m.data as a line of the text protocol.
func (m *message) textLine() []byte {
	m.textOnce.Do(func() {
		m.text = append(append(make([]byte, 0, len(m.data)+1), m.data...), '\n')
	})
	return m.text
}
