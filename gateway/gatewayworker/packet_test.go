package gatewayworker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

// header28 returns a packet header with the given pack_len, cmd and
// ext_len, and zero elsewhere.
func header28(packLen uint32, cmd Cmd, extLen uint32) []byte {
	b := make([]byte, HeaderLen)
	binary.BigEndian.PutUint32(b[0:], packLen)
	b[4] = byte(cmd)
	b[21] = byte(FlagBodyIsScalar)
	binary.BigEndian.PutUint32(b[24:], extLen)
	return b
}

func TestReaderRejects(t *testing.T) {
	good := Packet{Cmd: CmdSendToOne, ConnectionID: 7, Flag: FlagBodyIsScalar, Body: []byte("hi")}
	goodBytes, _ := good.Encode()
	tests := []struct {
		name    string
		in      []byte
		want    error // sentinel
		packLen uint32
	}{
		{"pack_len 0", header28(0, CmdSendToOne, 0), ErrPacketTooShort, 0},
		{"pack_len 27", header28(27, CmdSendToOne, 0), ErrPacketTooShort, 27},
		{"pack_len over 10 MiB", header28(MaxPacketSize+1, CmdSendToOne, 0), ErrPacketTooLarge, MaxPacketSize + 1},
		{"pack_len 4 GiB", header28(0xffffffff, CmdSendToOne, 0), ErrPacketTooLarge, 0xffffffff},
		{"ext_len past the end", append(header28(30, CmdJoinGroup, 3), "g1"...), ErrBadExtLen, 30},
		{"ext_len huge", append(header28(30, CmdJoinGroup, 0xffffffff), "g1"...), ErrBadExtLen, 30},
		{"unknown cmd 2", header28(28, 2, 0), ErrUnknownCommand, 28},
		{"unknown cmd 17", header28(28, 17, 0), ErrUnknownCommand, 28},
		{"unknown cmd 29", header28(28, 29, 0), ErrUnknownCommand, 28},
		{"unknown cmd 199", header28(28, 199, 0), ErrUnknownCommand, 28},
		{"unknown cmd 206", header28(28, 206, 0), ErrUnknownCommand, 28},
		{"truncated header", goodBytes[:10], ErrTruncated, 0},
		{"truncated body", goodBytes[:len(goodBytes)-1], ErrTruncated, uint32(len(goodBytes))},
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: example\r\n\r\n"), ErrPacketTooLarge, 0x47455420},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tt.in)).ReadPacket()
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadPacket: got %v, want %v", err, tt.want)
			}
			var pe *PacketError
			if !errors.As(err, &pe) {
				t.Fatalf("ReadPacket: got %T, want *PacketError", err)
			}
			if pe.PackLen != tt.packLen {
				t.Errorf("PackLen: got %d, want %d", pe.PackLen, tt.packLen)
			}
			if !strings.HasPrefix(err.Error(), "gatewayworker: ") {
				t.Errorf("message %q lacks the package prefix", err)
			}
			// Decode agrees.
			if _, _, err := Decode(tt.in); !errors.Is(err, tt.want) {
				t.Errorf("Decode: got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestReaderStream(t *testing.T) {
	// Packets back to back, as GatewayClient writes its auth and its
	// command in one write; then a clean end.
	a := Packet{Cmd: CmdGatewayClientConnect, Flag: FlagBodyIsScalar, Body: []byte(`{"secret_key":"k"}`)}
	b := Packet{Cmd: CmdSendToGroup, Flag: FlagBodyIsScalar | FlagNotCallEncode, ExtData: []byte(`{"group":["g"],"exclude":null}`), Body: []byte("x")}
	var stream []byte
	for _, p := range []Packet{a, b} {
		stream, _ = p.AppendEncode(stream)
	}
	r := NewReader(bytes.NewReader(stream))
	for i, want := range []Packet{a, b} {
		got, err := r.ReadPacket()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if got.Cmd != want.Cmd || got.Flag != want.Flag || string(got.ExtData) != string(want.ExtData) || string(got.Body) != string(want.Body) {
			t.Errorf("packet %d: got %+v, want %+v", i, got, want)
		}
	}
	if _, err := r.ReadPacket(); err != io.EOF {
		t.Errorf("at the end: got %v, want io.EOF", err)
	}
}

func TestEncodeTooLarge(t *testing.T) {
	p := Packet{Cmd: CmdSendToAll, Body: make([]byte, MaxPacketSize-HeaderLen+1)}
	if _, err := p.Encode(); !errors.Is(err, ErrPacketTooLarge) {
		t.Errorf("got %v, want ErrPacketTooLarge", err)
	}
	p.Body = p.Body[:len(p.Body)-1]
	if b, err := p.Encode(); err != nil || len(b) != MaxPacketSize {
		t.Errorf("at the limit: got %d bytes, %v; want %d, nil", len(b), err, MaxPacketSize)
	}
}

func TestCmd(t *testing.T) {
	known := 0
	for c := range 256 {
		if Cmd(c).Known() {
			known++
		}
	}
	// 1, 3, 4, 5..16, 20..28, 200..205.
	if want := 3 + 12 + 9 + 6; known != want {
		t.Errorf("known commands: got %d, want %d", known, want)
	}
	if got := Cmd(17).String(); got != "CMD_17" {
		t.Errorf("Cmd(17): got %q, want CMD_17", got)
	}
	replies := 0
	for c := range 256 {
		if Cmd(c).Replies() {
			replies++
		}
	}
	if replies != 10 {
		t.Errorf("commands with replies: got %d, want 10", replies)
	}
}

func TestBodyMessage(t *testing.T) {
	tests := []struct {
		name    string
		p       Packet
		want    string
		wantOK  bool
		wantErr bool
	}{
		{"scalar", Packet{Flag: FlagBodyIsScalar, Body: []byte("hi")}, "hi", true, false},
		{"scalar raw", Packet{Flag: FlagBodyIsScalar | FlagNotCallEncode, Body: []byte("\x81\x02hi")}, "\x81\x02hi", true, false},
		{"null: closeClient without a message", Packet{Body: []byte("N;")}, "", false, false},
		{"serialized string", Packet{Body: []byte(`s:2:"hi";`)}, "hi", true, false},
		{"serialized int", Packet{Body: []byte(`i:42;`)}, "42", true, false},
		{"serialized float", Packet{Body: []byte(`d:0.1;`)}, "0.1", true, false},
		{"array", Packet{Body: []byte(`a:0:{}`)}, "", false, true},
		{"garbage", Packet{Body: []byte(`x`)}, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := tt.p.BodyMessage()
			if string(got) != tt.want || ok != tt.wantOK || (err != nil) != tt.wantErr {
				t.Errorf("got %q, %v, %v; want %q, %v, error %v", got, ok, err, tt.want, tt.wantOK, tt.wantErr)
			}
		})
	}
}

func TestClientID(t *testing.T) {
	tests := []struct {
		id   string
		addr string
		conn uint32
	}{
		{"7f00000107d000000001", "127.0.0.1:2000", 1},
		{"7f00000307d000000003", "127.0.0.3:2000", 3},
		{"c0a80a0bffffffffffff", "192.168.10.11:65535", 0xffffffff},
		{"00000000000000000000", "0.0.0.0:0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			c, err := ParseClientID(tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if c.Addr.String() != tt.addr || c.ConnectionID != tt.conn {
				t.Errorf("got %v %d, want %s %d", c.Addr, c.ConnectionID, tt.addr, tt.conn)
			}
			if got := c.String(); got != tt.id {
				t.Errorf("String: got %s, want %s", got, tt.id)
			}
			up, err := ParseClientID(strings.ToUpper(tt.id))
			if err != nil || up != c {
				t.Errorf("upper case: got %v, %v; want %v", up, err, c)
			}
		})
	}
	for _, bad := range []string{"", "7f00000107d00000000", "7f00000107d0000000011", "7f00000107d00000000g", "zz00000107d000000001"} {
		if _, err := ParseClientID(bad); !errors.Is(err, ErrBadClientID) {
			t.Errorf("ParseClientID(%q): got %v, want ErrBadClientID", bad, err)
		}
	}
	// An IPv6 address has no place in a client id: 0.0.0.0, as PHP.
	c := ClientID{Addr: netip.MustParseAddrPort("[::1]:2000"), ConnectionID: 1}
	if got := c.String(); got != "0000000007d000000001" {
		t.Errorf("IPv6: got %s", got)
	}
	// IPv4-mapped addresses are IPv4.
	c = ClientID{Addr: netip.MustParseAddrPort("[::ffff:127.0.0.1]:2000"), ConnectionID: 1}
	if got := c.String(); got != "7f00000107d000000001" {
		t.Errorf("IPv4-mapped: got %s", got)
	}
}

