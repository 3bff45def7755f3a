package gatewayworker

// This file holds the commands BusinessWorkers and GatewayClient send
// the inner listener, run on the hub, and the helpers of their replies.

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wssgate/wssgate/gateway"
)

// handle executes one packet. An error closes the connection.
func (c *innerConn) handle(p *Packet) error {
	in, hub := c.in, c.hub
	if !c.authorized && p.Cmd != CmdWorkerConnect && p.Cmd != CmdGatewayClientConnect {
		return fmt.Errorf("%w: %v before authenticating", ErrUnauthorized, p.Cmd)
	}
	if p.Cmd != CmdWorkerConnect && p.Cmd != CmdGatewayClientConnect {
		in.commands.Add(1) // authentication is not a command run
	}
	id := in.clientID(p.ConnectionID)
	switch p.Cmd {
	case CmdWorkerConnect, CmdGatewayClientConnect:
		var a authBody
		if err := json.Unmarshal(p.Body, &a); err != nil {
			return fmt.Errorf("%w: auth body: %v", ErrSecretKey, err)
		}
		if !in.keyMatches(a.SecretKey) {
			return ErrSecretKey
		}
		c.authorized = true
		if p.Cmd == CmdWorkerConnect && c.worker == nil {
			c.addWorker(a.WorkerKey)
		}
	case CmdSendToOne:
		return c.send(p, func(msg []byte) { hub.SendToClient(id, msg) })
	case CmdSendToAll:
		var ext struct {
			Connections json.RawMessage `json:"connections"`
			Exclude     json.RawMessage `json:"exclude"`
		}
		if len(p.ExtData) > 0 {
			if err := json.Unmarshal(p.ExtData, &ext); err != nil {
				return fmt.Errorf("sendToAll ext_data: %v", err)
			}
		}
		only, err := in.connectionIDs(ext.Connections)
		if err != nil {
			return err
		}
		exclude, err := in.connectionIDs(ext.Exclude)
		if err != nil {
			return err
		}
		if ext.Connections != nil && only == nil {
			only = []string{} // listed, but nobody
		}
		return c.send(p, func(msg []byte) {
			if only != nil {
				hub.SendToAll(msg, only, nil)
			} else {
				hub.SendToAll(msg, nil, exclude)
			}
		})
	case CmdKick:
		msg, ok, err := p.BodyMessage()
		if err != nil {
			return err
		}
		if !ok {
			msg = nil
		} else if msg == nil {
			msg = []byte{}
		}
		hub.CloseClient(id, msg)
	case CmdDestroy:
		hub.DestroyClient(id)
	case CmdUpdateSession:
		// A command for a client that left stores nothing.
		err := hub.ModifySessionRaw(id, func(old []byte) ([]byte, error) { return UpdateSession(old, p.ExtData) })
		if err != nil && !errors.Is(err, gateway.ErrClientNotFound) {
			c.log.Info("session update not applied", "client_id", id, "err", err)
		}
	case CmdGetAllClientSessions:
		return c.reply(sessionsOf(hub, hub.GetAllClientIDList()))
	case CmdIsOnline:
		return c.reply(boolInt(hub.IsOnline(id)))
	case CmdBindUID:
		if phpEmpty(p.ExtData) {
			return nil
		}
		hub.BindUID(id, string(p.ExtData))
	case CmdUnbindUID:
		// The Gateway unbinds whatever uid the client has.
		if uid, err := hub.GetUIDByClientID(id); err == nil && uid != "" {
			hub.UnbindUID(id, uid)
		}
	case CmdSendToUID:
		uids, err := jsonStrings(p.ExtData)
		if err != nil {
			return fmt.Errorf("sendToUid ext_data: %w", err)
		}
		return c.send(p, func(msg []byte) { hub.SendToUID(msg, uids...) })
	case CmdGetClientIDByUID:
		return c.reply(in.connList(hub.GetClientIDByUID(string(p.ExtData))))
	case CmdBatchGetClientIDByUID:
		uids, err := jsonStrings(p.ExtData)
		if err != nil {
			return fmt.Errorf("batchGetClientIdByUid ext_data: %w", err)
		}
		out := &Array{}
		for _, uid := range uids {
			out.Set(StringKey(uid), in.connList(hub.GetClientIDByUID(uid)))
		}
		return c.reply(out)
	case CmdJoinGroup:
		if phpEmpty(p.ExtData) {
			return nil
		}
		hub.JoinGroup(id, string(p.ExtData))
	case CmdLeaveGroup:
		if phpEmpty(p.ExtData) {
			return nil
		}
		hub.LeaveGroup(id, string(p.ExtData))
	case CmdUngroup:
		if phpEmpty(p.ExtData) {
			return nil
		}
		hub.Ungroup(string(p.ExtData))
	case CmdSendToGroup:
		var ext struct {
			Group   json.RawMessage `json:"group"`
			Exclude json.RawMessage `json:"exclude"`
		}
		if err := json.Unmarshal(p.ExtData, &ext); err != nil {
			return fmt.Errorf("sendToGroup ext_data: %v", err)
		}
		groups, err := jsonStrings(ext.Group)
		if err != nil {
			return fmt.Errorf("sendToGroup groups: %w", err)
		}
		exclude, err := in.connectionIDs(ext.Exclude)
		if err != nil {
			return err
		}
		// Once per group, as PHP: a client in two of the groups gets
		// the message twice.
		return c.send(p, func(msg []byte) {
			for _, g := range groups {
				hub.SendToGroup(msg, []string{g}, exclude)
			}
		})
	case CmdGetClientSessionsByGroup:
		return c.reply(sessionsOf(hub, hub.GetClientIDListByGroup(string(p.ExtData))))
	case CmdGetClientCountByGroup:
		if len(p.ExtData) == 0 {
			return c.reply(int64(hub.GetAllClientIDCount()))
		}
		return c.reply(int64(hub.GetClientIDCountByGroup(string(p.ExtData))))
	case CmdSelect:
		return c.reply(in.selectClients(hub, p.ExtData))
	case CmdGetGroupIDList:
		return c.reply(hub.GetAllGroupIDList())
	case CmdBatchGetClientCountByGroup:
		groups, err := jsonStrings(p.ExtData)
		if err != nil {
			return fmt.Errorf("batchGetClientIdCountByGroup ext_data: %w", err)
		}
		out := &Array{}
		for _, g := range groups {
			out.Set(StringKey(g), int64(hub.GetClientIDCountByGroup(g)))
		}
		return c.reply(out)
	case CmdGetSessionByClientID:
		s, err := hub.GetSessionRaw(id)
		switch {
		case errors.Is(err, gateway.ErrClientNotFound):
			s = []byte("N;")
		case err != nil:
			c.log.Info("session not read", "client_id", id, "err", err)
			s = []byte("N;")
		case phpEmpty(s):
			s = []byte("a:0:{}")
		}
		c.q.send(AppendReply(nil, s))
	case CmdSetSession:
		// A command for a client that left stores nothing.
		hub.SetSessionRaw(id, p.ExtData)
	default:
		// Events and pings sent to a Gateway: PHP logs and goes on.
		c.log.Debug("ignoring a command a gateway does not take", "cmd", p.Cmd)
	}
	return nil
}

