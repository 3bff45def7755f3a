package proxy

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/wssgate/wssgate/internal/wsframe"
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

// appendTestFrame appends f to dst: any frame, where
// wsframe.AppendControlFrame writes only valid control frames.
func appendTestFrame(dst []byte, f testFrame) []byte {
	n := uint64(len(f.payload))
	if f.length != 0 {
		n = f.length
	}
	dst = wsframe.AppendHeader(dst, wsframe.Header{Fin: f.fin, RSV: f.rsv, Opcode: f.opcode, Masked: f.masked, Key: f.key, Length: n})
	start := len(dst)
	dst = append(dst, f.payload...)
	if f.masked {
		wsframe.Mask(f.key, dst[start:])
	}
	return dst
}

// parsedFrame is a frame as readFrameT saw it.
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

// readFrameT reads one whole frame from c.
func readFrameT(t testing.TB, c net.Conn) parsedFrame {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(relayWait))
	var p wsframe.Parser
	var f parsedFrame
	b := make([]byte, 1)
	for {
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatalf("read frame: %v", err)
		}
		_, ev := p.Parse(b)
		h := p.Header()
		switch ev {
		case wsframe.EventHeader:
			f = parsedFrame{fin: h.Fin, rsv: h.RSV, opcode: h.Opcode, masked: h.Masked, key: h.Key, length: h.Length}
		case wsframe.EventPayload:
			f.payload = append(f.payload, b[0])
		case wsframe.EventControl:
			return parsedFrame{fin: h.Fin, opcode: h.Opcode, masked: h.Masked, key: h.Key, length: h.Length,
				payload: append([]byte(nil), p.ControlPayload()...), complete: true}
		}
		if ev != wsframe.EventMore && p.AtBoundary() {
			f.complete = true
			return f
		}
	}
}
