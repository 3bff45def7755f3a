package wsframe

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

// appendTestFrame appends f to dst. Unlike AppendControlFrame it writes
// any frame.
func appendTestFrame(dst []byte, f testFrame) []byte {
	n := uint64(len(f.payload))
	if f.length != 0 {
		n = f.length
	}
	dst = AppendHeader(dst, Header{Fin: f.fin, RSV: f.rsv, Opcode: f.opcode, Masked: f.masked, Key: f.key, Length: n})
	start := len(dst)
	dst = append(dst, f.payload...)
	if f.masked {
		Mask(f.key, dst[start:])
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
	var p Parser
	var cur *parsedFrame
	for _, b := range chunks {
		for len(b) > 0 {
			held := append([]byte(nil), p.Held()...)
			if !p.AtBoundary() && len(held) != 0 {
				t.Fatalf("held %d bytes while streaming payload", len(held))
			}
			n, ev := p.Parse(b)
			if n <= 0 || n > len(b) {
				t.Fatalf("parse consumed %d of %d bytes", n, len(b))
			}
			switch ev {
			case EventMore:
				if n != len(b) {
					t.Fatalf("EventMore consumed %d of %d bytes", n, len(b))
				}
				if got := len(p.Held()); got != len(held)+n || got > MaxHeldLen {
					t.Fatalf("held %d bytes after EventMore, want %d (at most %d)", got, len(held)+n, MaxHeldLen)
				}
			case EventHeader, EventControl:
				h := p.Header()
				frames = append(frames, parsedFrame{
					fin: h.Fin, rsv: h.RSV, opcode: h.Opcode, masked: h.Masked,
					key: h.Key, length: h.Length, payload: []byte{},
				})
				cur = &frames[len(frames)-1]
				out = append(append(out, held...), b[:n]...)
				if ev == EventControl {
					cur.payload = append(cur.payload, p.ControlPayload()...)
				}
				cur.complete = p.AtBoundary()
			case EventPayload:
				if cur == nil {
					t.Fatal("EventPayload before any header")
				}
				cur.payload = append(cur.payload, b[:n]...)
				cur.complete = p.AtBoundary()
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
		if f.opcode >= 8 && f.length <= MaxControlPayloadLen {
			if uint64(len(rest)) < f.length {
				return frames, len(data)
			}
			f.payload = append([]byte{}, rest[:f.length]...)
			if f.masked {
				Mask(f.key, f.payload)
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
		{"empty text", []testFrame{{fin: true, opcode: OpText}}},
		{"masked text", []testFrame{{fin: true, opcode: OpText, masked: true, key: key, payload: []byte("hello")}}},
		{"7-bit max", []testFrame{{fin: true, opcode: OpBinary, payload: make([]byte, 125)}}},
		{"16-bit length", []testFrame{{fin: true, opcode: OpBinary, masked: true, key: key, payload: make([]byte, 126)}}},
		{"16-bit max", []testFrame{{fin: true, opcode: OpBinary, payload: make([]byte, 0xffff)}}},
		{"64-bit length", []testFrame{{fin: true, opcode: OpBinary, masked: true, key: key, payload: long}}},
		{"rsv bits (permessage-deflate)", []testFrame{{fin: true, rsv: 4, opcode: OpText, payload: []byte{0xf2, 0x48, 0xcd}}}},
		{"fragments with control frames between", []testFrame{
			{opcode: OpText, masked: true, key: key, payload: []byte("frag-1 ")},
			{fin: true, opcode: OpPing, masked: true, key: key, payload: []byte("ping!")},
			{opcode: OpContinuation, masked: true, key: key, payload: []byte("frag-2 ")},
			{fin: true, opcode: OpPong, masked: true, key: key, payload: []byte("wssgate")},
			{fin: true, opcode: OpContinuation, masked: true, key: key, payload: []byte("frag-3")},
		}},
		{"close with code and reason", []testFrame{{fin: true, opcode: OpClose, masked: true, key: key, payload: AppendClosePayload(nil, CloseNormal, "bye")}}},
		{"empty close", []testFrame{{fin: true, opcode: OpClose}}},
		{"control frame of 125 bytes", []testFrame{{fin: true, opcode: OpPing, masked: true, key: key, payload: bytes.Repeat([]byte("p"), 125)}}},
		{"oversized control frame is streamed", []testFrame{{fin: true, opcode: OpPing, payload: make([]byte, 126)}}},
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
				if f.opcode < 8 || len(f.payload) > MaxControlPayloadLen {
					// Streamed payload is reported as sent: masked.
					w.payload = append([]byte{}, f.payload...)
					if f.masked {
						Mask(f.key, w.payload)
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
		{"control payload cut", appendTestFrame(nil, testFrame{fin: true, opcode: OpClose, masked: true, key: key, payload: []byte{3, 232, 'b', 'y', 'e'}})[:9], 9},
		{"data payload streams", appendTestFrame(nil, testFrame{fin: true, opcode: OpText, payload: []byte("hello")})[:4], 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Parser
			for b := tt.data; len(b) > 0; {
				n, _ := p.Parse(b)
				b = b[n:]
			}
			if got := len(p.Held()); got != tt.wantHeld {
				t.Errorf("got %d held bytes, want %d", got, tt.wantHeld)
			}
		})
	}
}

func TestAppendHeader(t *testing.T) {
	key := [4]byte{0xa, 0xb, 0xc, 0xd}
	tests := []struct {
		name string
		h    Header
		want []byte
	}{
		{"zero", Header{}, []byte{0x00, 0x00}},
		{"final text", Header{Fin: true, Opcode: OpText, Length: 5}, []byte{0x81, 0x05}},
		{"rsv1 binary", Header{Fin: true, RSV: 4, Opcode: OpBinary, Length: 1}, []byte{0xc2, 0x01}},
		{"7-bit max", Header{Fin: true, Opcode: OpBinary, Length: 125}, []byte{0x82, 125}},
		{"16-bit min", Header{Fin: true, Opcode: OpBinary, Length: 126}, []byte{0x82, 126, 0x00, 126}},
		{"16-bit max", Header{Opcode: OpText, Length: 0xffff}, []byte{0x01, 126, 0xff, 0xff}},
		{"64-bit min", Header{Fin: true, Opcode: OpBinary, Length: 0x10000}, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{"masked", Header{Fin: true, Opcode: OpPing, Masked: true, Key: key, Length: 2}, []byte{0x89, 0x82, 0xa, 0xb, 0xc, 0xd}},
		{"longest", Header{Fin: true, Opcode: OpBinary, Masked: true, Key: key, Length: 1 << 40},
			[]byte{0x82, 0xff, 0, 0, 1, 0, 0, 0, 0, 0, 0xa, 0xb, 0xc, 0xd}},
		{"out-of-range opcode and rsv cut off", Header{RSV: 0xff, Opcode: 0xff}, []byte{0x7f, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendHeader([]byte("x"), tt.h)
			if !bytes.Equal(got[1:], tt.want) || got[0] != 'x' {
				t.Errorf("got %x, want x then %x", got, tt.want)
			}
			if n := len(got) - 1; n > MaxHeaderLen || n != headerLen(got[2]) {
				t.Errorf("got %d header bytes, want headerLen's %d (at most %d)", n, headerLen(got[2]), MaxHeaderLen)
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
		want    []byte // payload as received; nil means payload
	}{
		{"ping to client", OpPing, []byte("wssgate"), false, nil},
		{"ping to upstream", OpPing, []byte("wssgate"), true, nil},
		{"close to client", OpClose, AppendClosePayload(nil, CloseInternalError, "upstream closed"), false, nil},
		{"close to upstream", OpClose, AppendClosePayload(nil, CloseGoingAway, "client went away"), true, nil},
		{"empty pong", OpPong, nil, true, []byte{}},
		{"long pong cut", OpPong, bytes.Repeat([]byte("p"), 200), false, bytes.Repeat([]byte("p"), MaxControlPayloadLen)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == nil {
				want = tt.payload
			}
			frame := AppendControlFrame(make([]byte, 0, MaxControlFrameLen), tt.opcode, tt.payload, tt.masked, key)
			if len(frame) > MaxControlFrameLen {
				t.Errorf("got a %d-byte frame, want at most %d", len(frame), MaxControlFrameLen)
			}
			frames, _ := parseChunks(t, [][]byte{frame})
			if len(frames) != 1 {
				t.Fatalf("got %d frames, want 1", len(frames))
			}
			f := frames[0]
			if !f.fin || f.opcode != tt.opcode || f.masked != tt.masked || f.rsv != 0 {
				t.Errorf("got fin=%v opcode=%#x masked=%v rsv=%d, want fin=true opcode=%#x masked=%v rsv=0",
					f.fin, f.opcode, f.masked, f.rsv, tt.opcode, tt.masked)
			}
			if !bytes.Equal(f.payload, want) {
				t.Errorf("got payload %q, want %q", f.payload, want)
			}
			if s := AppendControlFrame(nil, tt.opcode, string(tt.payload), tt.masked, key); !bytes.Equal(s, frame) {
				t.Errorf("string payload: got %x, want %x", s, frame)
			}
		})
	}
}

func TestAppendClosePayload(t *testing.T) {
	tests := []struct {
		name       string
		code       int
		reason     string
		wantCode   int // CloseNoStatus: no payload at all
		wantReason string
	}{
		{"no reason", CloseGoingAway, "", CloseGoingAway, ""},
		{"short", CloseInternalError, "upstream closed", CloseInternalError, "upstream closed"},
		{"123 bytes kept", CloseGoingAway, strings.Repeat("a", 123), CloseGoingAway, strings.Repeat("a", 123)},
		{"long truncated", CloseGoingAway, strings.Repeat("a", 200), CloseGoingAway, strings.Repeat("a", 123)},
		// 122 ASCII bytes then a 3-byte character straddling the limit.
		{"utf-8 not split", CloseGoingAway, strings.Repeat("a", 122) + "€uro", CloseGoingAway, strings.Repeat("a", 122)},
		{"application code", 4000, "bye", 4000, "bye"},
		{"zero code: no payload", 0, "ignored", CloseNoStatus, ""},
		{"1005: no payload", CloseNoStatus, "ignored", CloseNoStatus, ""},
		{"1006: no payload", 1006, "ignored", CloseNoStatus, ""},
		{"out of range: no payload", 1000 + 1<<16, "ignored", CloseNoStatus, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := AppendClosePayload(nil, tt.code, tt.reason)
			if len(p) > MaxControlPayloadLen {
				t.Fatalf("got %d bytes, want at most %d", len(p), MaxControlPayloadLen)
			}
			if got := CloseCode(p); got != tt.wantCode {
				t.Errorf("got code %d, want %d", got, tt.wantCode)
			}
			if tt.wantCode == CloseNoStatus {
				if len(p) != 0 {
					t.Errorf("got payload %q, want none", p)
				}
				return
			}
			if got := string(p[2:]); got != tt.wantReason {
				t.Errorf("got reason %q, want %q", got, tt.wantReason)
			}
			if !utf8.Valid(p[2:]) {
				t.Errorf("reason %q is not valid UTF-8", p[2:])
			}

			key := [4]byte{1, 2, 3, 4}
			for _, masked := range []bool{false, true} {
				frame := AppendCloseFrame(nil, tt.code, tt.reason, masked, key)
				if want := AppendControlFrame(nil, OpClose, p, masked, key); !bytes.Equal(frame, want) {
					t.Errorf("AppendCloseFrame masked=%v: got %x, want %x", masked, frame, want)
				}
			}
		})
	}
}

func TestValidCloseCode(t *testing.T) {
	valid := map[int]bool{}
	for _, c := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		valid[c] = true
	}
	for _, c := range []int{-1, 0, 999, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1014, 1015, 1016, 2999, 3000, 3999, 4000, 4999, 5000, 1 << 16} {
		if got := ValidCloseCode(c); got != valid[c] {
			t.Errorf("ValidCloseCode(%d): got %v, want %v", c, got, valid[c])
		}
	}
}

func TestCloseCode(t *testing.T) {
	tests := []struct {
		payload []byte
		want    int
	}{
		{nil, CloseNoStatus},
		{[]byte{3}, CloseNoStatus},
		{[]byte{3, 232}, CloseNormal},
		{[]byte{3, 243, 'x'}, CloseInternalError},
		{[]byte{0, 0}, 0}, // invalid, but what was sent
	}
	for _, tt := range tests {
		if got := CloseCode(tt.payload); got != tt.want {
			t.Errorf("CloseCode(%v): got %d, want %d", tt.payload, got, tt.want)
		}
	}
}

// TestNoAllocs: the relay parses every frame and writes control frames
// on hot paths; none of it may allocate.
func TestNoAllocs(t *testing.T) {
	data := appendTestFrame(nil, testFrame{fin: true, opcode: OpBinary, masked: true, key: [4]byte{1, 2, 3, 4}, payload: make([]byte, 300)})
	data = appendTestFrame(data, testFrame{fin: true, opcode: OpPing, masked: true, key: [4]byte{1, 2, 3, 4}, payload: []byte("ping")})
	var p Parser
	var out [MaxControlFrameLen]byte
	allocs := testing.AllocsPerRun(100, func() {
		for b := data; len(b) > 0; {
			n, _ := p.Parse(b[:min(len(b), 7)])
			b = b[n:]
		}
		AppendCloseFrame(out[:0], CloseGoingAway, "server shutting down", true, [4]byte{5, 6, 7, 8})
		AppendControlFrame(out[:0], OpPing, "wssgate", false, [4]byte{})
		AppendHeader(out[:0], Header{Fin: true, Opcode: OpText, Length: 1 << 20})
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per run, want 0", allocs)
	}
}

// FuzzFrameParser checks that feeding bytes split at any points yields
// the same frames as feeding them at once and as a simple whole-buffer
// decoder, that every byte not held back is passed on unchanged, and that
// nothing panics.
func FuzzFrameParser(f *testing.F) {
	key := [4]byte{9, 8, 7, 6}
	var stream []byte
	stream = appendTestFrame(stream, testFrame{opcode: OpText, masked: true, key: key, payload: []byte("part one ")})
	stream = appendTestFrame(stream, testFrame{fin: true, opcode: OpPing, masked: true, key: key, payload: []byte("x")})
	stream = appendTestFrame(stream, testFrame{fin: true, opcode: OpContinuation, masked: true, key: key, payload: []byte("part two")})
	f.Add(stream, []byte{0, 3, 1})
	f.Add(appendTestFrame(nil, testFrame{fin: true, rsv: 4, opcode: OpBinary, payload: make([]byte, 300)}), []byte{1})
	f.Add(appendTestFrame(nil, testFrame{fin: true, opcode: OpBinary, masked: true, key: key, payload: make([]byte, 70000)}), []byte{255, 7})
	f.Add(AppendCloseFrame(nil, CloseGoingAway, "bye", false, [4]byte{}), []byte{0})
	f.Add(appendTestFrame(nil, testFrame{fin: true, opcode: OpBinary, length: 1 << 63}), []byte{4})
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
