package gatewayworker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"slices"
	"strconv"
)

// Cmd is a GatewayProtocol command code.
type Cmd uint8

// The command codes of GatewayWorker 4.0 (Protocols/GatewayProtocol.php).
// Codes 2 and 17 to 19 are unused.
const (
	CmdOnConnect                  Cmd = 1   // Gateway → BusinessWorker: a client connected
	CmdOnMessage                  Cmd = 3   // Gateway → BusinessWorker: a client's message
	CmdOnClose                    Cmd = 4   // Gateway → BusinessWorker: a client left
	CmdSendToOne                  Cmd = 5   // sendToClient
	CmdSendToAll                  Cmd = 6   // sendToAll
	CmdKick                       Cmd = 7   // closeClient
	CmdDestroy                    Cmd = 8   // destroyClient
	CmdUpdateSession              Cmd = 9   // updateSession (array_replace_recursive)
	CmdGetAllClientSessions       Cmd = 10  // getAllClientSessions (reply)
	CmdIsOnline                   Cmd = 11  // isOnline (reply)
	CmdBindUID                    Cmd = 12  // bindUid
	CmdUnbindUID                  Cmd = 13  // unbindUid
	CmdSendToUID                  Cmd = 14  // sendToUid
	CmdGetClientIDByUID           Cmd = 15  // getClientIdByUid (reply)
	CmdBatchGetClientIDByUID      Cmd = 16  // batchGetClientIdByUid (reply)
	CmdJoinGroup                  Cmd = 20  // joinGroup
	CmdLeaveGroup                 Cmd = 21  // leaveGroup
	CmdSendToGroup                Cmd = 22  // sendToGroup
	CmdGetClientSessionsByGroup   Cmd = 23  // getClientSessionsByGroup (reply)
	CmdGetClientCountByGroup      Cmd = 24  // getClientIdCountByGroup, getAllClientIdCount (reply)
	CmdSelect                     Cmd = 25  // select: uid/groups/session lists (reply)
	CmdGetGroupIDList             Cmd = 26  // getAllGroupIdList (reply)
	CmdUngroup                    Cmd = 27  // ungroup
	CmdBatchGetClientCountByGroup Cmd = 28  // batchGetClientIdCountByGroup (reply)
	CmdWorkerConnect              Cmd = 200 // BusinessWorker → Gateway: authenticate
	CmdPing                       Cmd = 201 // Gateway → BusinessWorker: keep-alive
	CmdGatewayClientConnect       Cmd = 202 // GatewayClient → Gateway: authenticate
	CmdGetSessionByClientID       Cmd = 203 // getSession (reply)
	CmdSetSession                 Cmd = 204 // setSession
	CmdOnWebSocketConnect         Cmd = 205 // Gateway → BusinessWorker: the WebSocket handshake
)

