package gatewayworker

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// The captured vectors: testdata/index.json and the files it names,
// copied from the shared reference (see testdata/PROTOCOL.md).

type vector struct {
	File      string          `json:"file"`
	Scenario  string          `json:"scenario"`
	SecretKey string          `json:"secret_key"`
	Protocol  string          `json:"protocol"`
	Direction string          `json:"direction"`
	Command   string          `json:"command"`
	Length    int             `json:"length"`
	Hex       string          `json:"hex"`
	Conn      string          `json:"conn"`
	Step      string          `json:"step"`
	JSON      json.RawMessage `json:"json"`
	Fields    *vectorFields   `json:"fields"`
	Stream    string          `json:"stream_file"`
}

type vectorFields struct {
	PackLen            uint32          `json:"pack_len"`
	Cmd                uint8           `json:"cmd"`
	CmdName            string          `json:"cmd_name"`
	LocalIP            uint32          `json:"local_ip"`
	LocalIPStr         string          `json:"local_ip_str"`
	LocalPort          uint16          `json:"local_port"`
	ClientIP           uint32          `json:"client_ip"`
	ClientIPStr        string          `json:"client_ip_str"`
	ClientPort         uint16          `json:"client_port"`
	ConnectionID       uint32          `json:"connection_id"`
	Flag               uint8           `json:"flag"`
	FlagScalar         bool            `json:"flag_body_is_scalar"`
	FlagRaw            bool            `json:"flag_not_call_encode"`
	GatewayPort        uint16          `json:"gateway_port"`
	ExtLen             uint32          `json:"ext_len"`
	ExtDataHex         string          `json:"ext_data_hex"`
	BodyHex            string          `json:"body_hex"`
	ClientID           *string         `json:"client_id"`
	ExtDataUnserialzed json.RawMessage `json:"ext_data_unserialized"`
	BodyUnserialized   json.RawMessage `json:"body_unserialized"`
	BodyJSON           json.RawMessage `json:"body_json"`
	ExtDataJSON        json.RawMessage `json:"ext_data_json"`
	// gateway-reply
	Len                 *uint32         `json:"len"`
	PayloadUnserialized json.RawMessage `json:"payload_unserialized"`
}

var (
	vectorsOnce sync.Once
	vectorsAll  []vector
	vectorsErr  error
)

func loadVectors(t testing.TB) []vector {
	t.Helper()
	vectorsOnce.Do(func() {
		b, err := os.ReadFile("testdata/index.json")
		if err != nil {
			vectorsErr = err
			return
		}
		var idx struct {
			Count   int      `json:"count"`
			Vectors []vector `json:"vectors"`
		}
		if vectorsErr = json.Unmarshal(b, &idx); vectorsErr == nil && len(idx.Vectors) != idx.Count {
			t.Errorf("index.json: got %d vectors, want %d", len(idx.Vectors), idx.Count)
		}
		vectorsAll = idx.Vectors
	})
	if vectorsErr != nil {
		t.Fatalf("loading vectors: %v", vectorsErr)
	}
	return vectorsAll
}

