package proxy

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// testFrame describes a frame for appendTestFrame.
type testFrame struct {
	fin     bool
	rsv     byte
	opcode  byte
	masked  bool
	key     [4]byte
	payload []byte // unmasked
	// length overrides len(payload) in the header when not zero, to write
	// a header whose payload is cut short.
	length uint64
}

// appendTestFrame appends f, encoded with the shortest length form, to
// dst. Unlike appendControlFrame it writes any frame.
func appendTestFrame(dst []byte, f testFrame) []byte {
	b0 := f.opcode | f.rsv<<4
	if f.fin {
		b0 |= 0x80
	}
	var b1 byte
	if f.masked {
		b1 = 0x80
	}
	n := uint64(len(f.payload))
	if f.length != 0 {
		n = f.length
	}
	switch {
	case n < 126:
		dst = append(dst, b0, b1|byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, b1|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, n)
	}
	if f.masked {
		dst = append(dst, f.key[:]...)
	}
	start := len(dst)
	dst = append(dst, f.payload...)
	if f.masked {
		maskBytes(f.key, dst[start:])
	}
	return dst
}

// parsedFrame is a frame as a test saw it.
type parsedFrame struct {
	fin      bool
	rsv      byte
	opcode   byte
	masked   bool
	key      [4]byte
	length   uint64
	payload  []byte // control: unmasked; others: as on the wire
	complete bool
}

// parseChunks feeds chunks to a parser and returns the frames seen and
// the bytes a relay would have passed on: every byte except those the
// parser still holds at the end.
func parseChunks(t testing.TB, chunks [][]byte) (frames []parsedFrame, out []byte) {
	var p frameParser
	var cur *parsedFrame
	for _, b := range chunks {
		for len(b) > 0 {
			held := append([]byte(nil), p.held()...)
			if !p.atBoundary() && len(held) != 0 {
				t.Fatalf("held %d bytes while streaming payload", len(held))
			}
			n, ev := p.parse(b)
			if n <= 0 || n > len(b) {
				t.Fatalf("parse consumed %d of %d bytes", n, len(b))
			}
			switch ev {
			case evMore:
				if n != len(b) {
					t.Fatalf("evMore consumed %d of %d bytes", n, len(b))
				}
				if got := len(p.held()); got != len(held)+n || got > maxHeldLen {
					t.Fatalf("held %d bytes after evMore, want %d (at most %d)", got, len(held)+n, maxHeldLen)
				}
			case evHeader, evControl:
				h := p.header()
				frames = append(frames, parsedFrame{
					fin: h.fin, rsv: h.rsv, opcode: h.opcode, masked: h.masked,
					key: h.mask, length: h.length, payload: []byte{},
				})
				cur = &frames[len(frames)-1]
				out = append(append(out, held...), b[:n]...)
				if ev == evControl {
					cur.payload = append(cur.payload, p.controlPayload()...)
				}
				cur.complete = p.atBoundary()
			case evPayload:
				if cur == nil {
					t.Fatal("evPayload before any header")
				}
				cur.payload = append(cur.payload, b[:n]...)
				cur.complete = p.atBoundary()
				out = append(out, b[:n]...)
			}
			b = b[n:]
		}
	}
	return frames, out
}