var cmdNames = map[Cmd]string{
	CmdOnConnect:                  "CMD_ON_CONNECT",
	CmdOnMessage:                  "CMD_ON_MESSAGE",
	CmdOnClose:                    "CMD_ON_CLOSE",
	CmdSendToOne:                  "CMD_SEND_TO_ONE",
	CmdSendToAll:                  "CMD_SEND_TO_ALL",
	CmdKick:                       "CMD_KICK",
	CmdDestroy:                    "CMD_DESTROY",
	CmdUpdateSession:              "CMD_UPDATE_SESSION",
	CmdGetAllClientSessions:       "CMD_GET_ALL_CLIENT_SESSIONS",
	CmdIsOnline:                   "CMD_IS_ONLINE",
	CmdBindUID:                    "CMD_BIND_UID",
	CmdUnbindUID:                  "CMD_UNBIND_UID",
	CmdSendToUID:                  "CMD_SEND_TO_UID",
	CmdGetClientIDByUID:           "CMD_GET_CLIENT_ID_BY_UID",
	CmdBatchGetClientIDByUID:      "CMD_BATCH_GET_CLIENT_ID_BY_UID",
	CmdJoinGroup:                  "CMD_JOIN_GROUP",
	CmdLeaveGroup:                 "CMD_LEAVE_GROUP",
	CmdSendToGroup:                "CMD_SEND_TO_GROUP",
	CmdGetClientSessionsByGroup:   "CMD_GET_CLIENT_SESSIONS_BY_GROUP",
	CmdGetClientCountByGroup:      "CMD_GET_CLIENT_COUNT_BY_GROUP",
	CmdSelect:                     "CMD_SELECT",
	CmdGetGroupIDList:             "CMD_GET_GROUP_ID_LIST",
	CmdUngroup:                    "CMD_UNGROUP",
	CmdBatchGetClientCountByGroup: "CMD_BATCH_GET_CLIENT_COUNT_BY_GROUP",
	CmdWorkerConnect:              "CMD_WORKER_CONNECT",
	CmdPing:                       "CMD_PING",
	CmdGatewayClientConnect:       "CMD_GATEWAY_CLIENT_CONNECT",
	CmdGetSessionByClientID:       "CMD_GET_SESSION_BY_CLIENT_ID",
	CmdSetSession:                 "CMD_SET_SESSION",
	CmdOnWebSocketConnect:         "CMD_ON_WEBSOCKET_CONNECT",
}

// String returns the PHP constant's name ("CMD_SEND_TO_ALL"), or
// "CMD_<n>" for an unknown code.
func (c Cmd) String() string {
	if s, ok := cmdNames[c]; ok {
		return s
	}
	return "CMD_" + strconv.Itoa(int(c))
}

// Known reports whether c is one of GatewayProtocol's commands.
func (c Cmd) Known() bool {
	_, ok := cmdNames[c]
	return ok
}

// Replies reports whether the Gateway answers c with a reply
// ([AppendReply]) on the same connection.
func (c Cmd) Replies() bool {
	switch c {
	case CmdGetAllClientSessions, CmdIsOnline, CmdGetClientIDByUID, CmdBatchGetClientIDByUID,
		CmdGetClientSessionsByGroup, CmdGetClientCountByGroup, CmdSelect, CmdGetGroupIDList,
		CmdBatchGetClientCountByGroup, CmdGetSessionByClientID:
		return true
	}
	return false
}

// Flag is a packet's flag byte.
type Flag uint8

const (
	// FlagBodyIsScalar: the body is a plain string. Without it the body
	// is PHP serialize() output (an array, or null: "N;").
	FlagBodyIsScalar Flag = 0x01
	// FlagNotCallEncode: "raw" — the Gateway writes the body to the
	// client as it is, without the client protocol's framing.
	FlagNotCallEncode Flag = 0x02
)

const (
	// HeaderLen is the size of a packet's fixed header.
	HeaderLen = 28
	// MaxPacketSize is the largest pack_len accepted: workerman's
	// TcpConnection::$defaultMaxPackageSize, 10 MiB.
	MaxPacketSize = 10 << 20
)

// Packet is one GatewayProtocol packet. All integers are big-endian on
// the wire; pack_len and ext_len are computed from ExtData and Body.
//
// Commands sent to a Gateway leave LocalIP, LocalPort, ClientIP,
// ClientPort and GatewayPort zero; events from a Gateway fill them all.
type Packet struct {
	Cmd          Cmd
	LocalIP      uint32 // the Gateway's inner IPv4 address (PHP ip2long)
	LocalPort    uint16 // the Gateway's inner port
	ClientIP     uint32 // the end client's IPv4 address
	ClientPort   uint16 // the end client's port
	ConnectionID uint32 // the client's connection id inside the Gateway
	Flag         Flag
	GatewayPort  uint16 // the Gateway's public listen port
	ExtData      []byte // command-specific: a session, uid, group or JSON
	Body         []byte // the message; serialize() output unless FlagBodyIsScalar
}

// Len returns the packet's encoded size, its pack_len.
func (p *Packet) Len() int { return HeaderLen + len(p.ExtData) + len(p.Body) }

