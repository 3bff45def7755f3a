package gateway

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestWSTransportWrite checks the frames the hub's writer puts on the
// wire, byte for byte: servers send final, unmasked frames, a
// disconnect's code and reason (at most 123 bytes) go in the close
// frame, and a disconnect without a code that may be sent gets an empty
// close frame.
func TestWSTransportWrite(t *testing.T) {
	long := strings.Repeat("é", 70) // 140 bytes: cut to 122, before a character split at 123
	tests := []struct {
		name string
		it   item
		want []byte
	}{
		{"text", item{kind: itemData, msg: newMessage([]byte("hi"))}, []byte{0x81, 2, 'h', 'i'}},
		{"binary (not UTF-8)", item{kind: itemData, msg: newMessage([]byte{0xff, 0})}, []byte{0x82, 2, 0xff, 0}},
		{"16-bit length", item{kind: itemData, msg: newMessage(make([]byte, 300))}, append([]byte{0x81, 126, 1, 44}, make([]byte, 300)...)},
		{"ping", item{kind: itemPing}, []byte{0x89, 0}},
		{"pong", item{kind: itemPong, ctl: []byte("abc")}, []byte{0x8a, 3, 'a', 'b', 'c'}},
		{"long pong cut to 125", item{kind: itemPong, ctl: bytes.Repeat([]byte{'p'}, 200)}, append([]byte{0x8a, 125}, bytes.Repeat([]byte{'p'}, 125)...)},
		{"close 1000", item{kind: itemClose, disc: disconnectNormal()}, []byte{0x88, 2, 0x03, 0xe8}},
		{"close with reason", item{kind: itemClose, disc: disconnectTooBig()}, append([]byte{0x88, 2 + 15, 0x03, 0xf1}, "message too big"...)},
		{"close reason cut", item{kind: itemClose, disc: Disconnect{Code: 4000, Reason: long}}, append([]byte{0x88, 2 + 122, 0x0f, 0xa0}, long[:122]...)},
		{"close without code", item{kind: itemClose, disc: Disconnect{Reason: "ignored"}}, []byte{0x88, 0}},
		{"close 1005", item{kind: itemClose, disc: Disconnect{Code: 1005}}, []byte{0x88, 0}},
		{"close 1006", item{kind: itemClose, disc: Disconnect{Code: 1006}}, []byte{0x88, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := bufio.NewWriter(&out)
			if err := (&wsTransport{}).write(w, tt.it); err != nil {
				t.Fatalf("write: %v", err)
			}
			w.Flush()
			if !bytes.Equal(out.Bytes(), tt.want) {
				t.Errorf("got %x, want %x", out.Bytes(), tt.want)
			}
		})
	}
}

// TestWSTransportWriteAllocs: writing a queued item allocates nothing
// once a broadcast's header is built, control frames included.
func TestWSTransportWriteAllocs(t *testing.T) {
	msg := newMessage([]byte("hello"))
	items := []item{
		{kind: itemData, msg: msg},
		{kind: itemPing},
		{kind: itemPong, ctl: []byte("abc")},
		{kind: itemClose, disc: disconnectShutdown()},
	}
	w := bufio.NewWriterSize(io.Discard, 4096)
	tr := &wsTransport{}
	allocs := testing.AllocsPerRun(100, func() {
		for _, it := range items {
			tr.write(w, it)
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per batch, want 0", allocs)
	}
}
