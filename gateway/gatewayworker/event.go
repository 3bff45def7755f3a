package gatewayworker

import "net/netip"

// EventHeader is what a Gateway writes into every event packet about a
// client: its id, its real address and the Gateway's public port.
type EventHeader struct {
	ID          ClientID
	Client      netip.AddrPort // IPv4; any other address is sent as 0.0.0.0
	GatewayPort uint16
}

// Event returns the event packet cmd (CmdOnConnect, CmdOnMessage or
// CmdOnClose) for the client, with its session in ext_data and body as a
// plain string (FLAG_BODY_IS_SCALAR), as the PHP Gateway sends them.
func (h EventHeader) Event(cmd Cmd, session, body []byte) Packet {
	return Packet{
		Cmd:          cmd,
		LocalIP:      IPToUint32(h.ID.Addr.Addr()),
		LocalPort:    h.ID.Addr.Port(),
		ClientIP:     IPToUint32(h.Client.Addr()),
		ClientPort:   h.Client.Port(),
		ConnectionID: h.ID.ConnectionID,
		Flag:         FlagBodyIsScalar,
		GatewayPort:  h.GatewayPort,
		ExtData:      session,
		Body:         body,
	}
}

// WebSocketConnect returns the CMD_ON_WEBSOCKET_CONNECT packet for the
// client: the handshake serialized in the body, the flag 0.
func (h EventHeader) WebSocketConnect(session []byte, hs *Handshake) (Packet, error) {
	body, err := Serialize(hs.Value())
	if err != nil {
		return Packet{}, err
	}
	p := h.Event(CmdOnWebSocketConnect, session, body)
	p.Flag = 0
	return p, nil
}

// PingPacket returns the CMD_PING a Gateway sends its BusinessWorkers
// (every 25 s when its lan_ip is not 127.0.0.1).
func PingPacket() Packet { return Packet{Cmd: CmdPing, Flag: FlagBodyIsScalar} }
