package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Call is one API call in data form, as the push API receives it and a
// webhook reply carries it. Method is a GatewayWorker method name
// ("sendToAll", "bindUid", ...); the other fields are its arguments, each
// used only by the methods that take it.
type Call struct {
	Method    string   `json:"method,omitempty"`
	Data      Data     `json:"data,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	ClientIDs []string `json:"client_ids,omitempty"`
	UID       string   `json:"uid,omitempty"`
	UIDs      []string `json:"uids,omitempty"`
	Group     string   `json:"group,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	Exclude   []string `json:"exclude,omitempty"`
	Session   Session  `json:"session,omitempty"`
}

// Data is a message payload in JSON. A JSON string is sent as its text;
// any other JSON value (an object, say) is sent as its JSON encoding, so
// an app can push {"type":"chat",...} without encoding it twice.
type Data []byte

// UnmarshalJSON implements json.Unmarshaler.
func (d *Data) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*d = Data(s)
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		*d = nil
		return nil
	}
	*d = append(Data(nil), b...)
	return nil
}

// MarshalJSON implements json.Marshaler: Data is written as a string.
func (d Data) MarshalJSON() ([]byte, error) { return json.Marshal(string(d)) }

// method returns the function behind a GatewayWorker method name, nil
// for an unknown one.
func method(name string) func(h *Hub, c *Call) (any, error) {
	switch name {
	case "sendToAll":
		return func(h *Hub, c *Call) (any, error) {
			var only []string
			if c.ClientIDs != nil {
				only = c.ClientIDs
			}
			return h.SendToAll(c.Data, only, c.Exclude), nil
		}
	case "sendToClient":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.ClientID, "client_id"); err != nil {
				return nil, err
			}
			return nil, h.SendToClient(c.ClientID, c.Data)
		}
	case "sendToUid":
		return func(h *Hub, c *Call) (any, error) {
			uids := withOne(c.UIDs, c.UID)
			if len(uids) == 0 {
				return nil, errEmpty("uid or uids")
			}
			return h.SendToUID(c.Data, uids...), nil
		}
	case "sendToGroup":
		return func(h *Hub, c *Call) (any, error) {
			groups := withOne(c.Groups, c.Group)
			if len(groups) == 0 {
				return nil, errEmpty("group or groups")
			}
			return h.SendToGroup(c.Data, groups, c.Exclude), nil
		}
	case "joinGroup":
		return func(h *Hub, c *Call) (any, error) {
			return forClientGroups(c, h.JoinGroup)
		}
	case "leaveGroup":
		return func(h *Hub, c *Call) (any, error) {
			return forClientGroups(c, h.LeaveGroup)
		}
	case "ungroup":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.Group, "group"); err != nil {
				return nil, err
			}
			return h.Ungroup(c.Group), nil
		}
	case "bindUid":
		return func(h *Hub, c *Call) (any, error) {
			if err := needAll(c, "client_id", "uid"); err != nil {
				return nil, err
			}
			return h.BindUID(c.ClientID, c.UID)
		}
	case "unbindUid":
		return func(h *Hub, c *Call) (any, error) {
			if err := needAll(c, "client_id", "uid"); err != nil {
				return nil, err
			}
			return h.UnbindUID(c.ClientID, c.UID)
		}
	case "isOnline":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.ClientID, "client_id"); err != nil {
				return nil, err
			}
			return h.IsOnline(c.ClientID), nil
		}
	case "isUidOnline":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.UID, "uid"); err != nil {
				return nil, err
			}
			return h.IsUIDOnline(c.UID), nil
		}
	case "getClientIdByUid":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.UID, "uid"); err != nil {
				return nil, err
			}
			return h.GetClientIDByUID(c.UID), nil
		}
	case "getUidByClientId":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.ClientID, "client_id"); err != nil {
				return nil, err
			}
			uid, err := h.GetUIDByClientID(c.ClientID)
			if err != nil || uid == "" {
				return nil, err // JSON null: not bound, as GatewayWorker's null
			}
			return uid, nil
		}
	case "getAllClientIdCount":
		return func(h *Hub, c *Call) (any, error) { return h.GetAllClientIDCount(), nil }
	case "getAllClientIdList":
		return func(h *Hub, c *Call) (any, error) { return h.GetAllClientIDList(), nil }
	case "getClientIdCountByGroup":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.Group, "group"); err != nil {
				return nil, err
			}
			return h.GetClientIDCountByGroup(c.Group), nil
		}
	case "getClientIdListByGroup":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.Group, "group"); err != nil {
				return nil, err
			}
			return h.GetClientIDListByGroup(c.Group), nil
		}
	case "getUidListByGroup":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.Group, "group"); err != nil {
				return nil, err
			}
			return h.GetUIDListByGroup(c.Group), nil
		}
	case "getUidCountByGroup":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.Group, "group"); err != nil {
				return nil, err
			}
			return h.GetUIDCountByGroup(c.Group), nil
		}
	case "getAllUidList":
		return func(h *Hub, c *Call) (any, error) { return h.GetAllUIDList(), nil }
	case "getAllUidCount":
		return func(h *Hub, c *Call) (any, error) { return h.GetAllUIDCount(), nil }
	case "getAllGroupIdList":
		return func(h *Hub, c *Call) (any, error) { return h.GetAllGroupIDList(), nil }
	case "getAllClientSessions":
		return func(h *Hub, c *Call) (any, error) {
			return h.GetAllClientSessions(), nil
		}
	case "getClientSessionsByGroup":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.Group, "group"); err != nil {
				return nil, err
			}
			return h.GetClientSessionsByGroup(c.Group), nil
		}
	case "setSession":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.ClientID, "client_id"); err != nil {
				return nil, err
			}
			return nil, h.SetSession(c.ClientID, c.Session)
		}
	case "updateSession":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.ClientID, "client_id"); err != nil {
				return nil, err
			}
			return nil, h.UpdateSession(c.ClientID, c.Session)
		}
	case "getSession":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.ClientID, "client_id"); err != nil {
				return nil, err
			}
			return h.GetSession(c.ClientID)
		}
	case "closeClient":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.ClientID, "client_id"); err != nil {
				return nil, err
			}
			return nil, h.CloseClient(c.ClientID, c.Data)
		}
	case "destroyClient":
		return func(h *Hub, c *Call) (any, error) {
			if err := need(c.ClientID, "client_id"); err != nil {
				return nil, err
			}
			return nil, h.DestroyClient(c.ClientID)
		}
	}
	return nil
}