// bytes returns the vector's file, checked against its hex.
func (v *vector) bytes(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", v.File))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := hex.DecodeString(v.Hex)
	if !bytes.Equal(b, h) || len(b) != v.Length {
		t.Fatalf("%s: file, hex and length disagree", v.File)
	}
	return b
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("json %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("json %s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func TestVectorsIndex(t *testing.T) {
	vs := loadVectors(t)
	got := map[string]int{}
	for _, v := range vs {
		got[v.Protocol]++
	}
	want := map[string]int{"GatewayProtocol": 170, "gateway-reply": 30, "register-text": 36}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("vectors by protocol: got %v, want %v", got, want)
	}
}

// TestVectorsDecodePackets decodes every captured GatewayProtocol packet
// and checks each field against index.json, then encodes the decoded
// packet and gets the captured bytes back.
func TestVectorsDecodePackets(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.Protocol != "GatewayProtocol" {
			continue
		}
		t.Run(v.File, func(t *testing.T) {
			b := v.bytes(t)
			f := v.Fields
			p, n, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if n != len(b) {
				t.Errorf("Decode took %d bytes, want %d", n, len(b))
			}
			checks := []struct {
				name      string
				got, want any
			}{
				{"pack_len", uint32(p.Len()), f.PackLen},
				{"cmd", uint8(p.Cmd), f.Cmd},
				{"cmd_name", p.Cmd.String(), f.CmdName},
				{"command", p.Cmd.String(), v.Command},
				{"local_ip", p.LocalIP, f.LocalIP},
				{"local_ip_str", p.LocalAddr().Addr().String(), f.LocalIPStr},
				{"local_port", p.LocalPort, f.LocalPort},
				{"client_ip", p.ClientIP, f.ClientIP},
				{"client_ip_str", p.ClientAddr().Addr().String(), f.ClientIPStr},
				{"client_port", p.ClientPort, f.ClientPort},
				{"connection_id", p.ConnectionID, f.ConnectionID},
				{"flag", uint8(p.Flag), f.Flag},
				{"flag_body_is_scalar", p.Scalar(), f.FlagScalar},
				{"flag_not_call_encode", p.Raw(), f.FlagRaw},
				{"gateway_port", p.GatewayPort, f.GatewayPort},
				{"ext_len", uint32(len(p.ExtData)), f.ExtLen},
				{"ext_data", hex.EncodeToString(p.ExtData), f.ExtDataHex},
				{"body", hex.EncodeToString(p.Body), f.BodyHex},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
				}
			}
			if f.ClientID != nil {
				if got := p.ClientID().String(); got != *f.ClientID {
					t.Errorf("client_id: got %s, want %s", got, *f.ClientID)
				}
			}
			if len(f.ExtDataUnserialzed) > 0 {
				checkUnserialized(t, "ext_data", p.ExtData, f.ExtDataUnserialzed)
			}
			if len(f.BodyUnserialized) > 0 {
				if p.Scalar() {
					t.Errorf("body_unserialized given for a scalar body")
				}
				checkUnserialized(t, "body", p.Body, f.BodyUnserialized)
			}
			if len(f.BodyJSON) > 0 && !sameJSON(t, p.Body, f.BodyJSON) {
				t.Errorf("body: got %s, want JSON %s", p.Body, f.BodyJSON)
			}
			if len(f.ExtDataJSON) > 0 && !sameJSON(t, p.ExtData, f.ExtDataJSON) {
				t.Errorf("ext_data: got %s, want JSON %s", p.ExtData, f.ExtDataJSON)
			}
			enc, err := p.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(enc, b) {
				t.Errorf("Encode:\ngot  %x\nwant %x", enc, b)
			}
			// The Reader gives the same packet.
			rp, err := NewReader(bytes.NewReader(b)).ReadPacket()
			if err != nil {
				t.Fatalf("ReadPacket: %v", err)
			}
			if !reflect.DeepEqual(*rp, p) {
				t.Errorf("ReadPacket: got %+v, want %+v", *rp, p)
			}
		})
	}
}

// checkUnserialized unserializes s and compares it, as JSON, with the
// reference's rendering of PHP's unserialize result; then serializes it
// and gets s back.
func checkUnserialized(t *testing.T, what string, s []byte, want json.RawMessage) {
	t.Helper()
	v, err := Unserialize(s)
	if err != nil {
		t.Fatalf("%s: Unserialize(%q): %v", what, s, err)
	}
	j, err := ToJSON(v)
	if err != nil {
		t.Fatalf("%s: ToJSON: %v", what, err)
	}
	if !sameJSON(t, j, want) {
		t.Errorf("%s: got %s, want %s", what, j, want)
	}
	back, err := Serialize(v)
	if err != nil {
		t.Fatalf("%s: Serialize: %v", what, err)
	}
	if !bytes.Equal(back, s) {
		t.Errorf("%s: Serialize(Unserialize(s)):\ngot  %s\nwant %s", what, back, s)
	}
}

// TestVectorsReplies decodes every captured query reply and checks its
// length and value, and that serializing the value gives its bytes.
func TestVectorsReplies(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.Protocol != "gateway-reply" {
			continue
		}
		t.Run(v.File, func(t *testing.T) {
			b := v.bytes(t)
			payload, err := ReadReply(bytes.NewReader(b), 0)
			if err != nil {
				t.Fatalf("ReadReply: %v", err)
			}
			if v.Fields.Len == nil || uint32(len(payload)) != *v.Fields.Len {
				t.Errorf("len: got %d, want %v", len(payload), v.Fields.Len)
			}
			checkUnserialized(t, "payload", payload, v.Fields.PayloadUnserialized)
			if got := AppendReply(nil, payload); !bytes.Equal(got, b) {
				t.Errorf("AppendReply: got %x, want %x", got, b)
			}
		})
	}
}

