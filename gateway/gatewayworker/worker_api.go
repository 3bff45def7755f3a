package gatewayworker

// This file is one concern: the commands and queries a Worker sends,
// as GatewayWorker's Lib\Gateway does inside a BusinessWorker.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
)

// The Gateway API of a Worker: what GatewayWorker\Lib\Gateway does when
// it runs inside a BusinessWorker. Commands go over the Worker's
// connections to the Gateways; queries over a short connection each, as
// GatewayClient's. The packets are PHP's byte for byte.
//
// A client id names the Gateway holding the client: a command for a
// client goes to the Worker's connection to that Gateway, and fails with
// ErrNoGateway when there is none. A malformed client id fails the call
// with ErrBadClientID before anything is sent. A command for everyone
// goes to every connected Gateway and fails with ErrNoGateway when there
// is none. A command reports only that it was queued: like PHP's, it
// gets no answer.

// SendToClient sends msg to one client (Gateway::sendToClient).
func (w *Worker) SendToClient(clientID string, msg []byte) error {
	return w.toClient(clientID, command(CmdSendToOne, nil, msg))
}

// SendToAll sends msg to every client (Gateway::sendToAll). A non-nil
// only limits it to those clients (an empty one sends nothing);
// otherwise exclude, if not empty, leaves those clients out.
func (w *Worker) SendToAll(msg []byte, only, exclude []string) error {
	p := command(CmdSendToAll, nil, msg)
	if only != nil {
		// To the Gateway of each listed client: {"connections":{...}}.
		skip := make(map[string]bool, len(exclude))
		for _, id := range exclude {
			skip[id] = true
		}
		only = slices.DeleteFunc(slices.Clone(only), func(id string) bool { return skip[id] })
		byAddr, order, err := connectionsByAddr(only)
		if err != nil {
			return err
		}
		var errs []error
		for _, addr := range order {
			q := p
			q.ExtData = jsonOf("connections", byAddr[addr])
			errs = append(errs, w.sendTo(addr, q))
		}
		return errors.Join(errs...)
	}
	if len(exclude) == 0 {
		return w.toAll(func(string) Packet { return p })
	}
	byAddr, _, err := connectionsByAddr(exclude)
	if err != nil {
		return err
	}
	return w.toAll(func(addr string) Packet {
		q := p
		if a, ok := byAddr[addr]; ok {
			q.ExtData = jsonOf("exclude", a)
		}
		return q
	})
}

// SendToUID sends msg to every client bound to one of the uids
// (Gateway::sendToUid). No uid sends nothing.
func (w *Worker) SendToUID(msg []byte, uids ...string) error {
	if len(uids) == 0 {
		return nil
	}
	ext, _ := ToJSON(stringList(uids))
	return w.toAll(func(string) Packet { return command(CmdSendToUID, ext, msg) })
}

// SendToGroup sends msg to every member of the groups, leaving out the
// clients in exclude (Gateway::sendToGroup). A client in two of the
// groups gets it twice, as with PHP. No group sends nothing.
func (w *Worker) SendToGroup(msg []byte, groups []string, exclude []string) error {
	if len(groups) == 0 {
		return nil
	}
	byAddr, _, err := connectionsByAddr(exclude)
	if err != nil {
		return err
	}
	plain := jsonOf("group", stringList(groups), "exclude", nil)
	return w.toAll(func(addr string) Packet {
		if a, ok := byAddr[addr]; ok {
			return command(CmdSendToGroup, jsonOf("group", stringList(groups), "exclude", a), msg)
		}
		return command(CmdSendToGroup, plain, msg)
	})
}

// JoinGroup adds a client to a group (Gateway::joinGroup).
func (w *Worker) JoinGroup(clientID, group string) error {
	return w.toClient(clientID, command(CmdJoinGroup, []byte(group), nil))
}

// LeaveGroup removes a client from a group (Gateway::leaveGroup).
func (w *Worker) LeaveGroup(clientID, group string) error {
	return w.toClient(clientID, command(CmdLeaveGroup, []byte(group), nil))
}

// Ungroup empties a group on every Gateway (Gateway::ungroup).
func (w *Worker) Ungroup(group string) error {
	return w.toAll(func(string) Packet { return command(CmdUngroup, []byte(group), nil) })
}

// BindUID binds a client to a uid (Gateway::bindUid).
func (w *Worker) BindUID(clientID, uid string) error {
	return w.toClient(clientID, command(CmdBindUID, []byte(uid), nil))
}

