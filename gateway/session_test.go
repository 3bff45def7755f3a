package gateway_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
)

// jsonCodec is a SessionCodec whose raw form is JSON: raw bytes written
// with other spacing or key order show whether the hub kept them as they
// were or marshalled the map.
type jsonCodec struct{}

func (jsonCodec) Marshal(s gateway.Session) ([]byte, error) {
	if s == nil {
		return []byte{}, nil
	}
	return json.Marshal(s)
}

func (jsonCodec) Unmarshal(b []byte) (gateway.Session, error) {
	s := gateway.Session{}
	if len(b) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return s, nil
}

var errRefused = errors.New("refused")

func TestRawSessions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(h *gateway.Hub, id string) error
		raw     string          // GetSessionRaw
		session gateway.Session // GetSession; nil: it fails
		// rawOnClose: OnClose's SessionRaw is raw (the last form was
		// raw); otherwise it is nil.
		rawOnClose bool
		// closeNil: OnClose's Session is nil (none set, or unreadable);
		// otherwise it is session.
		closeNil bool
	}{
		{
			name:     "none",
			prepare:  func(*gateway.Hub, string) error { return nil },
			raw:      "",
			session:  gateway.Session{},
			closeNil: true,
		},
		{
			name:       "set raw",
			prepare:    func(h *gateway.Hub, id string) error { return h.SetSessionRaw(id, []byte(`{"b": 1,  "a":"x"}`)) },
			raw:        `{"b": 1,  "a":"x"}`,
			session:    gateway.Session{"a": "x", "b": 1.0},
			rawOnClose: true,
		},
		{
			name:       "set raw empty",
			prepare:    func(h *gateway.Hub, id string) error { return h.SetSessionRaw(id, nil) },
			raw:        "",
			session:    gateway.Session{},
			rawOnClose: true,
		},
		{
			name:    "set map, read raw",
			prepare: func(h *gateway.Hub, id string) error { return h.SetSession(id, gateway.Session{"b": 1, "a": "x"}) },
			raw:     `{"a":"x","b":1}`,
			session: gateway.Session{"a": "x", "b": 1},
		},
		{
			name: "raw, then a map update",
			prepare: func(h *gateway.Hub, id string) error {
				if err := h.SetSessionRaw(id, []byte(`{"a": 1, "b": 2}`)); err != nil {
					return err
				}
				return h.UpdateSession(id, gateway.Session{"b": 3.0})
			},
			raw:     `{"a":1,"b":3}`,
			session: gateway.Session{"a": 1.0, "b": 3.0},
		},
		{
			name: "map, then modified raw",
			prepare: func(h *gateway.Hub, id string) error {
				if err := h.SetSession(id, gateway.Session{"n": 1}); err != nil {
					return err
				}
				return h.ModifySessionRaw(id, func(old []byte) ([]byte, error) {
					if string(old) != `{"n":1}` {
						return nil, fmt.Errorf("old = %q, want the marshalled map", old)
					}
					return []byte(`{"n": 2}`), nil
				})
			},
			raw:        `{"n": 2}`,
			session:    gateway.Session{"n": 2.0},
			rawOnClose: true,
		},
		{
			name: "modify refused",
			prepare: func(h *gateway.Hub, id string) error {
				if err := h.SetSessionRaw(id, []byte(`{"a": 1}`)); err != nil {
					return err
				}
				err := h.ModifySessionRaw(id, func(old []byte) ([]byte, error) { return []byte(`{}`), errRefused })
				if err != errRefused {
					return fmt.Errorf("ModifySessionRaw = %v, want f's error as it is", err)
				}
				return nil
			},
			raw:        `{"a": 1}`,
			session:    gateway.Session{"a": 1.0},
			rawOnClose: true,
		},
		{
			name: "raw the codec cannot read",
			prepare: func(h *gateway.Hub, id string) error {
				if err := h.SetSessionRaw(id, []byte(`a:1:{}`)); err != nil {
					return err
				}
				if err := h.UpdateSession(id, gateway.Session{"x": 1}); err == nil {
					return errors.New("UpdateSession of an unreadable session succeeded")
				}
				if all := h.GetAllClientSessions(); !reflect.DeepEqual(all[id], gateway.Session{}) {
					return fmt.Errorf("GetAllClientSessions()[id] = %v, want empty", all[id])
				}
				return nil
			},
			raw:        `a:1:{}`,
			rawOnClose: true,
			closeNil:   true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := gatewaytest.New(t, gateway.Options{SessionCodec: jsonCodec{}})
			p, id := th.Connect(t, "text")
			th.Hub.JoinGroup(id, "g")
			if err := tc.prepare(th.Hub, id); err != nil {
				t.Fatal(err)
			}
			raw, err := th.Hub.GetSessionRaw(id)
			if err != nil || string(raw) != tc.raw {
				t.Errorf("GetSessionRaw = %q, %v; want %q", raw, err, tc.raw)
			}
			s, err := th.Hub.GetSession(id)
			if tc.session == nil {
				if err == nil {
					t.Errorf("GetSession = %v, want an error", s)
				}
			} else {
				if err != nil || !reflect.DeepEqual(s, tc.session) {
					t.Errorf("GetSession = %v, %v; want %v", s, err, tc.session)
				}
				if got := th.Hub.GetClientSessionsByGroup("g")[id]; !reflect.DeepEqual(got, tc.session) {
					t.Errorf("GetClientSessionsByGroup = %v, want %v", got, tc.session)
				}
			}
			p.Close()
			c := th.Events.WaitCloses(t, 1)[0]
			switch {
			case tc.rawOnClose && string(c.SessionRaw) != tc.raw, tc.rawOnClose && c.SessionRaw == nil:
				t.Errorf("OnClose: SessionRaw = %q, want %q", c.SessionRaw, tc.raw)
			case !tc.rawOnClose && c.SessionRaw != nil:
				t.Errorf("OnClose: SessionRaw = %q, want nil (last written as a map)", c.SessionRaw)
			}
			want := tc.session
			if tc.closeNil {
				want = nil
			}
			if !reflect.DeepEqual(c.Session, want) {
				t.Errorf("OnClose: Session = %#v, want %#v", c.Session, want)
			}
		})
	}
}