// referenceFrames decodes data, all of it at hand, the simple way.
func referenceFrames(data []byte) (frames []parsedFrame, held int) {
	for len(data) > 0 {
		if len(data) < 2 {
			return frames, len(data)
		}
		hl := headerLen(data[1])
		if len(data) < hl {
			return frames, len(data)
		}
		f := parsedFrame{
			fin:    data[0]&0x80 != 0,
			rsv:    data[0] >> 4 & 7,
			opcode: data[0] & 0xf,
			masked: data[1]&0x80 != 0,
		}
		i := 2
		switch l := data[1] & 0x7f; l {
		case 126:
			f.length = uint64(binary.BigEndian.Uint16(data[2:]))
			i = 4
		case 127:
			f.length = binary.BigEndian.Uint64(data[2:])
			i = 10
		default:
			f.length = uint64(l)
		}
		if f.masked {
			copy(f.key[:], data[i:])
		}
		rest := data[hl:]
		if f.opcode >= 8 && f.length <= maxControlPayloadLen {
			if uint64(len(rest)) < f.length {
				return frames, len(data)
			}
			f.payload = append([]byte{}, rest[:f.length]...)
			if f.masked {
				maskBytes(f.key, f.payload)
			}
			f.complete = true
			frames = append(frames, f)
			data = rest[f.length:]
			continue
		}
		n := uint64(len(rest))
		if n >= f.length {
			n = f.length
			f.complete = true
		}
		f.payload = append([]byte{}, rest[:n]...)
		frames = append(frames, f)
		data = rest[n:]
	}
	return frames, 0
}

// splitAt cuts data into chunks whose sizes come from sizes, cycling.
func splitAt(data, sizes []byte) [][]byte {
	var chunks [][]byte
	for i := 0; len(data) > 0; i++ {
		n := 1
		if len(sizes) > 0 {
			n = int(sizes[i%len(sizes)]) + 1
		}
		n = min(n, len(data))
		chunks = append(chunks, data[:n])
		data = data[n:]
	}
	return chunks
}

func TestFrameParser(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	long := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80000 bytes: 64-bit length
	tests := []struct {
		name   string
		frames []testFrame
	}{
		{"empty text", []testFrame{{fin: true, opcode: opText}}},
		{"masked text", []testFrame{{fin: true, opcode: opText, masked: true, key: key, payload: []byte("hello")}}},
		{"7-bit max", []testFrame{{fin: true, opcode: opBinary, payload: make([]byte, 125)}}},
		{"16-bit length", []testFrame{{fin: true, opcode: opBinary, masked: true, key: key, payload: make([]byte, 126)}}},
		{"16-bit max", []testFrame{{fin: true, opcode: opBinary, payload: make([]byte, 0xffff)}}},
		{"64-bit length", []testFrame{{fin: true, opcode: opBinary, masked: true, key: key, payload: long}}},
		{"rsv bits (permessage-deflate)", []testFrame{{fin: true, rsv: 4, opcode: opText, payload: []byte{0xf2, 0x48, 0xcd}}}},
		{"fragments with control frames between", []testFrame{
			{opcode: opText, masked: true, key: key, payload: []byte("frag-1 ")},
			{fin: true, opcode: opPing, masked: true, key: key, payload: []byte("ping!")},
			{opcode: opContinuation, masked: true, key: key, payload: []byte("frag-2 ")},
			{fin: true, opcode: opPong, masked: true, key: key, payload: []byte(pingPayload)},
			{fin: true, opcode: opContinuation, masked: true, key: key, payload: []byte("frag-3")},
		}},
		{"close with code and reason", []testFrame{{fin: true, opcode: opClose, masked: true, key: key, payload: appendClosePayload(nil, closeNormal, "bye")}}},
		{"empty close", []testFrame{{fin: true, opcode: opClose}}},
		{"control frame of 125 bytes", []testFrame{{fin: true, opcode: opPing, masked: true, key: key, payload: bytes.Repeat([]byte("p"), 125)}}},
		{"oversized control frame is streamed", []testFrame{{fin: true, opcode: opPing, payload: make([]byte, 126)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var data []byte
			var want []parsedFrame
			for _, f := range tt.frames {
				data = appendTestFrame(data, f)
				w := parsedFrame{
					fin: f.fin, rsv: f.rsv, opcode: f.opcode, masked: f.masked,
					length: uint64(len(f.payload)), payload: f.payload, complete: true,
				}
				if f.masked {
					w.key = f.key
				}
				if w.payload == nil {
					w.payload = []byte{}
				}
				if f.opcode < 8 || len(f.payload) > maxControlPayloadLen {
					// Streamed payload is reported as sent: masked.
					w.payload = append([]byte{}, f.payload...)
					if f.masked {
						maskBytes(f.key, w.payload)
					}
				}
				want = append(want, w)
			}
			for _, split := range []struct {
				name  string
				sizes []byte
			}{{"whole", nil}, {"byte by byte", []byte{0}}, {"uneven", []byte{2, 0, 6, 12, 130}}} {
				chunks := [][]byte{data}
				if split.sizes != nil {
					chunks = splitAt(data, split.sizes)
				}
				got, out := parseChunks(t, chunks)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: got frames %+v, want %+v", split.name, summarize(got), summarize(want))
				}
				if !bytes.Equal(out, data) {
					t.Errorf("%s: passed on %d bytes, want all %d unchanged", split.name, len(out), len(data))
				}
			}
		})
	}
}

