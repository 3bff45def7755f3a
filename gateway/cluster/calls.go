package cluster

// This file is one concern: how each gateway API call runs across the
// nodes (on the owner of a client, through the index, by broadcast or by
// scatter-gather), one function per kind of call.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/redis/rueidis"

	"github.com/wssgate/wssgate/gateway"
)

// Methods that act on one client: they run on the node its id names.
var clientMethods = map[string]bool{
	"sendToClient": true, "closeClient": true, "destroyClient": true,
	"setSession": true, "updateSession": true, "getSession": true,
	"joinGroup": true, "leaveGroup": true, "bindUid": true, "unbindUid": true,
	"isOnline": true, "getUidByClientId": true,
}

// Methods answered by every node and merged: counts and lists. A count
// of distinct uids is asked as the list, since a uid may be bound on
// several nodes.
var queryMethods = map[string]string{
	"getAllClientIdCount":      "getAllClientIdCount",
	"getAllClientIdList":       "getAllClientIdList",
	"getClientIdCountByGroup":  "getClientIdCountByGroup",
	"getClientIdListByGroup":   "getClientIdListByGroup",
	"getUidListByGroup":        "getUidListByGroup",
	"getUidCountByGroup":       "getUidListByGroup",
	"getAllUidList":            "getAllUidList",
	"getAllUidCount":           "getAllUidList",
	"getAllGroupIdList":        "getAllGroupIdList",
	"getAllClientSessions":     "getAllClientSessions",
	"getClientSessionsByGroup": "getClientSessionsByGroup",
	"getClientIdByUid":         "getClientIdByUid",
	"ungroup":                  "ungroup",
}

// Call runs one gateway API call across the cluster, as [gateway.Hub.Call]
// does on one hub, within the node's call timeout. The result has the
// type the hub's Call gives. Errors are the hub's (wrapping
// gateway.ErrBadCall, gateway.ErrClientNotFound, ...), also when another
// node returned them, or wrap [ErrUnavailable].
//
// Sends (sendToAll, sendToUid, sendToGroup) return how many of this
// node's clients the message was queued for; other nodes deliver after
// the call returns, and their counts are not waited for.
func (n *Node) Call(c gateway.Call) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.CallTimeout)
	defer cancel()
	return n.CallContext(ctx, c)
}

// CallContext is [Node.Call] bounded by ctx as well.
func (n *Node) CallContext(ctx context.Context, c gateway.Call) (any, error) {
	res, err := n.call(ctx, c)
	if errors.Is(err, ErrUnavailable) {
		n.stats.unavailable.Add(1)
	}
	return res, err
}

func (n *Node) call(ctx context.Context, c gateway.Call) (any, error) {
	switch m := c.Method; {
	case m == "sendToAll":
		if c.Data == nil {
			return nil, errEmpty("data")
		}
		return n.SendToAll(ctx, c.Data, c.ClientIDs, c.Exclude)
	case m == "sendToUid":
		if c.Data == nil {
			return nil, errEmpty("data")
		}
		uids := withOne(c.UIDs, c.UID)
		if len(uids) == 0 {
			return nil, errEmpty("uid or uids")
		}
		return n.SendToUID(ctx, c.Data, uids...)
	case m == "sendToGroup":
		if c.Data == nil {
			return nil, errEmpty("data")
		}
		groups := withOne(c.Groups, c.Group)
		if len(groups) == 0 {
			return nil, errEmpty("group or groups")
		}
		return n.SendToGroup(ctx, c.Data, groups, c.Exclude)
	case m == "isUidOnline":
		if c.UID == "" {
			return nil, errEmpty("uid")
		}
		return n.IsUIDOnline(ctx, c.UID)
	case clientMethods[m]:
		if c.ClientID == "" {
			return n.hub.Call(c) // the hub names what is missing
		}
		id, ok := nodeOf(c.ClientID)
		if !ok || id == n.id {
			return n.localCall(ctx, c)
		}
		return n.remoteCall(ctx, id, c)
	case queryMethods[m] != "":
		if err := checkQuery(c); err != nil {
			return nil, err
		}
		return n.gather(ctx, c)
	}
	return n.hub.Call(c) // an unknown method: the hub's error
}

// checkQuery checks a query's arguments as the hub does, before any
// node is asked.
func checkQuery(c gateway.Call) error {
	switch c.Method {
	case "getClientIdByUid":
		if c.UID == "" {
			return errEmpty("uid")
		}
	case "getClientIdCountByGroup", "getClientIdListByGroup", "getUidListByGroup",
		"getUidCountByGroup", "getClientSessionsByGroup", "ungroup":
		if c.Group == "" {
			return errEmpty("group")
		}
	}
	return nil
}

