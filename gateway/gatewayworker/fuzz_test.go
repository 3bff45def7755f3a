package gatewayworker

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/wssgate/wssgate/gateway"
)

// The seed corpora are the captured vectors (added here) and the files
// under testdata/fuzz, made from the same vectors.

func addVectors(f *testing.F, keep func(v *vector) []byte) {
	for _, v := range loadVectors(f) {
		if b := keep(&v); b != nil {
			f.Add(b)
		}
	}
}

func FuzzDecode(f *testing.F) {
	addVectors(f, func(v *vector) []byte {
		if v.Protocol == "GatewayProtocol" {
			return v.bytes(f)
		}
		return nil
	})
	f.Add(header28(27, CmdPing, 0))
	f.Add(header28(MaxPacketSize+1, CmdPing, 0))
	f.Add(header28(28, 17, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, n, err := Decode(b)
		rp, rerr := NewReader(bytes.NewReader(b)).ReadPacket()
		if err != nil {
			var pe *PacketError
			if !errors.As(err, &pe) {
				t.Fatalf("Decode: %T %v, want *PacketError", err, err)
			}
			if rerr == nil || (!errors.Is(rerr, pe.Err) && !(len(b) == 0 && rerr == io.EOF)) {
				t.Fatalf("Decode: %v; ReadPacket: %v", err, rerr)
			}
			return
		}
		if rerr != nil {
			t.Fatalf("Decode ok; ReadPacket: %v", rerr)
		}
		enc, err := p.Encode()
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		if !bytes.Equal(enc, b[:n]) {
			t.Fatalf("Encode(Decode(b)) != b[:%d]", n)
		}
		if renc, _ := rp.Encode(); !bytes.Equal(renc, enc) {
			t.Fatalf("ReadPacket and Decode differ")
		}
	})
}

func FuzzUnserialize(f *testing.F) {
	addVectors(f, func(v *vector) []byte {
		switch {
		case v.Protocol == "gateway-reply":
			return v.bytes(f)[4:]
		case v.Fields != nil && len(v.Fields.ExtDataUnserialzed) > 0:
			return mustHex(f, v.Fields.ExtDataHex)
		case v.Fields != nil && len(v.Fields.BodyUnserialized) > 0:
			return mustHex(f, v.Fields.BodyHex)
		}
		return nil
	})
	for _, s := range []string{"N;", "b:1;", "i:-5;", "d:1.0E+25;", "d:NAN;", `s:1:"\x00";`, `a:1:{s:1:"7";i:1;}`, "a:2147483647:{"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Unserialize(b)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(b) {
				t.Fatalf("error %v: want a *SyntaxError inside the input", err)
			}
			return
		}
		s1, err := Serialize(v)
		if err != nil {
			t.Fatalf("Serialize(Unserialize(b)): %v", err)
		}
		v2, err := Unserialize(s1)
		if err != nil {
			t.Fatalf("Unserialize(Serialize(v)): %v", err)
		}
		s2, err := Serialize(v2)
		if err != nil || !bytes.Equal(s1, s2) {
			t.Fatalf("not stable: %q then %q (%v)", s1, s2, err)
		}
		ToJSON(v) // must not panic
		if a, ok := v.(*Array); ok {
			ReplaceRecursive(a, a)
		}
	})
}

func FuzzUpdateSession(f *testing.F) {
	f.Add([]byte(`a:2:{s:4:"role";s:1:"x";s:1:"n";i:1;}`), []byte(`a:2:{s:1:"n";i:2;s:4:"tags";a:2:{i:0;s:1:"a";i:1;s:1:"b";}}`))
	f.Add([]byte(""), []byte(`a:1:{s:4:"name";s:5:"alice";}`))
	f.Add([]byte(`a:1:{i:0;a:1:{i:0;i:1;}}`), []byte(`a:1:{i:0;a:1:{i:1;i:2;}}`))
	f.Fuzz(func(t *testing.T, old, update []byte) {
		got, err := UpdateSession(old, update)
		if err != nil {
			if !errors.Is(err, ErrSerialize) {
				t.Fatalf("error %v does not wrap ErrSerialize", err)
			}
			return
		}
		if len(old) == 0 || string(old) == "0" {
			if !bytes.Equal(got, update) {
				t.Fatalf("no session: got %q, want the update", got)
			}
			return
		}
		if _, err := Unserialize(got); err != nil {
			t.Fatalf("merged session does not read back: %v", err)
		}
	})
}