// send runs f with the message of a send command: its body, or for a
// raw (FLAG_NOT_CALL_ENCODE) body the payloads of the WebSocket frames
// it holds.
func (c *innerConn) send(p *Packet, f func(msg []byte)) error {
	msg, ok, err := p.BodyMessage()
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	if p.Raw() {
		if payloads, ok := framePayloads(msg); ok {
			for _, m := range payloads {
				f(m)
			}
			return nil
		}
	}
	f(msg) // the packet's own bytes: the hub may keep them
	return nil
}

// sessionsOf returns [connection id => session string] for the ids of
// clients still connected.
func sessionsOf(hub Hub, ids []string) *Array {
	out := NewArray(len(ids))
	for _, id := range ids {
		cid, err := ParseClientID(id)
		if err != nil {
			continue
		}
		if s, err := hub.GetSessionRaw(id); err == nil {
			out.Set(IntKey(int64(cid.ConnectionID)), string(s))
		}
	}
	return out
}

// connList returns the connection ids of client ids as a PHP list.
func (in *Inner) connList(ids []string) *Array {
	out := NewArray(len(ids))
	for _, id := range ids {
		if cid, err := ParseClientID(id); err == nil {
			out.Append(int64(cid.ConnectionID))
		}
	}
	return out
}

// connectionIDs turns a JSON set of connection ids ({"1":1} or [1]) into
// client ids; null or absent is nil.
func (in *Inner) connectionIDs(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	v, err := FromJSON(raw)
	if err != nil {
		return nil, err
	}
	a, ok := v.(*Array)
	if !ok {
		return nil, errorf("connection ids are %s, not an array", kindName(v))
	}
	var out []string
	for _, e := range a.All() {
		n, ok := phpInt(e)
		if ok && n >= 0 && n <= 1<<32-1 {
			out = append(out, in.clientID(uint32(n)))
		}
	}
	return out, nil
}

