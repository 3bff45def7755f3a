package gatewayworker

import (
	"encoding/binary"
	"errors"
	"io"
)

// A query's reply is not a packet: it is a uint32 big-endian length (of
// the payload only) followed by the payload, which is PHP serialize()
// output. GatewayClient reads one reply and closes the connection.

// AppendReply appends the reply framing of payload to b.
func AppendReply(b, payload []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// AppendReplyValue appends the reply carrying serialize(v) to b.
func AppendReplyValue(b []byte, v any) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b, err := AppendSerialize(b, v)
	if err != nil {
		return b[:start], err
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b, nil
}

// ReadReply reads one reply from r and returns its payload. A payload
// over max bytes (MaxPacketSize when max <= 0) is refused with
// ErrPacketTooLarge before it is read; a stream that ends inside the
// reply gives ErrTruncated.
func ReadReply(r io.Reader, max int) ([]byte, error) {
	if max <= 0 {
		max = MaxPacketSize
	}
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, ErrTruncated
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(head[:])
	if uint64(n) > uint64(max) {
		return nil, &PacketError{Err: ErrPacketTooLarge, PackLen: n}
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, ErrTruncated
		}
		return nil, err
	}
	return payload, nil
}
