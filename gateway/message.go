package gateway

import (
	"encoding/binary"
	"sync"
	"unicode/utf8"
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
		op := byte(opText)
		if !utf8.Valid(m.data) {
			op = opBinary
		}
		m.head = frameHeader(nil, op, len(m.data))
	})
	return m.head
}

// WebSocket opcodes (RFC 6455, section 5.2).
const (
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// frameHeader appends the header of a final, unmasked frame (servers do
// not mask) with opcode op and an n-byte payload.
func frameHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// closePayload is the payload of a close frame: the code, then the reason
// cut to 123 bytes on a UTF-8 boundary.
func closePayload(d Disconnect) []byte {
	if d.Code == 0 || d.Code == 1005 || d.Code == 1006 {
		return nil
	}
	r := d.Reason
	if len(r) > 123 {
		r = r[:123]
		for len(r) > 0 && !utf8.ValidString(r) {
			r = r[:len(r)-1]
		}
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(r)), uint16(d.Code))
	return append(b, r...)
}