func errEmpty(name string) error {
	return fmt.Errorf("%w: %s is required", gateway.ErrBadCall, name)
}

func withOne(list []string, one string) []string {
	if one != "" {
		return append([]string{one}, list...)
	}
	return list
}

// localCall runs c on this node's hub, keeping the index in step.
func (n *Node) localCall(ctx context.Context, c gateway.Call) (any, error) {
	switch c.Method {
	case "bindUid":
		if c.ClientID == "" || c.UID == "" {
			return n.hub.Call(c)
		}
		return n.bind(ctx, c.ClientID, c.UID)
	case "unbindUid":
		res, err := n.hub.Call(c)
		if changed, _ := res.(bool); changed {
			n.syncEntry(ctx, kindUID, c.UID)
		}
		return res, err
	case "joinGroup", "leaveGroup":
		res, err := n.hub.Call(c)
		if changed, _ := res.(bool); changed {
			for _, g := range withOne(c.Groups, c.Group) {
				n.syncEntry(ctx, kindGroup, g)
			}
		}
		return res, err
	case "ungroup":
		res, err := n.hub.Call(c)
		if k, _ := res.(int); k > 0 {
			n.syncEntry(ctx, kindGroup, c.Group)
		}
		return res, err
	}
	return n.hub.Call(c)
}

// SendToAll sends data to every client of every node (one publish), or,
// when only is not nil, to those client ids (one message per node that
// holds any), except the ids in exclude. It returns how many of this
// node's clients it was queued for. When Redis is down, this node's
// clients still get it and the error wraps ErrUnavailable.
func (n *Node) SendToAll(ctx context.Context, data []byte, only, exclude []string) (int, error) {
	if only == nil {
		local := n.hub.SendToAll(data, nil, exclude)
		c, err := n.usable()
		if err != nil {
			return local, err
		}
		w := &wireCall{Method: "sendToAll", HasData: true, Exclude: exclude}
		_, err = n.publish(ctx, c, n.k.all(), &envelope{Op: opSend, From: n.id, Call: w, data: data})
		return local, err
	}
	byNode := make(map[string][]string)
	for _, id := range gateway.Distinct(only) {
		if nid, ok := nodeOf(id); ok {
			byNode[nid] = append(byNode[nid], id)
		}
	}
	local := 0
	if ids := byNode[n.id]; len(ids) > 0 {
		local = n.hub.SendToAll(data, ids, exclude)
	}
	delete(byNode, n.id)
	if len(byNode) == 0 {
		return local, nil
	}
	c, err := n.usable()
	if err != nil {
		return local, err
	}
	for _, nid := range slices.Sorted(maps.Keys(byNode)) {
		w := &wireCall{Method: "sendToAll", HasData: true, ClientIDs: byNode[nid], OnlyIDs: true, Exclude: exclude}
		if _, err := n.publish(ctx, c, n.k.inbox(nid), &envelope{Op: opSend, From: n.id, Call: w, data: data}); err != nil {
			return local, err
		}
	}
	return local, nil
}

