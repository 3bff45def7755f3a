package wsframe

import "encoding/binary"

// Event says what the bytes consumed by one [Parser.Parse] call were.
type Event uint8

const (
	// EventMore: every byte was consumed into the parser's held bytes;
	// the current frame's header (or control frame) is still incomplete.
	EventMore Event = iota
	// EventHeader: the header of a streamed frame completed; its payload
	// follows as EventPayload. Data frames, and control frames longer
	// than MaxControlPayloadLen (which are invalid, for the peer to
	// reject), are streamed.
	EventHeader
	// EventPayload: the consumed bytes are payload of the current
	// streamed frame, as sent (masked, if it is).
	EventPayload
	// EventControl: a control frame of at most MaxControlPayloadLen
	// bytes of payload completed, header and payload;
	// [Parser.ControlPayload] returns its payload unmasked.
	EventControl
)

type parseState uint8

const (
	stHeader  parseState = iota // collecting header bytes
	stControl                   // collecting a control frame's payload
	stPayload                   // streaming a frame's payload
)

// Parser parses a stream of frames incrementally: bytes may arrive split
// at any point, a header included.
//
// It holds back the bytes of an incomplete header, and of a whole control
// frame until it is complete, so that a caller can decide what to do with
// a frame (forward, drop, inspect) before any of its bytes are passed on.
// Payload of other frames is streamed. It checks nothing beyond what it
// needs to find frame boundaries: reserved opcodes, RSV bits and
// oversized control frames are the peers' to reject. The zero value is
// ready to use and expects a frame header next. A Parser never
// allocates.
type Parser struct {
	state     parseState
	need      int    // header bytes needed: 2 until the length byte is known
	rawN      int    // bytes of the current frame held in raw
	hdrLen    int    // encoded length of hdr
	remaining uint64 // payload bytes of the current frame still to come
	hdr       Header
	raw       [MaxHeldLen]byte // held bytes; a completed control frame's payload is unmasked in place
}

// Held returns the bytes of the current, incomplete frame that the
// parser has consumed and holds back, at most [MaxHeldLen]. The slice is
// valid until the next call to Parse.
func (p *Parser) Held() []byte { return p.raw[:p.rawN] }

// Header returns the header of the current or last completed frame.
func (p *Parser) Header() *Header { return &p.hdr }

// ControlPayload returns the unmasked payload of the control frame
// reported by the last [EventControl]. It is valid until the next call to
// Parse.
func (p *Parser) ControlPayload() []byte {
	return p.raw[p.hdrLen : p.hdrLen+int(p.hdr.Length)]
}

// AtBoundary reports whether the parser is between frames: no byte of a
// frame consumed, or only bytes it holds back. Bytes the caller passed on
// then form whole frames.
func (p *Parser) AtBoundary() bool { return p.state != stPayload }

// Parse consumes a prefix of b, at least one byte when b is not empty, and
// reports what it was. A caller loops until b is consumed.
func (p *Parser) Parse(b []byte) (n int, ev Event) {
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
		return n, EventPayload
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
		return n, EventMore
	}
	p.decodeHeader()
	p.need = 0
	if p.hdr.IsControl() && p.hdr.Length <= MaxControlPayloadLen {
		p.remaining = p.hdr.Length
		p.state = stControl
		m, ev := p.parseControl(b[n:])
		return n + m, ev
	}
	p.rawN = 0
	p.remaining = p.hdr.Length
	if p.remaining > 0 {
		p.state = stPayload
	}
	return n, EventHeader
}

// parseControl collects control frame payload from b.
func (p *Parser) parseControl(b []byte) (n int, ev Event) {
	n = copy(p.raw[p.rawN:p.rawN+int(p.remaining)], b)
	p.rawN += n
	p.remaining -= uint64(n)
	if p.remaining > 0 {
		return n, EventMore
	}
	if p.hdr.Masked {
		Mask(p.hdr.Key, p.raw[p.hdrLen:p.rawN])
	}
	p.rawN = 0
	p.state = stHeader
	return n, EventControl
}

// decodeHeader decodes the complete header held in p.raw.
func (p *Parser) decodeHeader() {
	b := p.raw[:p.need]
	h := Header{
		Fin:    b[0]&0x80 != 0,
		RSV:    (b[0] >> 4) & 0x7,
		Opcode: b[0] & 0xf,
		Masked: b[1]&0x80 != 0,
	}
	i := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		h.Length = uint64(binary.BigEndian.Uint16(b[2:]))
		i += 2
	case 127:
		h.Length = binary.BigEndian.Uint64(b[2:])
		i += 8
	default:
		h.Length = uint64(l)
	}
	if h.Masked {
		copy(h.Key[:], b[i:i+4])
	}
	p.hdr = h
	p.hdrLen = len(b)
}