// Scalar reports whether the body is a plain string (FlagBodyIsScalar).
func (p *Packet) Scalar() bool { return p.Flag&FlagBodyIsScalar != 0 }

// Raw reports whether FlagNotCallEncode is set.
func (p *Packet) Raw() bool { return p.Flag&FlagNotCallEncode != 0 }

// LocalAddr returns the Gateway inner address the packet names.
func (p *Packet) LocalAddr() netip.AddrPort {
	return netip.AddrPortFrom(Uint32ToIP(p.LocalIP), p.LocalPort)
}

// ClientAddr returns the end client's address the packet names.
func (p *Packet) ClientAddr() netip.AddrPort {
	return netip.AddrPortFrom(Uint32ToIP(p.ClientIP), p.ClientPort)
}

// ClientID returns the client id of an event packet (from LocalIP,
// LocalPort and ConnectionID), as the BusinessWorker computes it.
func (p *Packet) ClientID() ClientID {
	return ClientID{Addr: p.LocalAddr(), ConnectionID: p.ConnectionID}
}

// BodyMessage returns the message a send command carries: the body
// itself when it is scalar, else the body unserialized (a string is that
// string; null, as Gateway::closeClient($id) sends, is no message: ok is
// false). Any other value is an error.
func (p *Packet) BodyMessage() (msg []byte, ok bool, err error) {
	if p.Scalar() {
		return p.Body, true, nil
	}
	v, err := Unserialize(p.Body)
	if err != nil {
		return nil, false, err
	}
	switch v := v.(type) {
	case nil:
		return nil, false, nil
	case string:
		return []byte(v), true, nil
	case int64, float64, bool:
		return []byte(scalarString(v)), true, nil
	}
	return nil, false, errorf("body of %v is %s, not a message", p.Cmd, kindName(v))
}

// AppendEncode appends the encoded packet to b. It fails only when the
// packet would exceed MaxPacketSize.
func (p *Packet) AppendEncode(b []byte) ([]byte, error) {
	n := p.Len()
	if n > MaxPacketSize {
		return b, &PacketError{Err: ErrPacketTooLarge, PackLen: uint32(min(n, 1<<32-1)), Cmd: p.Cmd}
	}
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, byte(p.Cmd))
	b = binary.BigEndian.AppendUint32(b, p.LocalIP)
	b = binary.BigEndian.AppendUint16(b, p.LocalPort)
	b = binary.BigEndian.AppendUint32(b, p.ClientIP)
	b = binary.BigEndian.AppendUint16(b, p.ClientPort)
	b = binary.BigEndian.AppendUint32(b, p.ConnectionID)
	b = append(b, byte(p.Flag))
	b = binary.BigEndian.AppendUint16(b, p.GatewayPort)
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.ExtData)))
	b = append(b, p.ExtData...)
	return append(b, p.Body...), nil
}

// Encode returns the encoded packet.
func (p *Packet) Encode() ([]byte, error) { return p.AppendEncode(make([]byte, 0, p.Len())) }

// header is the fixed part of a packet, as read.
type header struct {
	packLen uint32
	extLen  uint32
}

// parseHeader fills p's fixed fields from the 28 bytes of b and checks
// pack_len, ext_len and cmd.
func parseHeader(b []byte, p *Packet) (header, error) {
	h := header{packLen: binary.BigEndian.Uint32(b[0:4]), extLen: binary.BigEndian.Uint32(b[24:28])}
	p.Cmd = Cmd(b[4])
	p.LocalIP = binary.BigEndian.Uint32(b[5:9])
	p.LocalPort = binary.BigEndian.Uint16(b[9:11])
	p.ClientIP = binary.BigEndian.Uint32(b[11:15])
	p.ClientPort = binary.BigEndian.Uint16(b[15:17])
	p.ConnectionID = binary.BigEndian.Uint32(b[17:21])
	p.Flag = Flag(b[21])
	p.GatewayPort = binary.BigEndian.Uint16(b[22:24])
	switch {
	case h.packLen < HeaderLen:
		return h, &PacketError{Err: ErrPacketTooShort, PackLen: h.packLen, Cmd: p.Cmd}
	case h.packLen > MaxPacketSize:
		return h, &PacketError{Err: ErrPacketTooLarge, PackLen: h.packLen, Cmd: p.Cmd}
	case h.extLen > h.packLen-HeaderLen:
		return h, &PacketError{Err: ErrBadExtLen, PackLen: h.packLen, Cmd: p.Cmd, ExtLen: h.extLen}
	case !p.Cmd.Known():
		return h, &PacketError{Err: ErrUnknownCommand, PackLen: h.packLen, Cmd: p.Cmd}
	}
	return h, nil
}

