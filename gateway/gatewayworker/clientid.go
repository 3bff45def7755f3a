package gatewayworker

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
)

// ClientID is a GatewayWorker client id: the inner address of the
// Gateway holding the connection and the connection's id there. Its text
// form is bin2hex(pack('NnN', local_ip, local_port, connection_id)):
// 20 lowercase hex digits. GatewayClient routes a call for a client id
// to the inner address in it, so Addr must be the address the Gateway
// announced to the Register.
type ClientID struct {
	Addr         netip.AddrPort // IPv4; any other address encodes as 0.0.0.0
	ConnectionID uint32
}

// ClientIDLen is the length of a client id's text form.
const ClientIDLen = 20

// String returns the 20-hex-digit form, as Context::addressToClientId.
func (c ClientID) String() string {
	var b [ClientIDLen / 2]byte
	binary.BigEndian.PutUint32(b[0:4], IPToUint32(c.Addr.Addr()))
	binary.BigEndian.PutUint16(b[4:6], c.Addr.Port())
	binary.BigEndian.PutUint32(b[6:10], c.ConnectionID)
	return hex.EncodeToString(b[:])
}

// ParseClientID decodes a client id, as Context::clientIdToAddress. Hex
// digits may be upper or lower case.
func ParseClientID(s string) (ClientID, error) {
	if len(s) != ClientIDLen {
		return ClientID{}, fmt.Errorf("%w: %q is not %d hex digits", ErrBadClientID, s, ClientIDLen)
	}
	var b [ClientIDLen / 2]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return ClientID{}, fmt.Errorf("%w: %q: %v", ErrBadClientID, s, err)
	}
	ip := Uint32ToIP(binary.BigEndian.Uint32(b[0:4]))
	return ClientID{
		Addr:         netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[4:6])),
		ConnectionID: binary.BigEndian.Uint32(b[6:10]),
	}, nil
}