func TestReply(t *testing.T) {
	b, err := AppendReplyValue([]byte("x"), int64(1))
	if err != nil || string(b) != "x\x00\x00\x00\x04i:1;" {
		t.Fatalf("AppendReplyValue: got %q, %v", b, err)
	}
	if _, err := AppendReplyValue(nil, struct{}{}); !errors.Is(err, ErrSerialize) {
		t.Errorf("unserializable: got %v, want ErrSerialize", err)
	}
	tests := []struct {
		name string
		in   string
		max  int
		want error
	}{
		{"short head", "\x00\x00", 0, ErrTruncated},
		{"short payload", "\x00\x00\x00\x05i:1;", 0, ErrTruncated},
		{"over max", "\x00\x00\x00\x05i:12;", 4, ErrPacketTooLarge},
		{"empty", "", 0, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ReadReply(strings.NewReader(tt.in), tt.max); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRegisterLines(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"gateway_connect", AppendGatewayConnect(nil, "10.0.0.1:2900", "k"), `{"event":"gateway_connect", "address":"10.0.0.1:2900", "secret_key":"k"}` + "\n"},
		{"gateway_connect escapes what PHP leaves invalid", AppendGatewayConnect(nil, "a", `q"\`), `{"event":"gateway_connect", "address":"a", "secret_key":"q\"\\"}` + "\n"},
		{"worker_connect", AppendWorkerConnect(nil, "S3cr3t/K3y"), `{"event":"worker_connect","secret_key":"S3cr3t/K3y"}` + "\n"},
		{"broadcast none", AppendBroadcastAddresses(nil, nil), `{"event":"broadcast_addresses","addresses":[]}` + "\n"},
		{"broadcast escapes like json_encode", AppendBroadcastAddresses(nil, []string{"a/b", "é😀"}), `{"event":"broadcast_addresses","addresses":["a\/b","\u00e9\ud83d\ude00"]}` + "\n"},
		{"ping", AppendPing(nil), `{"event":"ping"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Errorf("got %s, want %s", tt.got, tt.want)
			}
			if _, err := ParseRegisterLine(tt.got); err != nil {
				t.Errorf("ParseRegisterLine: %v", err)
			}
		})
	}
	m, err := ParseRegisterLine([]byte(`{"event":"broadcast_addresses","addresses":{"0":"a:1","2":"b:2"}}` + "\r\n"))
	if err != nil || len(m.Addresses) != 2 || m.Addresses[0] != "a:1" || m.Addresses[1] != "b:2" {
		t.Errorf("addresses as an object: got %+v, %v", m, err)
	}
	for _, bad := range []string{``, `x`, `{}`, `{"event":""}`, `{"event":1}`, `[]`, `{"event":"gateway_connect","address":5}`, `{"event":"worker_connect","secret_key":true}`, `{"event":"broadcast_addresses","addresses":"a"}`} {
		if _, err := ParseRegisterLine([]byte(bad)); !errors.Is(err, ErrBadRegisterLine) {
			t.Errorf("ParseRegisterLine(%q): got %v, want ErrBadRegisterLine", bad, err)
		}
	}
}

func TestReaderLargePacket(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB: read in growing steps
	p := Packet{Cmd: CmdSendToAll, Flag: FlagBodyIsScalar, Body: body}
	b, _ := p.Encode()
	got, err := NewReader(bytes.NewReader(b)).ReadPacket()
	if err != nil || !bytes.Equal(got.Body, body) {
		t.Fatalf("got %d bytes, %v; want %d", len(got.Body), err, len(body))
	}
	if _, err := NewReader(bytes.NewReader(b[:len(b)-1])).ReadPacket(); !errors.Is(err, ErrTruncated) {
		t.Errorf("truncated: got %v, want ErrTruncated", err)
	}
	if _, err := NewReader(bytes.NewReader(b[:HeaderLen+70_000])).ReadPacket(); !errors.Is(err, ErrTruncated) {
		t.Errorf("truncated past a step: got %v, want ErrTruncated", err)
	}
}