// SendToUID sends data to every client bound to any of uids, on every
// node: this node's clients directly, and one message to each other node
// that holds any of the uids (the index says which). A uid bound on no
// node gets the message kept, when offline messages are on. It returns
// how many of this node's clients it was queued for.
func (n *Node) SendToUID(ctx context.Context, data []byte, uids ...string) (int, error) {
	uids = gateway.Distinct(uids)
	localPer := n.deliverUID(data, uids)
	local := 0
	for _, k := range localPer {
		local += k
	}
	c, err := n.usable()
	if err != nil {
		return local, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	defer cancel()
	runs := make([]scriptRun, len(uids))
	for i, u := range uids {
		store := "0"
		if n.cfg.Offline.MaxPerUID > 0 && localPer[i] == 0 {
			store = "1"
		}
		runs[i] = scriptRun{keys: []string{n.k.uid(u), n.k.offline(u)}, args: n.offlineArgs(store, data)}
	}
	byNode := make(map[string][]string)
	for i, r := range routeScript.run(ctx, c, runs...) {
		parts, err := r.ToArray()
		if err != nil || len(parts) != 2 {
			return local, unavailable(fmt.Errorf("routing uid %q: %w", uids[i], errOr(err, "unexpected reply")))
		}
		if stored, _ := parts[0].AsInt64(); stored == 1 {
			n.stats.offlineStored.Add(1)
		}
		nodes, _ := parts[1].AsStrSlice()
		for _, nid := range nodes {
			if nid == n.id {
				if localPer[i] == 0 { // the index is behind the hub
					n.dropStale(ctx, uids[i], data)
				}
				continue
			}
			byNode[nid] = append(byNode[nid], uids[i])
		}
	}
	for _, nid := range slices.Sorted(maps.Keys(byNode)) {
		w := &wireCall{Method: "sendToUid", HasData: true, UIDs: byNode[nid]}
		got, err := n.publish(ctx, c, n.k.inbox(nid), &envelope{Op: opSend, From: n.id, Call: w, data: data})
		if err != nil {
			return local, err
		}
		if got == 0 { // that node is gone and the janitor has not been by yet
			n.nodeGone(ctx, c, nid, byNode[nid], data)
		}
	}
	return local, nil
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

func (n *Node) offlineArgs(store string, data []byte) []string {
	return []string{store, strings64(int64(n.cfg.Offline.MaxPerUID)),
		strings64(max(n.cfg.Offline.TTL.Milliseconds(), 1)), string(data)}
}

// nodeGone handles a send that reached no subscriber on node nid: its
// entries for uids are removed, and a uid left on no node keeps the
// message (when offline messages are on).
func (n *Node) nodeGone(ctx context.Context, c rueidis.Client, nid string, uids []string, data []byte) {
	store := "0"
	if n.cfg.Offline.MaxPerUID > 0 {
		store = "1"
	}
	runs := make([]scriptRun, len(uids))
	for i, u := range uids {
		runs[i] = scriptRun{keys: []string{n.k.uid(u), n.k.offline(u)},
			args: append([]string{nid}, n.offlineArgs(store, data)...)}
	}
	for _, r := range goneScript.run(ctx, c, runs...) {
		if v, _ := r.AsInt64(); v == 1 {
			n.stats.offlineStored.Add(1)
		}
	}
}

// dropStale removes this node from uid's index entry when the hub holds
// no client of uid (a close or unbind the node was not told of yet); the
// message that found nobody here is kept if no node is left. If the uid
// was bound meanwhile, the message is delivered instead.
func (n *Node) dropStale(ctx context.Context, uid string, data []byte) {
	n.idx.all.RLock()
	defer n.idx.all.RUnlock()
	mu := n.idx.stripe(byte(kindUID), uid)
	mu.Lock()
	defer mu.Unlock()
	if n.hub.IsUIDOnline(uid) {
		n.hub.SendToUID(data, uid)
		return
	}
	c, err := n.usable()
	if err != nil {
		return
	}
	store := "0"
	if n.cfg.Offline.MaxPerUID > 0 {
		store = "1"
	}
	r := goneScript.run(ctx, c, scriptRun{keys: []string{n.k.uid(uid), n.k.offline(uid)},
		args: append([]string{n.id}, n.offlineArgs(store, data)...)})[0]
	if v, err := r.AsInt64(); err == nil {
		if v == 1 {
			n.stats.offlineStored.Add(1)
		}
		c.Do(ctx, c.B().Srem().Key(n.reverseKey(kindUID)).Member(uid).Build())
		n.idx.set(n.idx.uids, uid, false)
	}
}

// deliverUID queues data for this node's clients of each uid and returns
// the count per uid. A uid being bound with offline messages pending
// gets it after them.
func (n *Node) deliverUID(data []byte, uids []string) []int {
	out := make([]int, len(uids))
	for i, u := range uids {
		if n.nbind.Load() > 0 && n.buffer(u, data) {
			out[i] = 1
			continue
		}
		out[i] = n.hub.SendToUID(data, u)
	}
	return out
}

// SendToGroup sends data to the members of groups on every node, each
// client once, except the client ids in exclude: this node's members
// directly, and one message to each other node that holds a member (the
// index says which). It returns how many of this node's clients it was
// queued for.
func (n *Node) SendToGroup(ctx context.Context, data []byte, groups, exclude []string) (int, error) {
	groups = gateway.Distinct(groups)
	local := n.hub.SendToGroup(data, groups, exclude)
	c, err := n.usable()
	if err != nil {
		return local, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	defer cancel()
	cmds := make(rueidis.Commands, len(groups))
	for i, g := range groups {
		cmds[i] = c.B().Smembers().Key(n.k.group(g)).Build()
	}
	nodes := make(map[string]bool)
	for _, r := range c.DoMulti(ctx, cmds...) {
		ids, err := r.AsStrSlice()
		if err != nil {
			return local, unavailable(err)
		}
		for _, id := range ids {
			nodes[id] = true
		}
	}
	delete(nodes, n.id)
	if len(nodes) == 0 {
		return local, nil
	}
	w := &wireCall{Method: "sendToGroup", HasData: true, Groups: groups, Exclude: exclude}
	for _, nid := range slices.Sorted(maps.Keys(nodes)) {
		if _, err := n.publish(ctx, c, n.k.inbox(nid), &envelope{Op: opSend, From: n.id, Call: w, data: data}); err != nil {
			return local, err
		}
	}
	return local, nil
}

// IsUIDOnline reports whether any node holds a client bound to uid.
func (n *Node) IsUIDOnline(ctx context.Context, uid string) (bool, error) {
	if n.hub.IsUIDOnline(uid) {
		return true, nil
	}
	c, err := n.usable()
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	defer cancel()
	ids, err := c.Do(ctx, c.B().Smembers().Key(n.k.uid(uid)).Build()).AsStrSlice()
	if err != nil {
		return false, unavailable(err)
	}
	for _, id := range ids {
		if id != n.id {
			return true, nil
		}
	}
	return false, nil
}

// pending is a call or query waiting for replies.
type pending struct {
	mu      sync.Mutex
	replies []*envelope
	err     error
	notify  chan struct{} // cap 1: something arrived
}

func (p *pending) add(e *envelope) {
	p.mu.Lock()
	p.replies = append(p.replies, e)
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func (p *pending) fail(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func (n *Node) newPending() (uint64, *pending) {
	id := n.nextReq.Add(1)
	p := &pending{notify: make(chan struct{}, 1)}
	n.pmu.Lock()
	n.pending[id] = p
	n.pmu.Unlock()
	return id, p
}

func (n *Node) dropPending(id uint64) {
	n.pmu.Lock()
	delete(n.pending, id)
	n.pmu.Unlock()
}

// wait returns once want replies have arrived, or fails with
// ErrUnavailable when ctx ends first.
func (p *pending) wait(ctx context.Context, want int) ([]*envelope, error) {
	for {
		p.mu.Lock()
		got, err := p.replies, p.err
		p.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if len(got) >= want {
			return got, nil
		}
		select {
		case <-p.notify:
		case <-ctx.Done():
			return nil, unavailable(fmt.Errorf("%d of %d nodes answered: %w", len(got), want, ctx.Err()))
		}
	}
}

// request publishes c as op on channel with a slot for the replies,
// within CallTimeout. It returns the context to wait for the replies
// in, the slot, how many nodes heard it (the publish's subscriber
// count), and done, which frees the slot and the context; the caller
// defers done unless err is set.
func (n *Node) request(ctx context.Context, channel, op string, c gateway.Call) (context.Context, *pending, int64, func(), error) {
	rc, err := n.usable()
	if err != nil {
		return nil, nil, 0, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	req, p := n.newPending()
	done := func() {
		n.dropPending(req)
		cancel()
	}
	w, data := toWire(c)
	got, err := n.publish(ctx, rc, channel, &envelope{Op: op, From: n.id, Req: req, Call: w, data: data})
	if err != nil {
		done()
		return nil, nil, 0, nil, err
	}
	return ctx, p, got, done, nil
}

// remoteCall runs c on node nid, which holds its client, and returns its
// answer.
func (n *Node) remoteCall(ctx context.Context, nid string, c gateway.Call) (any, error) {
	ctx, p, got, done, err := n.request(ctx, n.k.inbox(nid), opCall, c)
	if err != nil {
		return nil, err
	}
	defer done()
	if got == 0 { // no such node now: its clients are not connected
		if c.Method == "isOnline" {
			return false, nil
		}
		return nil, fmt.Errorf("%w (node %s is not in the cluster)", gateway.ErrClientNotFound, nid)
	}
	replies, err := p.wait(ctx, 1)
	if err != nil {
		return nil, err
	}
	return replyResult(c.Method, replies[0])
}

func replyResult(method string, e *envelope) (any, error) {
	if e.Err != "" {
		return nil, &RemoteError{Node: e.From, Msg: e.Err, kind: errorKinds[e.Kind]}
	}
	return decodeResult(method, e.Result)
}

// gather asks every node for c's answer on its own clients and merges
// the answers. The publish's subscriber count says how many answers to
// wait for.
func (n *Node) gather(ctx context.Context, c gateway.Call) (any, error) {
	ask := c
	ask.Method = queryMethods[c.Method]
	ctx, p, got, done, err := n.request(ctx, n.k.all(), opQuery, ask)
	if err != nil {
		return nil, err
	}
	defer done()
	mine, err := n.localCall(ctx, ask)
	if err != nil {
		return nil, err
	}
	results := []any{mine}
	if want := int(got) - 1; want > 0 { // every node but this one answers
		replies, err := p.wait(ctx, want)
		if err != nil {
			return nil, err
		}
		for _, e := range replies {
			r, err := replyResult(ask.Method, e)
			if err != nil {
				return nil, err
			}
			results = append(results, r)
		}
	}
	return merge(c.Method, results), nil
}

// merge combines the nodes' answers to a query.
func merge(method string, results []any) any {
	switch method {
	case "getAllClientIdCount", "getClientIdCountByGroup", "ungroup":
		sum := 0
		for _, r := range results {
			v, _ := r.(int)
			sum += v
		}
		return sum
	case "getAllClientSessions", "getClientSessionsByGroup":
		out := make(map[string]gateway.Session)
		for _, r := range results {
			maps.Copy(out, r.(map[string]gateway.Session))
		}
		return out
	}
	var all []string
	for _, r := range results {
		v, _ := r.([]string)
		all = append(all, v...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	if all == nil {
		all = []string{}
	}
	if method == "getAllUidCount" || method == "getUidCountByGroup" { // distinct uids
		return len(all)
	}
	return all
}

// onMessage handles a message on one of the node's channels. It runs on
// the client's receiving goroutine, so it only does what does not wait:
// sends are queued to the hub here, in order; calls and queries go to
// the worker.
func (n *Node) onMessage(m rueidis.PubSubMessage) {
	e, err := decodeEnvelope(m.Message)
	if err != nil {
		n.stats.dropped.Add(1)
		n.log.Debug("malformed message dropped", "channel", m.Channel, "err", err)
		return
	}
	if e.From == n.id {
		return // our own broadcast
	}
	n.stats.received.Add(1)
	switch e.Op {
	case opReply:
		n.pmu.Lock()
		p := n.pending[e.Req]
		n.pmu.Unlock()
		if p != nil {
			p.add(e)
		}
	case opSend:
		if e.Call != nil {
			n.stats.sends.Add(1)
			n.applySend(e.Call.call(e.data))
		}
	case opCall, opQuery:
		if e.Call == nil {
			return
		}
		select {
		case n.inbox <- func(ctx context.Context) { n.answer(ctx, e) }:
		default:
			n.stats.dropped.Add(1)
			n.log.Debug("inbox full, request dropped", "from", e.From, "method", e.Call.Method)
		}
	}
}

// applySend queues a fanned-out send for this node's clients.
func (n *Node) applySend(c gateway.Call) {
	switch c.Method {
	case "sendToAll":
		n.hub.SendToAll(c.Data, c.ClientIDs, c.Exclude)
	case "sendToUid":
		per := n.deliverUID(c.Data, c.UIDs)
		for i, k := range per {
			if k == 0 { // routed here, yet no client: the index is behind
				uid, data := c.UIDs[i], c.Data
				n.enqueue(func(ctx context.Context) { n.dropStale(ctx, uid, data) })
			}
		}
	case "sendToGroup":
		n.hub.SendToGroup(c.Data, c.Groups, c.Exclude)
		for _, g := range c.Groups {
			if n.hub.GetClientIDCountByGroup(g) == 0 {
				g := g
				n.enqueue(func(ctx context.Context) { n.syncEntry(ctx, kindGroup, g) })
			}
		}
	}
}

func (n *Node) enqueue(f func(context.Context)) {
	select {
	case n.inbox <- f:
	default:
		n.stats.dropped.Add(1)
	}
}

// answer runs a call or query from another node and replies.
func (n *Node) answer(ctx context.Context, e *envelope) {
	n.stats.calls.Add(1)
	c := e.Call.call(e.data)
	res, err := n.localCall(ctx, c)
	r := &envelope{Op: opReply, From: n.id, Req: e.Req}
	if err != nil {
		r.Err, r.Kind = err.Error(), kindOf(err)
	} else if res != nil {
		b, jerr := json.Marshal(res)
		if jerr != nil {
			r.Err = jerr.Error()
		} else {
			r.Result = b
		}
	}
	rc, uerr := n.usable()
	if uerr != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	defer cancel()
	if _, err := n.publish(ctx, rc, n.k.inbox(e.From), r); err != nil {
		n.log.Debug("reply failed", "to", e.From, "err", err)
	}
}

// work runs the inbox's requests in order until ctx is done.
func (n *Node) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-n.inbox:
			f(ctx)
		}
	}
}