func FuzzFromJSON(f *testing.F) {
	addVectors(f, func(v *vector) []byte {
		if v.Protocol == "register-text" {
			return v.JSON
		}
		if v.Fields != nil && len(v.Fields.ExtDataJSON) > 0 {
			return mustHex(f, v.Fields.ExtDataHex)
		}
		return nil
	})
	f.Add([]byte(`{"a":[1,2.5,"x",null,true,{"7":{}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := FromJSON(b)
		if err != nil {
			return
		}
		s, err := Serialize(v)
		if err != nil {
			t.Fatalf("Serialize(FromJSON(b)): %v", err)
		}
		back, err := Unserialize(s)
		if err != nil {
			t.Fatalf("Unserialize(%q): %v", s, err)
		}
		j1, err1 := ToJSON(v)
		j2, err2 := ToJSON(back)
		if (err1 == nil) != (err2 == nil) || !bytes.Equal(j1, j2) {
			t.Fatalf("ToJSON differs after a serialize round trip: %s / %s", j1, j2)
		}
		SessionFromJSON(b)
	})
}

func FuzzParseRegisterLine(f *testing.F) {
	addVectors(f, func(v *vector) []byte {
		if v.Protocol == "register-text" {
			return v.bytes(f)
		}
		return nil
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseRegisterLine(b)
		if err != nil {
			if !errors.Is(err, ErrBadRegisterLine) {
				t.Fatalf("error %v does not wrap ErrBadRegisterLine", err)
			}
			return
		}
		if m.Event == EventBroadcastAddresses {
			again, err := ParseRegisterLine(AppendBroadcastAddresses(nil, m.Addresses))
			if err != nil || len(again.Addresses) != len(m.Addresses) {
				t.Fatalf("re-encoded addresses: %+v, %v", again, err)
			}
			for i := range m.Addresses {
				if again.Addresses[i] != m.Addresses[i] && bytes.ContainsRune([]byte(m.Addresses[i]), 0xfffd) == false {
					t.Fatalf("address %d: %q became %q", i, m.Addresses[i], again.Addresses[i])
				}
			}
		}
	})
}

// FuzzInnerCommand runs any packet a peer could send through the inner
// listener's command handling, against a hub with one client: nothing
// may panic, and an error only closes the connection.
func FuzzInnerCommand(f *testing.F) {
	addVectors(f, func(v *vector) []byte {
		if v.Protocol == "GatewayProtocol" && !strings.HasPrefix(v.Direction, "Gateway->") {
			return v.bytes(f)
		}
		return nil
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, _, err := Decode(b)
		if err != nil {
			return
		}
		in, err := NewInner(InnerConfig{Address: netip.MustParseAddrPort("127.0.0.1:2000")})
		if err != nil {
			t.Fatal(err)
		}
		one := ClientID{Addr: in.addr, ConnectionID: 1}.String()
		hub := &oneClientHub{id: one, session: []byte(`a:1:{s:1:"a";i:1;}`)}
		ours, theirs := net.Pipe()
		go io.Copy(io.Discard, theirs)
		c := &innerConn{in: in, hub: hub, nc: ours, q: newSendQueue(ours, 1<<20, true), log: in.log, authorized: true}
		c.handle(&p)
		c.q.close()
		c.q.wait()
		theirs.Close()
	})
}

// oneClientHub is a Hub with one client, in group "g", bound to "u" and
// with a session.
type oneClientHub struct {
	id      string
	session []byte
}

func (h oneClientHub) list(ok bool) []string {
	if ok {
		return []string{h.id}
	}
	return nil
}
func (h oneClientHub) SendToAll([]byte, []string, []string) int   { return 1 }
func (h oneClientHub) SendToClient(string, []byte) error          { return nil }
func (h oneClientHub) SendToUID([]byte, ...string) int            { return 1 }
func (h oneClientHub) SendToGroup([]byte, []string, []string) int { return 1 }
func (h oneClientHub) JoinGroup(string, string) (bool, error)     { return true, nil }
func (h oneClientHub) LeaveGroup(string, string) (bool, error)    { return true, nil }
func (h oneClientHub) Ungroup(string) int                         { return 1 }
func (h oneClientHub) BindUID(string, string) (bool, error)       { return true, nil }
func (h oneClientHub) UnbindUID(string, string) (bool, error)     { return true, nil }
func (h oneClientHub) IsOnline(id string) bool                    { return id == h.id }
func (h oneClientHub) GetClientIDByUID(uid string) []string       { return h.list(uid == "u") }
func (h oneClientHub) GetUIDByClientID(id string) (string, error) { return "u", nil }
func (h oneClientHub) GetAllClientIDCount() int                   { return 1 }
func (h oneClientHub) GetAllClientIDList() []string               { return h.list(true) }
func (h oneClientHub) GetClientIDCountByGroup(g string) int       { return len(h.list(g == "g")) }
func (h oneClientHub) GetClientIDListByGroup(g string) []string   { return h.list(g == "g") }
func (h oneClientHub) GetAllGroupIDList() []string                { return []string{"g"} }
func (h oneClientHub) CloseClient(string, []byte) error           { return nil }
func (h oneClientHub) DestroyClient(string) error                 { return nil }

func (h *oneClientHub) GetGroupsByClientID(id string) ([]string, error) {
	if id != h.id {
		return nil, gateway.ErrClientNotFound
	}
	return []string{"g"}, nil
}

func (h *oneClientHub) GetSessionRaw(id string) ([]byte, error) {
	if id != h.id {
		return nil, gateway.ErrClientNotFound
	}
	return bytes.Clone(h.session), nil
}

func (h *oneClientHub) SetSessionRaw(id string, s []byte) error {
	return h.ModifySessionRaw(id, func([]byte) ([]byte, error) { return bytes.Clone(s), nil })
}

func (h *oneClientHub) ModifySessionRaw(id string, f func([]byte) ([]byte, error)) error {
	if id != h.id {
		return gateway.ErrClientNotFound
	}
	s, err := f(bytes.Clone(h.session))
	if err == nil {
		h.session = s
	}
	return err
}