// Decode decodes the packet at the start of b and returns it with the
// number of bytes it took. ExtData and Body alias b. A b shorter than
// the header or than pack_len gives ErrTruncated; other malformed
// packets give the sentinels of [PacketError].
func Decode(b []byte) (Packet, int, error) {
	var p Packet
	if len(b) < HeaderLen {
		return p, 0, &PacketError{Err: ErrTruncated}
	}
	h, err := parseHeader(b, &p)
	if err != nil {
		return p, 0, err
	}
	if uint64(len(b)) < uint64(h.packLen) {
		return p, 0, &PacketError{Err: ErrTruncated, PackLen: h.packLen, Cmd: p.Cmd}
	}
	end := int(h.packLen)
	ext := HeaderLen + int(h.extLen)
	p.ExtData = b[HeaderLen:ext:ext]
	p.Body = b[ext:end:end]
	return p, end, nil
}

// Reader reads packets from a stream. It is not safe for concurrent use.
type Reader struct {
	r    *bufio.Reader
	head [HeaderLen]byte
}

// NewReader returns a Reader reading from r, through r itself when it is
// a *bufio.Reader, else through a new one.
func NewReader(r io.Reader) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 4096)
	}
	return &Reader{r: br}
}

// ReadPacket reads the next packet. Its ExtData and Body are its own
// (one allocation per packet). It returns io.EOF when the stream ends
// between packets, a *PacketError wrapping ErrTruncated when it ends
// inside one, and a *PacketError for a malformed header, read before
// any of the packet's rest so that a bad pack_len allocates nothing.
// Other errors are the stream's.
func (r *Reader) ReadPacket() (*Packet, error) {
	p := new(Packet)
	if _, err := io.ReadFull(r.r, r.head[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &PacketError{Err: ErrTruncated}
		}
		return nil, err
	}
	h, err := parseHeader(r.head[:], p)
	if err != nil {
		return nil, err
	}
	rest, err := readN(r.r, int(h.packLen)-HeaderLen)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &PacketError{Err: ErrTruncated, PackLen: h.packLen, Cmd: p.Cmd}
		}
		return nil, err
	}
	p.ExtData = rest[:h.extLen:h.extLen]
	p.Body = rest[h.extLen:]
	return p, nil
}

// readN reads exactly n bytes. Past 64 KiB the buffer grows as the
// bytes arrive, so that a peer announcing a large packet and sending
// nothing costs no large allocation.
func readN(r io.Reader, n int) ([]byte, error) {
	const step = 64 << 10
	if n <= step {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	b := make([]byte, 0, step)
	for len(b) < n {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(n-len(b), cap(b)))
		}
		k, err := io.ReadFull(r, b[len(b):min(n, cap(b))])
		b = b[:len(b)+k]
		if err != nil {
			if errors.Is(err, io.EOF) && len(b) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}

// Buffered returns how many bytes are read from the stream but not yet
// returned as packets.
func (r *Reader) Buffered() int { return r.r.Buffered() }

// IPToUint32 returns an IPv4 address (or an IPv4-mapped IPv6 address) as
// PHP's ip2long does; any other address gives 0, as pack('N', false).
func IPToUint32(a netip.Addr) uint32 {
	a = a.Unmap()
	if !a.Is4() {
		return 0
	}
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// Uint32ToIP is PHP's long2ip.
func Uint32ToIP(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}