// UnbindUID unbinds a client from its uid (Gateway::unbindUid; the
// Gateway unbinds whatever uid the client has).
func (w *Worker) UnbindUID(clientID, uid string) error {
	return w.toClient(clientID, command(CmdUnbindUID, []byte(uid), nil))
}

// SetSession replaces a client's session (Gateway::setSession); nil
// stores none. For the client of the event being handled, set
// Event.Session instead.
func (w *Worker) SetSession(clientID string, session *Array) error {
	var ext []byte
	if session != nil {
		var err error
		if ext, err = Serialize(session); err != nil {
			return err
		}
	}
	return w.toClient(clientID, command(CmdSetSession, ext, nil))
}

// UpdateSession merges update into a client's session as
// array_replace_recursive (Gateway::updateSession). A nil update does
// nothing.
func (w *Worker) UpdateSession(clientID string, update *Array) error {
	if update == nil {
		return nil
	}
	ext, err := Serialize(update)
	if err != nil {
		return err
	}
	return w.toClient(clientID, command(CmdUpdateSession, ext, nil))
}

// CloseClient closes a client's connection after sending it msg, or
// nothing when msg is nil (Gateway::closeClient).
func (w *Worker) CloseClient(clientID string, msg []byte) error {
	if msg == nil {
		// PHP's null message: "N;", serialized, flag 0.
		return w.toClient(clientID, Packet{Cmd: CmdKick, Body: []byte("N;")})
	}
	return w.toClient(clientID, command(CmdKick, nil, msg))
}

// DestroyClient closes a client's connection at once
// (Gateway::destoryClient).
func (w *Worker) DestroyClient(clientID string) error {
	return w.toClient(clientID, command(CmdDestroy, nil, nil))
}

// Queries. Each asks the Gateway named in the client id, or every
// Gateway the Register lists, one after the other, on a connection of
// its own (CMD_GATEWAY_CLIENT_CONNECT first when a secret key is set).
// ctx and QueryTimeout bound each one; a Gateway that closes the
// connection without a reply gives an error wrapping ErrSecretKey, the
// likely cause. With no Gateway listed, the lists are empty.

// IsOnline reports whether a client is connected (Gateway::isOnline).
func (w *Worker) IsOnline(ctx context.Context, clientID string) (bool, error) {
	id, err := ParseClientID(clientID)
	if err != nil {
		return false, err
	}
	v, err := w.queryValue(ctx, id.Addr.String(), Packet{Cmd: CmdIsOnline, ConnectionID: id.ConnectionID, Flag: FlagBodyIsScalar})
	if err != nil {
		return false, err
	}
	n, ok := phpInt(v)
	return ok && n != 0 || v == true, nil
}

// GetSession returns a client's session (Gateway::getSession): an empty
// array when it has none, nil when the client is not connected.
func (w *Worker) GetSession(ctx context.Context, clientID string) (*Array, error) {
	id, err := ParseClientID(clientID)
	if err != nil {
		return nil, err
	}
	s, err := w.query(ctx, id.Addr.String(), Packet{Cmd: CmdGetSessionByClientID, ConnectionID: id.ConnectionID, Flag: FlagBodyIsScalar})
	if err != nil {
		return nil, err
	}
	return decodeSession(s)
}

// GetAllClientIDList returns the ids of every connected client
// (Gateway::getAllClientIdList), Gateway by Gateway.
func (w *Worker) GetAllClientIDList(ctx context.Context) ([]string, error) {
	return w.selectIDs(ctx, &Array{})
}

// GetClientIDListByGroup returns the ids of a group's members
// (Gateway::getClientIdListByGroup).
func (w *Worker) GetClientIDListByGroup(ctx context.Context, group string) ([]string, error) {
	where := &Array{}
	where.Set(StringKey("groups"), List(group))
	return w.selectIDs(ctx, where)
}

// GetAllClientIDCount returns how many clients are connected
// (Gateway::getAllClientIdCount).
func (w *Worker) GetAllClientIDCount(ctx context.Context) (int, error) {
	return w.count(ctx, "")
}

// GetClientIDCountByGroup returns how many clients a group has
// (Gateway::getClientIdCountByGroup).
func (w *Worker) GetClientIDCountByGroup(ctx context.Context, group string) (int, error) {
	return w.count(ctx, group)
}

