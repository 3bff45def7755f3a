package proxy

import (
	"encoding/binary"
	"unicode/utf8"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// WebSocket close codes the proxy sends or interprets (RFC 6455 §7.4.1).
const (
	closeNormal        = 1000
	closeGoingAway     = 1001
	closeNoStatus      = 1005 // recorded when a close frame carries no code; never sent
	closeInternalError = 1011
	// closeUpstreamGone is sent to a client whose upstream vanished without
	// a close frame. 1014 (Bad Gateway) says it more precisely, but
	// gorilla/websocket (v1.5.3) and other clients reject 1014 as invalid
	// and fail the connection with a protocol error; 1011 is accepted by
	// every client.
	closeUpstreamGone = closeInternalError
)

// Frame size limits (RFC 6455 §5.2, §5.5).
const (
	// maxFrameHeaderLen is the longest frame header: 2 fixed bytes, a
	// 64-bit extended length and a 4-byte masking key.
	maxFrameHeaderLen = 2 + 8 + 4
	// maxControlPayloadLen is the longest payload a control frame may carry.
	maxControlPayloadLen = 125
	// maxCloseReasonLen is the longest close reason: the control payload
	// less the 2-byte code.
	maxCloseReasonLen = maxControlPayloadLen - 2
	// maxHeldLen is the most the frame parser holds back for one frame: the
	// header and, for control frames, the payload.
	maxHeldLen = maxFrameHeaderLen + maxControlPayloadLen
	// maxControlFrameLen is the longest control frame the proxy injects.
	maxControlFrameLen = 2 + 4 + maxControlPayloadLen
)

// frameHeader is a decoded WebSocket frame header.
type frameHeader struct {
	fin     bool
	rsv     byte // RSV1..RSV3 as the low 3 bits; set by extensions such as permessage-deflate
	opcode  byte
	masked  bool
	mask    [4]byte // the masking key when masked
	length  uint64  // payload length
	hdrLen  int     // encoded header length in bytes, 2 to 14
	control bool    // opcode >= 8
}

// isData reports whether the frame belongs to a data message (text, binary
// or continuation). Reserved data opcodes 3-7 are not counted as messages.
func (h *frameHeader) isData() bool { return h.opcode <= opBinary }

// parseEvent says what the bytes consumed by one [frameParser.parse] call
// were.
type parseEvent uint8

const (
	// evMore: every byte was consumed into the parser's held bytes; the
	// current frame's header (or control frame) is still incomplete.
	evMore parseEvent = iota
	// evHeader: the header of a streamed frame completed; its payload
	// follows as evPayload. Data frames and control frames longer than 125
	// bytes (which are invalid and passed on for the peer to reject) are
	// streamed.
	evHeader
	// evPayload: the consumed bytes are payload of the current streamed
	// frame.
	evPayload
	// evControl: a control frame (at most 125 bytes of payload) completed,
	// header and payload; [frameParser.controlPayload] returns its payload
	// unmasked.
	evControl
)

type parseState uint8

const (
	stHeader  parseState = iota // collecting header bytes
	stControl                   // collecting a control frame's payload
	stPayload                   // streaming a frame's payload
)

// frameParser parses a stream of WebSocket frames incrementally: bytes may
// arrive split at any point, a header included.
//
// It holds back the bytes of an incomplete header, and of a whole control
// frame until it is complete, so that a caller can decide what to do with
// a frame (forward, drop, inspect) before any of its bytes are passed on.
// Payload of other frames is streamed. The zero value is ready to use and
// expects a frame header next.
type frameParser struct {
	state     parseState
	need      int    // header bytes needed: 2 until the length byte is known
	rawN      int    // bytes of the current frame held in raw
	remaining uint64 // payload bytes of the current frame still to come
	hdr       frameHeader
	raw       [maxHeldLen]byte // held bytes; a completed control frame's payload is unmasked in place
}

// held returns the bytes of the current, incomplete frame that the parser
// has consumed and holds back (never more than maxHeldLen). The slice is
// valid until the next call to parse.
func (p *frameParser) held() []byte { return p.raw[:p.rawN] }

// header returns the header of the current or last completed frame.
func (p *frameParser) header() *frameHeader { return &p.hdr }

// controlPayload returns the unmasked payload of the control frame
// reported by the last evControl. It is valid until the next call to parse.
func (p *frameParser) controlPayload() []byte {
	return p.raw[p.hdr.hdrLen : p.hdr.hdrLen+int(p.hdr.length)]
}

// atBoundary reports whether the parser is between frames: no byte of a
// frame consumed, or only bytes it holds back. Bytes the caller passed on
// then form whole frames.
func (p *frameParser) atBoundary() bool { return p.state != stPayload }

// parse consumes a prefix of b, at least one byte when b is not empty, and
// reports what it was. A caller loops until b is consumed.
func (p *frameParser) parse(b []byte) (n int, ev parseEvent) {
	switch p.state {
	case stPayload:
		n = len(b)
		if uint64(n) >= p.remaining {
			n = int(p.remaining)
		}
		p.remaining -= uint64(n)
		if p.remaining == 0 {
			p.state = stHeader
		}
		return n, evPayload
	case stControl:
		return p.parseControl(b)
	}

	if p.need == 0 {
		p.need = 2
	}
	for p.rawN < p.need && n < len(b) {
		k := copy(p.raw[p.rawN:p.need], b[n:])
		p.rawN += k
		n += k
		if p.rawN == 2 && p.need == 2 {
			p.need = headerLen(p.raw[1])
		}
	}
	if p.rawN < p.need {
		return n, evMore
	}
	p.decodeHeader()
	p.need = 0
	if p.hdr.control && p.hdr.length <= maxControlPayloadLen {
		p.remaining = p.hdr.length
		p.state = stControl
		m, ev := p.parseControl(b[n:])
		return n + m, ev
	}
	p.rawN = 0
	p.remaining = p.hdr.length
	if p.remaining > 0 {
		p.state = stPayload
	}
	return n, evHeader
}

// parseControl collects control frame payload from b.
func (p *frameParser) parseControl(b []byte) (n int, ev parseEvent) {
	n = copy(p.raw[p.rawN:p.rawN+int(p.remaining)], b)
	p.rawN += n
	p.remaining -= uint64(n)
	if p.remaining > 0 {
		return n, evMore
	}
	if p.hdr.masked {
		maskBytes(p.hdr.mask, p.raw[p.hdr.hdrLen:p.rawN])
	}
	p.rawN = 0
	p.state = stHeader
	return n, evControl
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

// decodeHeader decodes the complete header held in p.raw.
func (p *frameParser) decodeHeader() {
	b := p.raw[:p.need]
	h := frameHeader{
		fin:    b[0]&0x80 != 0,
		rsv:    (b[0] >> 4) & 0x7,
		opcode: b[0] & 0xf,
		masked: b[1]&0x80 != 0,
		hdrLen: len(b),
	}
	h.control = h.opcode&0x8 != 0
	i := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		h.length = uint64(binary.BigEndian.Uint16(b[2:]))
		i += 2
	case 127:
		h.length = binary.BigEndian.Uint64(b[2:])
		i += 8
	default:
		h.length = uint64(l)
	}
	if h.masked {
		copy(h.mask[:], b[i:i+4])
	}
	p.hdr = h
}

// maskBytes XORs b with the masking key, starting at key position 0.
// Masking and unmasking are the same operation.
func maskBytes(key [4]byte, b []byte) {
	for i := range b {
		b[i] ^= key[i&3]
	}
}

// appendControlFrame appends a final control frame with the given opcode
// and payload (at most 125 bytes; more is cut off) to dst. When masked,
// the payload is masked with key, as frames from a client must be (RFC
// 6455 §5.3).
func appendControlFrame[T string | []byte](dst []byte, opcode byte, payload T, masked bool, key [4]byte) []byte {
	if len(payload) > maxControlPayloadLen {
		payload = payload[:maxControlPayloadLen]
	}
	b1 := byte(len(payload))
	if masked {
		b1 |= 0x80
	}
	dst = append(dst, 0x80|opcode, b1)
	if masked {
		dst = append(dst, key[:]...)
	}
	start := len(dst)
	dst = append(dst, payload...)
	if masked {
		maskBytes(key, dst[start:])
	}
	return dst
}

// appendCloseFrame appends a close frame with code and reason, truncated
// as appendClosePayload does, to dst, masked with key when masked.
func appendCloseFrame(dst []byte, code uint16, reason string, masked bool, key [4]byte) []byte {
	reason = truncateReason(reason)
	b1 := byte(2 + len(reason))
	if masked {
		b1 |= 0x80
	}
	dst = append(dst, 0x80|opClose, b1)
	if masked {
		dst = append(dst, key[:]...)
	}
	start := len(dst)
	dst = appendClosePayload(dst, code, reason)
	if masked {
		maskBytes(key, dst[start:])
	}
	return dst
}

// appendClosePayload appends a close frame payload to dst: code as two
// big-endian bytes and reason truncated to 123 bytes at a UTF-8 character
// boundary.
func appendClosePayload(dst []byte, code uint16, reason string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, code)
	return append(dst, truncateReason(reason)...)
}

// truncateReason shortens reason to at most 123 bytes without splitting a
// UTF-8 encoded character.
func truncateReason(reason string) string {
	if len(reason) <= maxCloseReasonLen {
		return reason
	}
	n := maxCloseReasonLen
	for n > 0 && !utf8.RuneStart(reason[n]) {
		n--
	}
	return reason[:n]
}

// closeCode returns the status code of a close frame payload, or 1005 (no
// status received) when it carries none.
func closeCode(payload []byte) int {
	if len(payload) < 2 {
		return closeNoStatus
	}
	return int(binary.BigEndian.Uint16(payload))
}
