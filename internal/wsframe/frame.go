package wsframe

import "encoding/binary"

// Opcodes (RFC 6455 §5.2). Opcodes 0x3 to 0x7 are reserved data opcodes,
// 0xB to 0xF reserved control opcodes.
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// Size limits (RFC 6455 §5.2, §5.5).
const (
	// MaxHeaderLen is the longest frame header: 2 fixed bytes, a 64-bit
	// extended length and a 4-byte masking key.
	MaxHeaderLen = 2 + 8 + 4
	// MaxControlPayloadLen is the longest payload a control frame may
	// carry.
	MaxControlPayloadLen = 125
	// MaxCloseReasonLen is the longest close reason: the control payload
	// less the 2-byte code.
	MaxCloseReasonLen = MaxControlPayloadLen - 2
	// MaxControlFrameLen is the longest valid control frame, masked: what
	// [AppendControlFrame] and [AppendCloseFrame] append at most.
	MaxControlFrameLen = 2 + 4 + MaxControlPayloadLen
	// MaxHeldLen is the most a [Parser] holds back for one frame: the
	// header and, for a control frame, its payload.
	MaxHeldLen = MaxHeaderLen + MaxControlPayloadLen
)

// Header is a frame header. The zero value is a non-final continuation
// frame, unmasked, with no payload.
type Header struct {
	Fin    bool    // the final frame of its message
	RSV    byte    // RSV1..RSV3 as the low 3 bits; set by extensions such as permessage-deflate
	Opcode byte    // 0x0 to 0xF
	Masked bool    // the payload is masked with Key, as a client's must be (§5.3)
	Key    [4]byte // the masking key when Masked
	Length uint64  // payload length in bytes
}

// IsControl reports whether h is the header of a control frame (close,
// ping, pong or a reserved control opcode).
func (h *Header) IsControl() bool { return h.Opcode&0x8 != 0 }

// IsData reports whether the frame belongs to a data message (text,
// binary or continuation). Reserved data opcodes 0x3 to 0x7 are not data.
func (h *Header) IsData() bool { return h.Opcode <= OpBinary }

// AppendHeader appends h to dst, with the shortest length encoding, and
// returns the extended slice: 2 to [MaxHeaderLen] bytes. Opcode and RSV
// bits beyond their width are cut off. The payload is the caller's to
// append, masked with [Mask] when h.Masked.
func AppendHeader(dst []byte, h Header) []byte {
	b0 := h.Opcode&0xf | (h.RSV&0x7)<<4
	if h.Fin {
		b0 |= 0x80
	}
	var b1 byte
	if h.Masked {
		b1 = 0x80
	}
	switch n := h.Length; {
	case n < 126:
		dst = append(dst, b0, b1|byte(n))
	case n <= 0xffff:
		dst = binary.BigEndian.AppendUint16(append(dst, b0, b1|126), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint64(append(dst, b0, b1|127), n)
	}
	if h.Masked {
		dst = append(dst, h.Key[:]...)
	}
	return dst
}

// headerLen returns the length of a frame header from its second byte.
func headerLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// Mask XORs b with the masking key, starting at key position 0. Masking
// and unmasking are the same operation.
func Mask(key [4]byte, b []byte) {
	for i := range b {
		b[i] ^= key[i&3]
	}
}

// AppendControlFrame appends a final control frame with the given opcode
// and payload to dst. A payload over [MaxControlPayloadLen] bytes is cut
// to that length. When masked, the payload is masked with key, as frames
// from a client must be (RFC 6455 §5.3); unmasked, key is ignored.
func AppendControlFrame[T string | []byte](dst []byte, opcode byte, payload T, masked bool, key [4]byte) []byte {
	if len(payload) > MaxControlPayloadLen {
		payload = payload[:MaxControlPayloadLen]
	}
	dst = AppendHeader(dst, Header{Fin: true, Opcode: opcode, Masked: masked, Key: key, Length: uint64(len(payload))})
	start := len(dst)
	dst = append(dst, payload...)
	if masked {
		Mask(key, dst[start:])
	}
	return dst
}
