package wsframe

import (
	"encoding/binary"
	"unicode/utf8"
)

// Close codes (RFC 6455 §7.4.1) that wssgate sends or interprets.
const (
	CloseNormal        = 1000
	CloseGoingAway     = 1001
	CloseProtocolError = 1002
	CloseInvalidData   = 1007 // data not consistent with the message type (invalid UTF-8 in text)
	CloseTooBig        = 1009 // a message (or frame) too big to process
	// CloseNoStatus stands for a close frame without a code. It is never
	// sent: [AppendClosePayload] writes no payload for it.
	CloseNoStatus      = 1005
	CloseInternalError = 1011
)

// ValidCloseCode reports whether code may be sent in a close frame:
// 1000 to 1003, 1007 to 1014 (1012 to 1014 are registered with IANA
// after RFC 6455), and 3000 to 4999, for libraries and applications
// (§7.4.2). 1004 is reserved, 1005, 1006 and 1015 stand for conditions
// and must not be sent, and the other codes below 3000 are unassigned.
// Some clients reject codes they do not know: gorilla/websocket v1.5.3,
// for one, fails the connection on 1014.
func ValidCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// AppendClosePayload appends the payload of a close frame to dst: code as
// two big-endian bytes, then reason cut to [MaxCloseReasonLen] bytes at a
// UTF-8 character boundary. For a code that may not be sent (see
// [ValidCloseCode]), 0 and 1005 among them, it appends nothing: a close
// frame without a payload, which a peer reads as 1005 (no status).
func AppendClosePayload(dst []byte, code int, reason string) []byte {
	if !ValidCloseCode(code) {
		return dst
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, truncateReason(reason)...)
}

// AppendCloseFrame appends a close frame with the payload
// [AppendClosePayload] gives code and reason to dst, masked with key when
// masked: at most [MaxControlFrameLen] bytes.
func AppendCloseFrame(dst []byte, code int, reason string, masked bool, key [4]byte) []byte {
	n := 0
	if ValidCloseCode(code) {
		n = 2 + len(truncateReason(reason))
	}
	dst = AppendHeader(dst, Header{Fin: true, Opcode: OpClose, Masked: masked, Key: key, Length: uint64(n)})
	start := len(dst)
	dst = AppendClosePayload(dst, code, reason)
	if masked {
		Mask(key, dst[start:])
	}
	return dst
}

// truncateReason shortens reason to at most MaxCloseReasonLen bytes
// without splitting a UTF-8 encoded character.
func truncateReason(reason string) string {
	if len(reason) <= MaxCloseReasonLen {
		return reason
	}
	n := MaxCloseReasonLen
	for n > 0 && !utf8.RuneStart(reason[n]) {
		n--
	}
	return reason[:n]
}

// CloseCode returns the status code of a close frame payload, or
// [CloseNoStatus] when it carries none. The code is not checked: a peer
// may send any.
func CloseCode(payload []byte) int {
	if len(payload) < 2 {
		return CloseNoStatus
	}
	return int(binary.BigEndian.Uint16(payload))
}
