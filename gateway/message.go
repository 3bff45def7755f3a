package gateway

import (
	"sync"
	"unicode/utf8"

	"github.com/wssgate/wssgate/internal/wsframe"
)

// message is one payload queued to one or many clients. A broadcast
// shares one message among all receivers: its WebSocket frame header is
// built once, by the first writer that needs it.
type message struct {
	data []byte
	once sync.Once
	head []byte // WebSocket frame header for data
}

func newMessage(data []byte) *message { return &message{data: data} }

// wsHeader returns the header of an unmasked, unfragmented server frame
// carrying m.data: a text frame when data is valid UTF-8, else binary.
func (m *message) wsHeader() []byte {
	m.once.Do(func() {
		op := byte(wsframe.OpText)
		if !utf8.Valid(m.data) {
			op = wsframe.OpBinary
		}
		m.head = wsframe.AppendHeader(nil, wsframe.Header{Fin: true, Opcode: op, Length: uint64(len(m.data))})
	})
	return m.head
}