// GetClientIDByUID returns the ids of the clients bound to uid
// (Gateway::getClientIdByUid).
func (w *Worker) GetClientIDByUID(ctx context.Context, uid string) ([]string, error) {
	var out []string
	err := w.queryAll(ctx, command(CmdGetClientIDByUID, []byte(uid), nil), func(addr netip.AddrPort, v any) error {
		a, ok := v.(*Array)
		if !ok {
			return errorf("getClientIdByUid reply is %s, not an array", kindName(v))
		}
		for _, c := range a.All() {
			if n, ok := phpInt(c); ok && n >= 0 && n <= 1<<32-1 {
				out = append(out, ClientID{Addr: addr, ConnectionID: uint32(n)}.String())
			}
		}
		return nil
	})
	return out, err
}

// GetAllGroupIDList returns the groups that have members
// (Gateway::getAllGroupIdList), without repeats.
func (w *Worker) GetAllGroupIDList(ctx context.Context) ([]string, error) {
	var out []string
	err := w.queryAll(ctx, command(CmdGetGroupIDList, nil, nil), func(_ netip.AddrPort, v any) error {
		a, ok := v.(*Array)
		if !ok {
			return errorf("getAllGroupIdList reply is %s, not an array", kindName(v))
		}
		for _, g := range a.All() {
			if s := scalarString(g); !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return nil
	})
	return out, err
}

// GetUIDByClientID returns the uid a client is bound to, "" for none or
// when the client is not connected (Gateway::getUidByClientId).
func (w *Worker) GetUIDByClientID(ctx context.Context, clientID string) (string, error) {
	id, err := ParseClientID(clientID)
	if err != nil {
		return "", err
	}
	conns := &Array{}
	conns.Set(IntKey(int64(id.ConnectionID)), int64(id.ConnectionID))
	where := &Array{}
	where.Set(StringKey("connection_id"), conns)
	v, err := w.queryValue(ctx, id.Addr.String(), selectPacket(where))
	if err != nil {
		return "", err
	}
	rows, _ := v.(*Array)
	row, _ := rows.Get(IntKey(int64(id.ConnectionID)))
	fields, _ := row.(*Array)
	uid, ok := fields.Get(StringKey("uid"))
	if !ok || uid == nil {
		return "", nil
	}
	return scalarString(uid), nil
}

// command returns a command packet with a plain-string body.
func command(cmd Cmd, ext, body []byte) Packet {
	return Packet{Cmd: cmd, Flag: FlagBodyIsScalar, ExtData: ext, Body: body}
}

// selectPacket is CMD_SELECT for the uid field of the clients where
// says, as GatewayClient builds it.
func selectPacket(where *Array) Packet {
	return command(CmdSelect, jsonOf("fields", List("uid"), "where", where), nil)
}

// jsonOf returns the JSON of a PHP array of the key/value pairs kv, as
// json_encode writes it.
func jsonOf(kv ...any) []byte {
	a := &Array{}
	for i := 0; i+1 < len(kv); i += 2 {
		a.Set(StringKey(kv[i].(string)), kv[i+1])
	}
	b, _ := ToJSON(a) // strings, integers, null and arrays of them: never fails
	return b
}

func stringList(ss []string) *Array {
	a := NewArray(len(ss))
	for _, s := range ss {
		a.Append(s)
	}
	return a
}

// connectionsByAddr groups client ids by the address of their Gateway:
// [connection id => connection id] per address, as PHP's
// clientIdArrayToAddressArray, and the addresses in order of first
// appearance.
func connectionsByAddr(ids []string) (map[string]*Array, []string, error) {
	out := make(map[string]*Array)
	var order []string
	for _, s := range ids {
		id, err := ParseClientID(s)
		if err != nil {
			return nil, nil, err
		}
		addr := id.Addr.String()
		a, ok := out[addr]
		if !ok {
			a = &Array{}
			out[addr] = a
			order = append(order, addr)
		}
		a.Set(IntKey(int64(id.ConnectionID)), int64(id.ConnectionID))
	}
	return out, order, nil
}

// sendOn queues p on the connection gc.
func (w *Worker) sendOn(gc *gatewayConn, p Packet) error {
	b, err := p.Encode()
	if err != nil {
		return err
	}
	if gc.q.send(b) {
		return nil
	}
	gc.q.mu.Lock()
	shut := gc.q.shut
	gc.q.mu.Unlock()
	if shut {
		return fmt.Errorf("%w %s", ErrNoGateway, gc.addr)
	}
	return fmt.Errorf("%w (%s)", ErrBufferFull, gc.addr)
}

// sendTo queues p on the connection to the Gateway at addr.
func (w *Worker) sendTo(addr string, p Packet) error {
	w.mu.Lock()
	gc := w.conns[addr]
	w.mu.Unlock()
	if gc == nil {
		return fmt.Errorf("%w %s", ErrNoGateway, addr)
	}
	return w.sendOn(gc, p)
}

// toClient queues p, given the client's connection id, on the
// connection to the client's Gateway.
func (w *Worker) toClient(clientID string, p Packet) error {
	id, err := ParseClientID(clientID)
	if err != nil {
		return err
	}
	p.ConnectionID = id.ConnectionID
	return w.sendTo(id.Addr.String(), p)
}

// toAll queues, on every Gateway connection, the packet that packet
// returns for its address.
func (w *Worker) toAll(packet func(addr string) Packet) error {
	w.mu.Lock()
	conns := make([]*gatewayConn, 0, len(w.conns))
	for _, gc := range w.conns {
		conns = append(conns, gc)
	}
	w.mu.Unlock()
	if len(conns) == 0 {
		return ErrNoGateway
	}
	slices.SortFunc(conns, func(a, b *gatewayConn) int {
		switch {
		case a.addr < b.addr:
			return -1
		case a.addr > b.addr:
			return 1
		}
		return 0
	})
	var errs []error
	for _, gc := range conns {
		errs = append(errs, w.sendOn(gc, packet(gc.addr)))
	}
	return errors.Join(errs...)
}

// query sends p on a connection of its own to the Gateway at addr and
// returns the reply's payload.
func (w *Worker) query(ctx context.Context, addr string, p Packet) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.QueryTimeout)
	defer cancel()
	fail := func(err error) error {
		return fmt.Errorf("gatewayworker: %v query to %s: %w", p.Cmd, addr, err)
	}
	var buf []byte
	if w.cfg.SecretKey != "" {
		body := append(appendPHPJSONString([]byte(`{"secret_key":`), w.cfg.SecretKey), '}')
		buf, _ = (&Packet{Cmd: CmdGatewayClientConnect, Flag: FlagBodyIsScalar, Body: body}).AppendEncode(buf)
	}
	buf, err := p.AppendEncode(buf)
	if err != nil {
		return nil, fail(err)
	}
	d := net.Dialer{Timeout: w.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fail(err)
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	if _, err := nc.Write(buf); err != nil {
		return nil, fail(err)
	}
	payload, err := ReadReply(nc, 0)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case errors.Is(err, io.EOF):
			err = fmt.Errorf("closed without a reply (wrong secret key?): %w", ErrSecretKey)
		}
		return nil, fail(err)
	}
	return payload, nil
}

