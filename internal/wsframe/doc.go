// Package wsframe encodes and parses WebSocket frames (RFC 6455 §5):
// frame headers, masking, control frames and close payloads. It is the
// one place wssgate speaks the wire format at frame level; the proxy's
// relay and the gateway's writer both use it. It imports nothing from
// the project.
//
// [Parser] reads a stream of frames incrementally, holding back only an
// incomplete header or control frame, so that a relay can decide about a
// frame before any of its bytes go on and can stream the payload of data
// frames without copying it. [AppendHeader], [AppendControlFrame] and
// [AppendCloseFrame] append frames to a caller's buffer. Nothing in the
// package allocates, except append growing a buffer that is too small.
//
// Close payloads carry a code and a reason of at most [MaxCloseReasonLen]
// bytes, cut at a UTF-8 character boundary; [ValidCloseCode] says which
// codes may be sent at all.
package wsframe
