package gateway

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
)

// A client's session is kept in the form it was last written in: a
// [Session] map (SetSession, UpdateSession, the push API) or the bytes
// of another system's session format (SetSessionRaw, ModifySessionRaw:
// GatewayWorker's PHP-serialized strings), which must reach that system
// again byte for byte. [Options.SessionCodec] converts between the two
// when a session is read in the other form.

// SessionCodec converts sessions between the hub's map form and bytes
// in another system's format. Its methods may run concurrently, and
// while the hub holds a client's session lock: they must not call the
// hub.
type SessionCodec interface {
	// Marshal returns the bytes of a session; a nil s is a client
	// without a session. It must not modify s.
	Marshal(s Session) ([]byte, error)
	// Unmarshal returns the map form of a session's bytes. It must not
	// keep b.
	Unmarshal(b []byte) (Session, error)
}

// GetAllClientSessions returns every connected client's session by
// client id (clients without a session map to an empty one; so does a
// client whose raw session the codec cannot convert).
func (h *Hub) GetAllClientSessions() map[string]Session {
	return h.sessionsOf(h.snapshot(nil))
}

// GetClientSessionsByGroup returns the sessions of group's members by
// client id, as GetAllClientSessions does.
func (h *Hub) GetClientSessionsByGroup(group string) map[string]Session {
	h.mu.RLock()
	cs := slices.Collect(maps.Values(h.groups[group]))
	h.mu.RUnlock()
	return h.sessionsOf(cs)
}

func (h *Hub) sessionsOf(cs []*client) map[string]Session {
	out := make(map[string]Session, len(cs))
	for _, c := range cs {
		s, err := h.sessionOf(c)
		if err != nil {
			h.log.Info("session not readable as a map", "client_id", c.id, "err", err)
			s = Session{}
		}
		out[c.id] = s
	}
	return out
}

// SetSession replaces a client's session with a copy of s.
func (h *Hub) SetSession(clientID string, s Session) error {
	c, err := h.client(clientID)
	if err != nil {
		return err
	}
	s = s.clone()
	c.smu.Lock()
	c.session, c.raw = s, nil
	c.smu.Unlock()
	return nil
}

// UpdateSession merges s into a client's session: keys in s are set,
// other keys are kept. A session last written raw is converted to a map
// first; if the codec cannot convert it, nothing changes and the error
// is returned.
func (h *Hub) UpdateSession(clientID string, s Session) error {
	c, err := h.client(clientID)
	if err != nil {
		return err
	}
	s = s.clone()
	c.smu.Lock()
	defer c.smu.Unlock()
	if c.raw != nil {
		cur, err := h.unmarshal(c.id, c.raw)
		if err != nil {
			return err
		}
		c.session, c.raw = cur, nil
	}
	if c.session == nil {
		c.session = make(Session, len(s))
	}
	maps.Copy(c.session, s)
	return nil
}

// GetSession returns a copy of a client's session (empty, not nil, when
// none was set). A session last written raw is converted by the codec;
// an error says why it could not be.
func (h *Hub) GetSession(clientID string) (Session, error) {
	c, err := h.client(clientID)
	if err != nil {
		return nil, err
	}
	return h.sessionOf(c)
}

// sessionOf returns a copy of c's session in map form, empty if none.
func (h *Hub) sessionOf(c *client) (Session, error) {
	c.smu.Lock()
	raw := c.raw // stored raw bytes are never modified: read them unlocked
	var s Session
	if raw == nil {
		s = c.session.clone()
	}
	c.smu.Unlock()
	if raw != nil {
		var err error
		if s, err = h.unmarshal(c.id, raw); err != nil {
			return nil, err
		}
	}
	if s == nil {
		s = Session{}
	}
	return s, nil
}

// SetSessionRaw replaces a client's session with a copy of b, kept as
// it is: [Hub.GetSessionRaw] returns these bytes, and the map API sees
// what the codec makes of them. Without [Options.SessionCodec] it
// returns [ErrNoSessionCodec], whatever the client id.
func (h *Hub) SetSessionRaw(clientID string, b []byte) error {
	if h.codec == nil {
		return ErrNoSessionCodec
	}
	c, err := h.client(clientID)
	if err != nil {
		return err
	}
	raw := append(make([]byte, 0, len(b)), b...) // not nil, even when empty
	c.smu.Lock()
	c.session, c.raw = nil, raw
	c.smu.Unlock()
	return nil
}

// ModifySessionRaw replaces a client's session with what f returns for
// it, atomically: f gets a copy of the raw session (the codec's Marshal
// of the map when the session was last written as a map) and runs under
// the client's session lock, so it must not call the hub's session
// methods. The hub keeps the slice f returns (nil is empty bytes). If f
// or the codec fails, nothing changes and the error is returned as it
// is. Without [Options.SessionCodec] it returns [ErrNoSessionCodec],
// whatever the client id.
func (h *Hub) ModifySessionRaw(clientID string, f func(old []byte) ([]byte, error)) error {
	if h.codec == nil {
		return ErrNoSessionCodec
	}
	c, err := h.client(clientID)
	if err != nil {
		return err
	}
	c.smu.Lock()
	defer c.smu.Unlock()
	old, err := h.rawLocked(c)
	if err != nil {
		return err
	}
	b, err := f(old)
	if err != nil {
		return err
	}
	if b == nil {
		b = []byte{}
	}
	c.session, c.raw = nil, b
	return nil
}

// GetSessionRaw returns a copy of a client's raw session: the bytes last
// stored raw, or the codec's Marshal of the map (of nil for a client
// without a session). Without [Options.SessionCodec] it returns
// [ErrNoSessionCodec], whatever the client id.
func (h *Hub) GetSessionRaw(clientID string) ([]byte, error) {
	if h.codec == nil {
		return nil, ErrNoSessionCodec
	}
	c, err := h.client(clientID)
	if err != nil {
		return nil, err
	}
	c.smu.Lock()
	defer c.smu.Unlock()
	return h.rawLocked(c)
}

// rawLocked returns a copy of c's raw session; c.smu is held and
// h.codec is not nil.
func (h *Hub) rawLocked(c *client) ([]byte, error) {
	if c.raw != nil {
		return bytes.Clone(c.raw), nil
	}
	b, err := h.codec.Marshal(c.session)
	if err != nil {
		return nil, fmt.Errorf("gateway: session of %s: %w", c.id, err)
	}
	return b, nil
}

// unmarshal converts client id's raw session with the codec.
func (h *Hub) unmarshal(id string, raw []byte) (Session, error) {
	s, err := h.codec.Unmarshal(raw)
	if err != nil {
		return nil, fmt.Errorf("gateway: session of %s: %w", id, err)
	}
	return s, nil
}

// takeSession clears c's session and returns it for OnClose: the map
// form, converted if need be (nil if the codec fails), and the raw
// bytes if it was last written raw.
func (h *Hub) takeSession(c *client) (s Session, raw []byte) {
	c.smu.Lock()
	s, raw = c.session, c.raw
	c.session, c.raw = nil, nil
	c.smu.Unlock()
	if raw != nil {
		var err error
		if s, err = h.unmarshal(c.id, raw); err != nil {
			h.log.Info("session not readable as a map", "client_id", c.id, "err", err)
		}
	}
	return s, raw
}