// queryValue is query with the reply unserialized.
func (w *Worker) queryValue(ctx context.Context, addr string, p Packet) (any, error) {
	b, err := w.query(ctx, addr, p)
	if err != nil {
		return nil, err
	}
	v, err := Unserialize(b)
	if err != nil {
		return nil, fmt.Errorf("gatewayworker: %v reply from %s: %w", p.Cmd, addr, err)
	}
	return v, nil
}

// queryAll runs p on every Gateway the Register lists, in its order,
// passing each reply to f; the first error ends it.
func (w *Worker) queryAll(ctx context.Context, p Packet, f func(addr netip.AddrPort, v any) error) error {
	for _, addr := range w.Addresses() {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return fmt.Errorf("gatewayworker: gateway address %q: %w", addr, err)
		}
		v, err := w.queryValue(ctx, addr, p)
		if err != nil {
			return err
		}
		if err := f(ap, v); err != nil {
			return fmt.Errorf("gatewayworker: %v reply from %s: %w", p.Cmd, addr, err)
		}
	}
	return nil
}

// selectIDs returns the client ids a CMD_SELECT for where finds.
func (w *Worker) selectIDs(ctx context.Context, where *Array) ([]string, error) {
	var out []string
	err := w.queryAll(ctx, selectPacket(where), func(addr netip.AddrPort, v any) error {
		a, ok := v.(*Array)
		if !ok {
			return errorf("select reply is %s, not an array", kindName(v))
		}
		for k := range a.All() {
			if n := k.Int(); !k.IsString() && n >= 0 && n <= 1<<32-1 {
				out = append(out, ClientID{Addr: addr, ConnectionID: uint32(n)}.String())
			}
		}
		return nil
	})
	return out, err
}

// count sums CMD_GET_CLIENT_COUNT_BY_GROUP over the Gateways ("" for
// every client).
func (w *Worker) count(ctx context.Context, group string) (int, error) {
	total := 0
	err := w.queryAll(ctx, command(CmdGetClientCountByGroup, []byte(group), nil), func(_ netip.AddrPort, v any) error {
		n, ok := phpInt(v)
		if !ok {
			return errorf("count reply is %s, not an integer", kindName(v))
		}
		total += int(n)
		return nil
	})
	return total, err
}