// summarize shortens payloads for failure messages.
func summarize(frames []parsedFrame) []parsedFrame {
	out := append([]parsedFrame(nil), frames...)
	for i := range out {
		if len(out[i].payload) > 16 {
			out[i].payload = out[i].payload[:16]
		}
	}
	return out
}

func TestFrameParserHoldsIncompleteFrames(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	tests := []struct {
		name     string
		data     []byte
		wantHeld int
	}{
		{"one header byte", []byte{0x81}, 1},
		{"16-bit length cut", []byte{0x82, 126, 0x01}, 3},
		{"mask key cut", []byte{0x81, 0x85, 1, 2}, 4},
		{"control payload cut", appendTestFrame(nil, testFrame{fin: true, opcode: opClose, masked: true, key: key, payload: []byte{3, 232, 'b', 'y', 'e'}})[:9], 9},
		{"data payload streams", appendTestFrame(nil, testFrame{fin: true, opcode: opText, payload: []byte("hello")})[:4], 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p frameParser
			for b := tt.data; len(b) > 0; {
				n, _ := p.parse(b)
				b = b[n:]
			}
			if got := len(p.held()); got != tt.wantHeld {
				t.Errorf("got %d held bytes, want %d", got, tt.wantHeld)
			}
		})
	}
}

func TestAppendControlFrame(t *testing.T) {
	key := [4]byte{0xde, 0xad, 0xbe, 0xef}
	tests := []struct {
		name    string
		opcode  byte
		payload []byte
		masked  bool
	}{
		{"ping to client", opPing, []byte(pingPayload), false},
		{"ping to upstream", opPing, []byte(pingPayload), true},
		{"close to client", opClose, appendClosePayload(nil, closeUpstreamGone, "upstream closed"), false},
		{"close to upstream", opClose, appendClosePayload(nil, closeGoingAway, "client went away"), true},
		{"empty pong", opPong, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := appendControlFrame(make([]byte, 0, maxControlFrameLen), tt.opcode, tt.payload, tt.masked, key)
			frames, _ := parseChunks(t, [][]byte{frame})
			if len(frames) != 1 {
				t.Fatalf("got %d frames, want 1", len(frames))
			}
			f := frames[0]
			if !f.fin || f.opcode != tt.opcode || f.masked != tt.masked || f.rsv != 0 {
				t.Errorf("got fin=%v opcode=%#x masked=%v rsv=%d, want fin=true opcode=%#x masked=%v rsv=0",
					f.fin, f.opcode, f.masked, f.rsv, tt.opcode, tt.masked)
			}
			if !bytes.Equal(f.payload, tt.payload) {
				t.Errorf("got payload %q, want %q", f.payload, tt.payload)
			}
		})
	}
}

