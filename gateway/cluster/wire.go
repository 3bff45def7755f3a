package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/wssgate/wssgate/gateway"
)

// A message between nodes is a JSON header, a newline, and the raw
// payload (the call's data), so that binary payloads pass unchanged and
// are not escaped.
//
// Ops:
//   - send: apply a send on this node's clients only, no answer
//     (sendToAll, sendToUid, sendToGroup fanned out by the caller's node);
//   - call: run a call on one of this node's clients and reply;
//   - query: run a count or list on this node's clients and reply;
//   - reply: the answer to a call or query.
type envelope struct {
	Op     string          `json:"op"`
	From   string          `json:"from"`
	Req    uint64          `json:"req,omitempty"`
	Call   *wireCall       `json:"call,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Err    string          `json:"err,omitempty"`
	Kind   string          `json:"kind,omitempty"` // the sentinel an Err stands for

	data []byte // the payload after the header
}

const (
	opSend  = "send"
	opCall  = "call"
	opQuery = "query"
	opReply = "reply"
)

// wireCall is a gateway.Call without its data, which travels raw.
type wireCall struct {
	Method    string          `json:"method"`
	HasData   bool            `json:"has_data,omitempty"`
	ClientID  string          `json:"client_id,omitempty"`
	ClientIDs []string        `json:"client_ids,omitempty"`
	OnlyIDs   bool            `json:"only,omitempty"` // ClientIDs given, even if empty
	UID       string          `json:"uid,omitempty"`
	UIDs      []string        `json:"uids,omitempty"`
	Group     string          `json:"group,omitempty"`
	Groups    []string        `json:"groups,omitempty"`
	Exclude   []string        `json:"exclude,omitempty"`
	Session   gateway.Session `json:"session,omitempty"`
	HasSess   bool            `json:"has_session,omitempty"`
}

func toWire(c gateway.Call) (*wireCall, []byte) {
	return &wireCall{
		Method: c.Method, HasData: c.Data != nil,
		ClientID: c.ClientID, ClientIDs: c.ClientIDs, OnlyIDs: c.ClientIDs != nil,
		UID: c.UID, UIDs: c.UIDs, Group: c.Group, Groups: c.Groups,
		Exclude: c.Exclude, Session: c.Session, HasSess: c.Session != nil,
	}, c.Data
}

func (w *wireCall) call(data []byte) gateway.Call {
	c := gateway.Call{
		Method: w.Method, ClientID: w.ClientID, ClientIDs: w.ClientIDs,
		UID: w.UID, UIDs: w.UIDs, Group: w.Group, Groups: w.Groups,
		Exclude: w.Exclude, Session: w.Session,
	}
	if w.HasData {
		c.Data = gateway.Data(data)
		if c.Data == nil {
			c.Data = gateway.Data{}
		}
	}
	if w.OnlyIDs && c.ClientIDs == nil {
		c.ClientIDs = []string{}
	}
	if w.HasSess && c.Session == nil {
		c.Session = gateway.Session{}
	}
	return c
}

func (e *envelope) encode() (string, error) {
	h, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("cluster: encoding a message: %w", err)
	}
	var b bytes.Buffer
	b.Grow(len(h) + 1 + len(e.data))
	b.Write(h)
	b.WriteByte('\n')
	b.Write(e.data)
	return b.String(), nil
}

func decodeEnvelope(s string) (*envelope, error) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return nil, errors.New("cluster: message without a header")
	}
	e := &envelope{}
	if err := json.Unmarshal([]byte(s[:i]), e); err != nil {
		return nil, fmt.Errorf("cluster: message header: %w", err)
	}
	e.data = []byte(s[i+1:])
	return e, nil
}

// Error kinds carried in replies, so that errors.Is works on the caller.
var errorKinds = map[string]error{
	"client_not_found": gateway.ErrClientNotFound,
	"bad_call":         gateway.ErrBadCall,
	"bad_client_id":    gateway.ErrBadClientID,
	"shutdown":         gateway.ErrShutdown,
	"unavailable":      ErrUnavailable,
}

func kindOf(err error) string {
	for k, s := range errorKinds {
		if errors.Is(err, s) {
			return k
		}
	}
	return ""
}

// decodeResult turns a reply's JSON result into the type the hub's Call
// returns for method.
func decodeResult(method string, raw json.RawMessage) (any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		switch method {
		case "getUidByClientId", "sendToClient", "setSession", "updateSession", "closeClient", "destroyClient":
			return nil, nil
		}
	}
	var err error
	switch method {
	case "joinGroup", "leaveGroup", "bindUid", "unbindUid", "isOnline", "isUidOnline":
		var v bool
		err = json.Unmarshal(raw, &v)
		return v, err
	case "getUidByClientId":
		var v string
		err = json.Unmarshal(raw, &v)
		return v, err
	case "getSession":
		var v gateway.Session
		err = json.Unmarshal(raw, &v)
		if v == nil {
			v = gateway.Session{}
		}
		return v, err
	case "getAllClientIdCount", "getClientIdCountByGroup", "ungroup", "getAllUidCount", "getUidCountByGroup",
		"sendToAll", "sendToUid", "sendToGroup":
		var v int
		err = json.Unmarshal(raw, &v)
		return v, err
	case "getAllClientIdList", "getClientIdListByGroup", "getUidListByGroup", "getAllUidList",
		"getAllGroupIdList", "getClientIdByUid":
		var v []string
		err = json.Unmarshal(raw, &v)
		return v, err
	case "getAllClientSessions", "getClientSessionsByGroup":
		var v map[string]gateway.Session
		err = json.Unmarshal(raw, &v)
		return v, err
	}
	return nil, nil
}