// TestRawSessionsWithoutCodec: the raw methods need a codec; the map API
// works as ever.
func TestRawSessionsWithoutCodec(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{})
	p, id := th.Connect(t, "text")
	for _, id := range []string{id, "7f00000100000000ffff", ""} {
		if _, err := th.Hub.GetSessionRaw(id); !errors.Is(err, gateway.ErrNoSessionCodec) {
			t.Errorf("GetSessionRaw(%q) error = %v, want ErrNoSessionCodec", id, err)
		}
		if err := th.Hub.SetSessionRaw(id, []byte("x")); !errors.Is(err, gateway.ErrNoSessionCodec) {
			t.Errorf("SetSessionRaw(%q) error = %v, want ErrNoSessionCodec", id, err)
		}
		f := func(old []byte) ([]byte, error) { t.Error("f called"); return old, nil }
		if err := th.Hub.ModifySessionRaw(id, f); !errors.Is(err, gateway.ErrNoSessionCodec) {
			t.Errorf("ModifySessionRaw(%q) error = %v, want ErrNoSessionCodec", id, err)
		}
	}
	if err := th.Hub.SetSession(id, gateway.Session{"a": 1}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if c := th.Events.WaitCloses(t, 1)[0]; c.SessionRaw != nil || !reflect.DeepEqual(c.Session, gateway.Session{"a": 1}) {
		t.Errorf("OnClose: Session %v, SessionRaw %q; want the map and nil", c.Session, c.SessionRaw)
	}
}

func TestRawSessionsClientNotFound(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{SessionCodec: jsonCodec{}})
	missing := "7f00000100000000ffff"
	if _, err := th.Hub.GetSessionRaw(missing); !errors.Is(err, gateway.ErrClientNotFound) {
		t.Errorf("GetSessionRaw error = %v, want ErrClientNotFound", err)
	}
	if err := th.Hub.SetSessionRaw(missing, nil); !errors.Is(err, gateway.ErrClientNotFound) {
		t.Errorf("SetSessionRaw error = %v, want ErrClientNotFound", err)
	}
	f := func(old []byte) ([]byte, error) { t.Error("f called"); return old, nil }
	if err := th.Hub.ModifySessionRaw(missing, f); !errors.Is(err, gateway.ErrClientNotFound) {
		t.Errorf("ModifySessionRaw error = %v, want ErrClientNotFound", err)
	}
}

// TestModifySessionRawAtomic runs read-modify-writes from many
// goroutines, beside map writes; none may be lost.
func TestModifySessionRawAtomic(t *testing.T) {
	th := gatewaytest.New(t, gateway.Options{SessionCodec: jsonCodec{}})
	_, id := th.Connect(t, "text")
	const workers, each = 8, 50
	incr := func(old []byte) ([]byte, error) {
		var s struct{ N int }
		if len(old) > 0 {
			if err := json.Unmarshal(old, &s); err != nil {
				return nil, err
			}
		}
		s.N++
		return json.Marshal(s)
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if err := th.Hub.ModifySessionRaw(id, incr); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range each {
			th.Hub.GetSession(id)
			th.Hub.GetAllClientSessions()
		}
	})
	wg.Wait()
	if raw, err := th.Hub.GetSessionRaw(id); err != nil || string(raw) != fmt.Sprintf(`{"N":%d}`, workers*each) {
		t.Errorf("GetSessionRaw = %q, %v; want N = %d", raw, err, workers*each)
	}
}
