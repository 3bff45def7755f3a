package gateway

import (
	"maps"
	"slices"
)

// This file is GatewayWorker's Gateway API (Lib/Gateway.php), in Go
// style. Sends write to each socket what it takes at once and queue the
// rest; they never wait on a socket. Readers return copies.

// SendToAll sends data to every client. A non-nil only restricts it to
// those client ids; exclude lists ids to skip. It returns how many
// clients the message was sent or queued for.
func (h *Hub) SendToAll(data []byte, only, exclude []string) int {
	m := newMessage(data)
	skip := setOf(exclude)
	l := h.list()
	defer h.putList(l)
	h.mu.RLock()
	if only != nil {
		for _, id := range Distinct(only) {
			if c, ok := h.clients[id]; ok {
				*l = append(*l, c)
			}
		}
	} else {
		*l = append(*l, h.all...)
	}
	h.mu.RUnlock()
	n := 0
	for _, c := range *l {
		if skip != nil && skip[c.id] {
			continue
		}
		if c.send(m) {
			n++
		}
	}
	return n
}

// SendToClient sends data to one client.
func (h *Hub) SendToClient(clientID string, data []byte) error {
	h.mu.RLock()
	c, ok := h.clients[clientID]
	h.mu.RUnlock()
	if !ok {
		return ErrClientNotFound
	}
	c.send(newMessage(data))
	return nil
}

// SendToUID sends data to every client bound to any of uids, each client
// once. It returns how many clients the message was sent or queued for.
func (h *Hub) SendToUID(data []byte, uids ...string) int {
	m := newMessage(data)
	l := h.list()
	defer h.putList(l)
	h.mu.RLock()
	// A client is bound to at most one uid, so no client is seen twice
	// once the uid list itself has no repeats.
	for _, uid := range Distinct(uids) {
		for _, c := range h.uids[uid] {
			*l = append(*l, c)
		}
	}
	h.mu.RUnlock()
	return sendAll(*l, m)
}

// SendToGroup sends data to the members of groups, each client once,
// except the client ids in exclude. It returns how many clients the
// message was sent or queued for.
func (h *Hub) SendToGroup(data []byte, groups []string, exclude []string) int {
	m := newMessage(data)
	skip := setOf(exclude)
	l := h.list()
	defer h.putList(l)
	h.mu.RLock()
	groups = Distinct(groups)
	var seen map[string]bool
	if len(groups) > 1 {
		seen = make(map[string]bool)
	}
	for _, g := range groups {
		for id, c := range h.groups[g] {
			if skip[id] || seen[id] {
				continue
			}
			if seen != nil {
				seen[id] = true
			}
			*l = append(*l, c)
		}
	}
	h.mu.RUnlock()
	return sendAll(*l, m)
}

// sendAll sends m to every client of l and returns to how many.
func sendAll(l []*client, m *message) int {
	n := 0
	for _, c := range l {
		if c.send(m) {
			n++
		}
	}
	return n
}

// JoinGroup adds a client to a group. It reports whether the client was
// not a member yet.
func (h *Hub) JoinGroup(clientID, group string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.clients[clientID]
	if !ok {
		return false, ErrClientNotFound
	}
	if _, in := c.groups[group]; in {
		return false, nil
	}
	if c.groups == nil {
		c.groups = make(map[string]struct{})
	}
	c.groups[group] = struct{}{}
	m := h.groups[group]
	if m == nil {
		m = make(map[string]*client)
		h.groups[group] = m
	}
	m[clientID] = c
	return true, nil
}

// LeaveGroup removes a client from a group. It reports whether the client
// was a member.
func (h *Hub) LeaveGroup(clientID, group string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.clients[clientID]
	if !ok {
		return false, ErrClientNotFound
	}
	if _, in := c.groups[group]; !in {
		return false, nil
	}
	delete(c.groups, group)
	h.removeFromGroup(group, c)
	return true, nil
}

// Ungroup dissolves a group: every member leaves it. The clients stay
// connected. It reports how many members the group had.
func (h *Hub) Ungroup(group string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.groups[group]
	for _, c := range m {
		delete(c.groups, group)
	}
	delete(h.groups, group)
	return len(m)
}

// removeFromGroup drops c from group's members; h.mu must be held.
func (h *Hub) removeFromGroup(group string, c *client) {
	if m := h.groups[group]; m != nil {
		delete(m, c.id)
		if len(m) == 0 {
			delete(h.groups, group)
		}
	}
}