// TestVectorsRegisterLines parses every captured Register line and
// checks it against index.json's JSON.
func TestVectorsRegisterLines(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.Protocol != "register-text" {
			continue
		}
		t.Run(v.File, func(t *testing.T) {
			b := v.bytes(t)
			if !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 1 {
				t.Fatalf("not one line: %q", b)
			}
			m, err := ParseRegisterLine(b)
			if err != nil {
				t.Fatalf("ParseRegisterLine: %v", err)
			}
			var want struct {
				Event     string   `json:"event"`
				Address   string   `json:"address"`
				SecretKey string   `json:"secret_key"`
				Addresses []string `json:"addresses"`
			}
			if err := json.Unmarshal(v.JSON, &want); err != nil {
				t.Fatal(err)
			}
			if "register_"+m.Event != v.Command {
				t.Errorf("event: got %q, command %q", m.Event, v.Command)
			}
			if m.Event != want.Event || m.Address != want.Address || m.SecretKey != want.SecretKey ||
				!reflect.DeepEqual(m.Addresses, want.Addresses) && len(m.Addresses)+len(want.Addresses) > 0 {
				t.Errorf("got %+v, want %+v", m, want)
			}
		})
	}
}

// TestVectorsEncodeAsSender builds, with this package's encoders, every
// packet, reply and line that wssgate sends in GatewayWorker's place —
// Gateway → BusinessWorker events, Gateway → GatewayClient replies,
// Register → worker lines and Gateway → Register lines — from the call's
// arguments, and compares them with the captured bytes.
func TestVectorsEncodeAsSender(t *testing.T) {
	vs := loadVectors(t)
	n := 0
	for i := range vs {
		v := &vs[i]
		var got []byte
		switch v.Direction {
		case "Gateway->BusinessWorker":
			got = encodeEventLike(t, v)
		case "Gateway->GatewayClient":
			got = encodeReplyLike(t, vs, i)
		case "Register->BusinessWorker", "Register->GatewayClient":
			var m RegisterMessage
			m, _ = ParseRegisterLine(v.bytes(t))
			got = AppendBroadcastAddresses(nil, m.Addresses)
		case "Gateway->Register":
			switch v.Command {
			case "register_gateway_connect":
				var m struct{ Address, Secret_key string }
				json.Unmarshal(v.JSON, &m)
				got = AppendGatewayConnect(nil, m.Address, m.Secret_key)
			case "register_ping":
				got = AppendPing(nil)
			}
		case "BusinessWorker->Register", "GatewayClient->Register":
			// What wssgate's Register client would send when it stands
			// in for a BusinessWorker (tests only): the same bytes too.
			if v.Command == "register_ping" {
				got = AppendPing(nil)
			} else {
				got = AppendWorkerConnect(nil, v.SecretKey)
			}
		default:
			continue
		}
		n++
		if want := v.bytes(t); !bytes.Equal(got, want) {
			t.Errorf("%s:\ngot  %q\nwant %q", v.File, got, want)
		}
	}
	if n != 37+30+17+3+16 {
		t.Errorf("encoded %d vectors, want %d", n, 37+30+17+3+16)
	}
}