// Methods returns the method names Call accepts, sorted.
func Methods() []string {
	return []string{
		"bindUid",
		"closeClient",
		"destroyClient",
		"getAllClientIdCount",
		"getAllClientIdList",
		"getAllClientSessions",
		"getAllGroupIdList",
		"getAllUidCount",
		"getAllUidList",
		"getClientIdByUid",
		"getClientIdCountByGroup",
		"getClientIdListByGroup",
		"getClientSessionsByGroup",
		"getSession",
		"getUidByClientId",
		"getUidCountByGroup",
		"getUidListByGroup",
		"isOnline",
		"isUidOnline",
		"joinGroup",
		"leaveGroup",
		"sendToAll",
		"sendToClient",
		"sendToGroup",
		"sendToUid",
		"setSession",
		"unbindUid",
		"ungroup",
		"updateSession",
	}
}

// Call runs one API call. The result is what the method returns (a
// count, a list, a session, a bool), or nil for methods that return
// nothing. Errors wrap [ErrBadCall] for an unknown method or a missing
// argument, and [ErrClientNotFound] for an unknown client id.
func (h *Hub) Call(c Call) (any, error) {
	f := method(c.Method)
	if f == nil {
		return nil, fmt.Errorf("%w: unknown method %q", ErrBadCall, c.Method)
	}
	return f(h, &c)
}

// forClientGroups applies f to client_id and each of group/groups.
func forClientGroups(c *Call, f func(id, group string) (bool, error)) (any, error) {
	if err := need(c.ClientID, "client_id"); err != nil {
		return nil, err
	}
	groups := withOne(c.Groups, c.Group)
	if len(groups) == 0 {
		return nil, errEmpty("group or groups")
	}
	changed := false
	for _, g := range groups {
		ok, err := f(c.ClientID, g)
		if err != nil {
			return nil, err
		}
		changed = changed || ok
	}
	return changed, nil
}

func withOne(list []string, one string) []string {
	if one != "" {
		return append([]string{one}, list...)
	}
	return list
}

func need(v, name string) error {
	if v == "" {
		return errEmpty(name)
	}
	return nil
}

func needAll(c *Call, names ...string) error {
	for _, n := range names {
		v := map[string]string{"client_id": c.ClientID, "uid": c.UID}[n]
		if err := need(v, n); err != nil {
			return err
		}
	}
	return nil
}

func errEmpty(name string) error {
	return fmt.Errorf("%w: %s is required", ErrBadCall, name)
}
