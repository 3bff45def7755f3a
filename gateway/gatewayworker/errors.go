package gatewayworker

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers branch on them with errors.Is; the typed
// errors below wrap them and carry the details.
var (
	// ErrPacketTooShort: a packet's pack_len is under the 28-byte header.
	ErrPacketTooShort = errors.New("gatewayworker: packet shorter than its header")
	// ErrPacketTooLarge: a packet's pack_len is over the maximum size
	// (10 MiB, workerman's maxPackageSize).
	ErrPacketTooLarge = errors.New("gatewayworker: packet too large")
	// ErrTruncated: the input ended inside a packet, a reply, a line or
	// a serialized value.
	ErrTruncated = errors.New("gatewayworker: truncated input")
	// ErrBadExtLen: a packet's ext_len does not fit in its pack_len.
	ErrBadExtLen = errors.New("gatewayworker: ext_len exceeds the packet")
	// ErrUnknownCommand: a packet's cmd is none of GatewayProtocol's.
	ErrUnknownCommand = errors.New("gatewayworker: unknown command")
	// ErrBadClientID: a string is not a 20-hex-digit client id.
	ErrBadClientID = errors.New("gatewayworker: malformed client id")
	// ErrBadRegisterLine: a Register line is not a JSON object with a
	// known "event".
	ErrBadRegisterLine = errors.New("gatewayworker: bad register line")
	// ErrSerialize: a value has no PHP serialize form, or a string is
	// not one this package reads (see [Unserialize]).
	ErrSerialize = errors.New("gatewayworker: php serialize")
	// ErrSecretKey: a peer sent the wrong secret key.
	ErrSecretKey = errors.New("gatewayworker: secret key mismatch")
	// ErrUnauthorized: a peer sent a command before authenticating.
	ErrUnauthorized = errors.New("gatewayworker: unauthorized request")
)

// PacketError is a malformed GatewayProtocol packet. Err is one of the
// sentinels ErrPacketTooShort, ErrPacketTooLarge, ErrTruncated,
// ErrBadExtLen or ErrUnknownCommand.
type PacketError struct {
	Err     error
	PackLen uint32 // the packet's pack_len field, 0 if not read
	Cmd     Cmd    // the packet's cmd field, 0 if not read
	ExtLen  uint32 // the packet's ext_len field, 0 if not read
}

func (e *PacketError) Error() string {
	switch e.Err {
	case ErrUnknownCommand:
		return fmt.Sprintf("%v %d (pack_len %d)", e.Err, uint8(e.Cmd), e.PackLen)
	case ErrBadExtLen:
		return fmt.Sprintf("%v: ext_len %d, pack_len %d", e.Err, e.ExtLen, e.PackLen)
	case ErrTruncated:
		if e.PackLen == 0 {
			return fmt.Sprintf("%v: inside a packet header", e.Err)
		}
	}
	return fmt.Sprintf("%v: pack_len %d", e.Err, e.PackLen)
}

func (e *PacketError) Unwrap() error { return e.Err }

// SyntaxError is a malformed PHP serialize string: Offset is the byte at
// which reading stopped. It wraps ErrSerialize (and ErrTruncated when
// the input ended too soon).
type SyntaxError struct {
	Offset int
	Msg    string
	trunc  bool
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("gatewayworker: php unserialize: %s at offset %d", e.Msg, e.Offset)
}

// Unwrap returns ErrSerialize, and ErrTruncated when the input ended
// inside a value.
func (e *SyntaxError) Unwrap() []error {
	if e.trunc {
		return []error{ErrSerialize, ErrTruncated}
	}
	return []error{ErrSerialize}
}