// encodeEventLike builds a Gateway → BusinessWorker packet from what the
// Gateway knows: the client id, the client's address, the public port,
// the session and the message (or, for CMD_ON_WEBSOCKET_CONNECT, the
// handshake, whose header lines are given in the captured order).
func encodeEventLike(t *testing.T, v *vector) []byte {
	t.Helper()
	f := v.Fields
	ext, body := mustHex(t, f.ExtDataHex), mustHex(t, f.BodyHex)
	if Cmd(f.Cmd) == CmdPing {
		p := PingPacket()
		b, _ := p.Encode()
		return b
	}
	id, err := ParseClientID(*f.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	client := netip.AddrPortFrom(netip.MustParseAddr(f.ClientIPStr), f.ClientPort)
	h := EventHeader{ID: id, Client: client, GatewayPort: f.GatewayPort}
	var p Packet
	if Cmd(f.Cmd) == CmdOnWebSocketConnect {
		hs := handshakeFromVector(t, f)
		p, err = h.WebSocketConnect(ext, hs)
		if err != nil {
			t.Fatal(err)
		}
	} else {
		p = h.Event(Cmd(f.Cmd), ext, body)
	}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// handshakeFromVector rebuilds the request a captured
// CMD_ON_WEBSOCKET_CONNECT describes.
func handshakeFromVector(t *testing.T, f *vectorFields) *Handshake {
	t.Helper()
	var d struct {
		Server map[string]any `json:"server"`
	}
	if err := json.Unmarshal(f.BodyUnserialized, &d); err != nil {
		t.Fatal(err)
	}
	s := d.Server
	hs := &Handshake{
		Method:     s["REQUEST_METHOD"].(string),
		RequestURI: s["REQUEST_URI"].(string),
		Proto:      s["SERVER_PROTOCOL"].(string),
		Host:       s["SERVER_NAME"].(string),
		RemoteAddr: netip.AddrPortFrom(netip.MustParseAddr(s["REMOTE_ADDR"].(string)), uint16(s["REMOTE_PORT"].(float64))),
		ServerPort: uint16(s["SERVER_PORT"].(float64)),
	}
	// The header lines in the order the Go client sent them, which is
	// the order PHP keeps.
	for _, name := range []string{"Host", "User-Agent", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Upgrade"} {
		key := "HTTP_" + strings.ReplaceAll(strings.ToUpper(name), "-", "_")
		hs.Header = append(hs.Header, HeaderField{name, s[key].(string)})
	}
	return hs
}

// encodeReplyLike builds the reply to vs[i-1]'s query (or the one before
// it) from the value the Gateway computes, as Go data.
func encodeReplyLike(t *testing.T, vs []vector, i int) []byte {
	t.Helper()
	v := &vs[i]
	sess := "a:1:{s:4:\"name\";s:5:\"alice\";}"
	sess2 := `a:3:{s:4:"role";s:1:"x";s:1:"n";i:2;s:4:"tags";a:2:{i:0;s:1:"a";i:1;s:1:"b";}}`
	uidRow := func(uid any) *Array {
		a := &Array{}
		a.Set(StringKey("uid"), uid)
		return a
	}
	byCID := func(kv ...any) *Array {
		a := &Array{}
		for j := 0; j < len(kv); j += 2 {
			a.Set(IntKey(int64(kv[j].(int))), kv[j+1])
		}
		return a
	}
	byName := func(kv ...any) *Array {
		a := &Array{}
		for j := 0; j < len(kv); j += 2 {
			a.Set(StringKey(kv[j].(string)), kv[j+1])
		}
		return a
	}
	var val any
	switch strings.TrimPrefix(v.Step, "GatewayClient::") {
	case "isOnline":
		val = int64(1)
	case "isOnline_offline":
		val = int64(0)
	case "getAllClientIdCount":
		val = int64(3)
	case "getClientIdCountByGroup":
		val = int64(2)
	case "getClientSessionsByGroup":
		val = byCID(1, sess, 2, "")
	case "getAllClientSessions":
		val = byCID(1, sess, 2, "", 3, "")
	case "getClientIdByUid":
		val = List(int64(1))
	case "batchGetClientIdByUid":
		val = byName("u1", List(int64(1)), "u2", List(int64(2)))
	case "batchGetClientIdCountByGroup":
		val = byName("g1", int64(2), "g2", int64(1))
	case "getSession":
		// CMD_GET_SESSION_BY_CLIENT_ID replies with the stored string
		// itself, not serialize() of it.
		return AppendReply(nil, []byte(sess))
	case "getSession_after_update":
		stored, err := UpdateSession([]byte(`a:2:{s:4:"role";s:1:"x";s:1:"n";i:1;}`),
			[]byte(`a:2:{s:1:"n";i:2;s:4:"tags";a:2:{i:0;s:1:"a";i:1;s:1:"b";}}`))
		if err != nil {
			t.Fatal(err)
		}
		if string(stored) != sess2 {
			t.Errorf("UpdateSession: got %s, want %s", stored, sess2)
		}
		return AppendReply(nil, stored)
	case "getAllGroupIdList":
		val = []string{"g1", "g2"}
	case "getAllClientIdList":
		val = byCID(1, uidRow("u1"), 2, uidRow("u2"), 3, uidRow(nil))
	case "getUidListByGroup":
		val = byCID(1, uidRow("u1"), 2, uidRow("u2"))
	case "getUidByClientId":
		val = byCID(1, uidRow("u1"))
	default:
		t.Fatalf("%s: no reply value for step %q", v.File, v.Step)
	}
	b, err := AppendReplyValue(nil, val)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