// selectClients is CMD_SELECT: ext_data {"fields":[...],"where":...}.
func (in *Inner) selectClients(hub Hub, ext []byte) *Array {
	out := &Array{}
	v, err := FromJSON(ext)
	q, _ := v.(*Array)
	if err != nil || q == nil || q.Len() == 0 {
		return out
	}
	fieldsV, _ := q.Get(StringKey("fields"))
	var fields []string
	if fa, ok := fieldsV.(*Array); ok {
		for _, f := range fa.All() {
			fields = append(fields, scalarString(f))
		}
	}
	row := func(id string) {
		cid, err := ParseClientID(id)
		if err != nil || !hub.IsOnline(id) {
			return
		}
		k := IntKey(int64(cid.ConnectionID))
		if _, ok := out.Get(k); ok {
			return
		}
		r := &Array{}
		for _, f := range fields {
			r.Set(StringKey(f), in.field(hub, id, f))
		}
		out.Set(k, r)
	}
	whereV, _ := q.Get(StringKey("where"))
	where, _ := whereV.(*Array)
	if where.Len() == 0 {
		for _, id := range hub.GetAllClientIDList() {
			row(id)
		}
		return out
	}
	for key, items := range where.All() {
		list, _ := items.(*Array)
		for _, item := range list.All() {
			switch key.String() {
			case "groups":
				for _, id := range hub.GetClientIDListByGroup(scalarString(item)) {
					row(id)
				}
			case "uid":
				for _, id := range hub.GetClientIDByUID(scalarString(item)) {
					row(id)
				}
			case "connection_id":
				if n, ok := phpInt(item); ok && n >= 0 && n <= 1<<32-1 {
					row(in.clientID(uint32(n)))
				}
			}
		}
	}
	return out
}

// field is one CMD_SELECT field of a client: uid, groups or session.
func (in *Inner) field(hub Hub, id, name string) any {
	switch name {
	case "uid":
		if uid, err := hub.GetUIDByClientID(id); err == nil && uid != "" {
			return uid
		}
	case "groups":
		// [group => group], null for none, as PHP's $connection->groups.
		if groups, _ := hub.GetGroupsByClientID(id); len(groups) > 0 {
			gs := NewArray(len(groups))
			for _, g := range groups {
				gs.Set(StringKey(g), g)
			}
			return gs
		}
	case "session":
		s, _ := hub.GetSessionRaw(id)
		return string(s)
	}
	return nil
}

// jsonStrings decodes a JSON list (or object) of strings or numbers into
// their PHP string forms, in order.
func jsonStrings(raw []byte) ([]string, error) {
	v, err := FromJSON(raw)
	if err != nil {
		return nil, err
	}
	a, ok := v.(*Array)
	if !ok {
		return nil, errorf("%s, not an array", kindName(v))
	}
	out := make([]string, 0, a.Len())
	for _, e := range a.All() {
		out = append(out, scalarString(e))
	}
	return out, nil
}

// phpInt returns an integer or numeric string's value.
func phpInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case string:
		k := StringKey(v)
		return k.Int(), !k.IsString()
	case float64:
		return int64(v), v == float64(int64(v))
	}
	return 0, false
}

// phpEmpty is PHP's empty() for a string: "" and "0".
func phpEmpty(s []byte) bool { return len(s) == 0 || string(s) == "0" }

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func bytesClone(b []byte) []byte { return append([]byte{}, b...) }

// framePayloads returns the payloads of the unmasked, final WebSocket
// data frames b consists of, as a raw send carries them; ok is false if
// b is not exactly such frames.
func framePayloads(b []byte) (payloads [][]byte, ok bool) {
	for len(b) > 0 {
		if len(b) < 2 || b[0]&0x80 == 0 || b[0]&0x70 != 0 || b[1]&0x80 != 0 {
			return nil, false
		}
		op := b[0] & 0x0f
		if op != 1 && op != 2 {
			return nil, false
		}
		n, h := uint64(b[1]&0x7f), 2
		switch n {
		case 126:
			if len(b) < 4 {
				return nil, false
			}
			n, h = uint64(b[2])<<8|uint64(b[3]), 4
		case 127:
			if len(b) < 10 {
				return nil, false
			}
			n = 0
			for _, x := range b[2:10] {
				n = n<<8 | uint64(x)
			}
			h = 10
		}
		if uint64(len(b)-h) < n {
			return nil, false
		}
		payloads = append(payloads, bytesClone(b[h:h+int(n)]))
		b = b[h+int(n):]
	}
	return payloads, len(payloads) > 0
}