// BindUID binds a client to uid. A uid may have many clients (a user on
// several devices); a client has at most one uid, so binding another
// replaces the previous one. It reports whether anything changed.
func (h *Hub) BindUID(clientID, uid string) (bool, error) {
	if uid == "" {
		return false, errEmpty("uid")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.clients[clientID]
	if !ok {
		return false, ErrClientNotFound
	}
	if c.uid == uid {
		return false, nil
	}
	if c.uid != "" {
		h.removeFromUID(c.uid, c)
	}
	c.uid = uid
	m := h.uids[uid]
	if m == nil {
		m = make(map[string]*client)
		h.uids[uid] = m
	}
	m[clientID] = c
	return true, nil
}

// UnbindUID removes a client's binding to uid. It reports whether the
// client was bound to it.
func (h *Hub) UnbindUID(clientID, uid string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.clients[clientID]
	if !ok {
		return false, ErrClientNotFound
	}
	if c.uid == "" || c.uid != uid {
		return false, nil
	}
	h.removeFromUID(uid, c)
	c.uid = ""
	return true, nil
}

// removeFromUID drops c from uid's clients; h.mu must be held.
func (h *Hub) removeFromUID(uid string, c *client) {
	if m := h.uids[uid]; m != nil {
		delete(m, c.id)
		if len(m) == 0 {
			delete(h.uids, uid)
		}
	}
}

// IsOnline reports whether the client is connected to this hub.
func (h *Hub) IsOnline(clientID string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	_, ok := h.clients[clientID]
	return ok
}

// IsUIDOnline reports whether any client is bound to uid.
func (h *Hub) IsUIDOnline(uid string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.uids[uid]) > 0
}

// GetClientIDByUID returns the ids of the clients bound to uid, sorted.
func (h *Hub) GetClientIDByUID(uid string) []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return sortedKeys(h.uids[uid])
}

// GetUIDByClientID returns the uid a client is bound to, "" if none.
func (h *Hub) GetUIDByClientID(clientID string) (string, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	c, ok := h.clients[clientID]
	if !ok {
		return "", ErrClientNotFound
	}
	return c.uid, nil
}

// GetGroupsByClientID returns the groups a client is a member of,
// sorted (GatewayWorker has it only as CMD_SELECT's "groups" field).
func (h *Hub) GetGroupsByClientID(clientID string) ([]string, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	c, ok := h.clients[clientID]
	if !ok {
		return nil, ErrClientNotFound
	}
	return sortedKeys(c.groups), nil
}

// GetAllClientIDCount returns how many clients are connected.
func (h *Hub) GetAllClientIDCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.clients)
}

// GetAllClientIDList returns the ids of every connected client, sorted.
func (h *Hub) GetAllClientIDList() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return sortedKeys(h.clients)
}

// GetClientIDCountByGroup returns how many clients are in group.
func (h *Hub) GetClientIDCountByGroup(group string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.groups[group])
}

// GetClientIDListByGroup returns the ids of group's members, sorted.
func (h *Hub) GetClientIDListByGroup(group string) []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return sortedKeys(h.groups[group])
}

// GetUIDListByGroup returns the distinct uids bound to group's members,
// sorted.
func (h *Hub) GetUIDListByGroup(group string) []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	set := make(map[string]struct{})
	for _, c := range h.groups[group] {
		if c.uid != "" {
			set[c.uid] = struct{}{}
		}
	}
	return sortedKeys(set)
}

// GetUIDCountByGroup returns how many distinct uids group's members are
// bound to.
func (h *Hub) GetUIDCountByGroup(group string) int { return len(h.GetUIDListByGroup(group)) }

// GetAllUIDList returns every bound uid, sorted.
func (h *Hub) GetAllUIDList() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return sortedKeys(h.uids)
}

// GetAllUIDCount returns how many distinct uids are bound.
func (h *Hub) GetAllUIDCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.uids)
}

// GetAllGroupIDList returns every group with at least one member, sorted.
func (h *Hub) GetAllGroupIDList() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return sortedKeys(h.groups)
}

// CloseClient closes a client's connection gracefully: what is already
// queued is sent, then last (if not nil), then a close frame (1000). Its
// OnClose runs when the connection has ended.
func (h *Hub) CloseClient(clientID string, last []byte) error {
	c, err := h.client(clientID)
	if err != nil {
		return err
	}
	if last != nil {
		c.closeAfter(newMessage(last), disconnectNormal())
	} else {
		c.close(disconnectNormal())
	}
	return nil
}

// DestroyClient cuts a client's connection at once, dropping what is
// queued. Its OnClose runs when the reader has noticed.
func (h *Hub) DestroyClient(clientID string) error {
	c, err := h.client(clientID)
	if err != nil {
		return err
	}
	c.cut()
	return nil
}

func (h *Hub) client(id string) (*client, error) {
	h.mu.RLock()
	c, ok := h.clients[id]
	h.mu.RUnlock()
	if !ok {
		return nil, ErrClientNotFound
	}
	return c, nil
}

// sortedKeys returns m's keys sorted; empty, not nil, for an empty map.
func sortedKeys[V any](m map[string]V) []string {
	out := slices.AppendSeq(make([]string, 0, len(m)), maps.Keys(m))
	slices.Sort(out)
	return out
}

func setOf(ids []string) map[string]bool {
	if len(ids) == 0 {
		return nil
	}
	s := make(map[string]bool, len(ids))
	for _, id := range ids {
		s[id] = true
	}
	return s
}

// Distinct returns ss without repeats, in first-seen order: what the
// send methods make of their lists of client ids, uids and groups, so
// that each is reached once. Anything that routes those lists elsewhere
// (a cluster) applies it alike.
func Distinct(ss []string) []string {
	if len(ss) < 2 {
		return ss
	}
	seen := make(map[string]bool, len(ss))
	out := ss[:0:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