func TestAppendClosePayload(t *testing.T) {
	tests := []struct {
		name       string
		code       uint16
		reason     string
		wantReason string
	}{
		{"no reason", closeGoingAway, "", ""},
		{"short", closeUpstreamGone, "upstream closed", "upstream closed"},
		{"123 bytes kept", closeGoingAway, strings.Repeat("a", 123), strings.Repeat("a", 123)},
		{"long truncated", closeGoingAway, strings.Repeat("a", 200), strings.Repeat("a", 123)},
		// 122 ASCII bytes then a 3-byte character straddling the limit.
		{"utf-8 not split", closeGoingAway, strings.Repeat("a", 122) + "€uro", strings.Repeat("a", 122)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := appendClosePayload(nil, tt.code, tt.reason)
			if len(p) > maxControlPayloadLen {
				t.Fatalf("got %d bytes, want at most %d", len(p), maxControlPayloadLen)
			}
			if got := closeCode(p); got != int(tt.code) {
				t.Errorf("got code %d, want %d", got, tt.code)
			}
			if got := string(p[2:]); got != tt.wantReason {
				t.Errorf("got reason %q, want %q", got, tt.wantReason)
			}
			if !utf8.Valid(p[2:]) {
				t.Errorf("reason %q is not valid UTF-8", p[2:])
			}
		})
	}
}

func TestFrameCloseCode(t *testing.T) {
	tests := []struct {
		payload []byte
		want    int
	}{
		{nil, closeNoStatus},
		{[]byte{3}, closeNoStatus},
		{[]byte{3, 232}, closeNormal},
		{[]byte{3, 243, 'x'}, closeInternalError},
	}
	for _, tt := range tests {
		if got := closeCode(tt.payload); got != tt.want {
			t.Errorf("closeCode(%v): got %d, want %d", tt.payload, got, tt.want)
		}
	}
}

// FuzzFrameParser checks that feeding bytes split at any points yields
// the same frames as feeding them at once and as a simple whole-buffer
// decoder, that every byte not held back is passed on unchanged, and that
// nothing panics.
func FuzzFrameParser(f *testing.F) {
	key := [4]byte{9, 8, 7, 6}
	var stream []byte
	stream = appendTestFrame(stream, testFrame{opcode: opText, masked: true, key: key, payload: []byte("part one ")})
	stream = appendTestFrame(stream, testFrame{fin: true, opcode: opPing, masked: true, key: key, payload: []byte("x")})
	stream = appendTestFrame(stream, testFrame{fin: true, opcode: opContinuation, masked: true, key: key, payload: []byte("part two")})
	f.Add(stream, []byte{0, 3, 1})
	f.Add(appendTestFrame(nil, testFrame{fin: true, rsv: 4, opcode: opBinary, payload: make([]byte, 300)}), []byte{1})
	f.Add(appendTestFrame(nil, testFrame{fin: true, opcode: opBinary, masked: true, key: key, payload: make([]byte, 70000)}), []byte{255, 7})
	f.Add(appendTestFrame(nil, testFrame{fin: true, opcode: opClose, payload: appendClosePayload(nil, closeGoingAway, "bye")}), []byte{0})
	f.Add(appendTestFrame(nil, testFrame{fin: true, opcode: opBinary, length: 1 << 63}), []byte{4})
	f.Add([]byte{0x89, 0xfe, 0x00}, []byte{})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), []byte{5, 0})
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		whole, wholeOut := parseChunks(t, [][]byte{data})
		split, splitOut := parseChunks(t, splitAt(data, sizes))
		ref, refHeld := referenceFrames(data)
		if !reflect.DeepEqual(split, whole) {
			t.Fatalf("split: got %+v, want %+v", summarize(split), summarize(whole))
		}
		if len(ref) == 0 {
			ref = nil
		}
		if len(whole) == 0 {
			whole = nil
		}
		if !reflect.DeepEqual(whole, ref) {
			t.Fatalf("whole: got %+v, want %+v (reference)", summarize(whole), summarize(ref))
		}
		want := data[:len(data)-refHeld]
		if !bytes.Equal(wholeOut, want) || !bytes.Equal(splitOut, want) {
			t.Fatalf("passed on %d and %d bytes, want the first %d of %d unchanged", len(wholeOut), len(splitOut), len(want), len(data))
		}
	})
}
