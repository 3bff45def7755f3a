package cluster

import (
	"context"
	"hash/maphash"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/wssgate/wssgate/gateway"
)

// index is this node's part of the cluster's uid → nodes and group →
// nodes index, and the mirror of what Redis holds for it.
//
// An entry is written when the local hub's membership of a uid or group
// changes between empty and not empty. Writes of one key are
// serialized by a stripe lock, and each reads the hub's state when it
// runs, so the last write of a key reflects the hub's last change. A
// full resync (after Redis lost its data, or this node was taken for
// dead) takes all stripes.
type index struct {
	seed    maphash.Seed
	all     sync.RWMutex // read: one key's write; write: a resync
	stripes [64]sync.Mutex
	mu      sync.Mutex // guards uids and groups
	uids    map[string]struct{}
	groups  map[string]struct{}
	// needResync: Redis may not hold what the mirror says (down, restart,
	// janitor); rewrite everything at the next refresh.
	needResync atomic.Bool
}

func (x *index) init() {
	x.seed = maphash.MakeSeed()
	x.uids = make(map[string]struct{})
	x.groups = make(map[string]struct{})
}

func (x *index) stripe(kind byte, key string) *sync.Mutex {
	var h maphash.Hash
	h.SetSeed(x.seed)
	h.WriteByte(kind)
	h.WriteString(key)
	return &x.stripes[h.Sum64()%uint64(len(x.stripes))]
}

func (x *index) has(m map[string]struct{}, key string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, ok := m[key]
	return ok
}

func (x *index) set(m map[string]struct{}, key string, on bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if on {
		m[key] = struct{}{}
	} else {
		delete(m, key)
	}
}

// entryKind names the two halves of the index.
type entryKind byte

const (
	kindUID   entryKind = 'u'
	kindGroup entryKind = 'g'
)

func (n *Node) mirror(kind entryKind) map[string]struct{} {
	if kind == kindUID {
		return n.idx.uids
	}
	return n.idx.groups
}

func (n *Node) forwardKey(kind entryKind, key string) string {
	if kind == kindUID {
		return n.k.uid(key)
	}
	return n.k.group(key)
}

func (n *Node) reverseKey(kind entryKind) string {
	if kind == kindUID {
		return n.k.nodeUIDs(n.id)
	}
	return n.k.nodeGroups(n.id)
}

// present reports whether the local hub holds key now.
func (n *Node) present(kind entryKind, key string) bool {
	if kind == kindUID {
		return n.hub.IsUIDOnline(key)
	}
	return n.hub.GetClientIDCountByGroup(key) > 0
}

// syncEntry writes this node's index entry for key to match the hub.
// While the node is down it only notes that a resync is due.
func (n *Node) syncEntry(ctx context.Context, kind entryKind, key string) {
	if key == "" {
		return
	}
	n.idx.all.RLock()
	defer n.idx.all.RUnlock()
	mu := n.idx.stripe(byte(kind), key)
	mu.Lock()
	defer mu.Unlock()
	n.writeEntryLocked(ctx, kind, key)
}

// writeEntryLocked is syncEntry with the stripe held.
func (n *Node) writeEntryLocked(ctx context.Context, kind entryKind, key string) {
	on := n.present(kind, key)
	m := n.mirror(kind)
	if on == n.idx.has(m, key) {
		return
	}
	c, err := n.usable()
	if err != nil {
		n.idx.needResync.Store(true)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	defer cancel()
	var cmds rueidis.Commands
	if on { // the reverse entry first: a janitor finds what it must remove
		cmds = rueidis.Commands{
			c.B().Sadd().Key(n.reverseKey(kind)).Member(key).Build(),
			c.B().Sadd().Key(n.forwardKey(kind, key)).Member(n.id).Build(),
		}
	} else {
		cmds = rueidis.Commands{
			c.B().Srem().Key(n.forwardKey(kind, key)).Member(n.id).Build(),
			c.B().Srem().Key(n.reverseKey(kind)).Member(key).Build(),
		}
	}
	for _, r := range c.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			n.idx.needResync.Store(true)
			n.log.Debug("index write failed", "key", key, "err", err)
			return
		}
	}
	n.stats.indexWrites.Add(1)
	n.idx.set(m, key, on)
}

// resync rewrites this node's whole index from the hub's state: every
// uid and group it holds is added, every entry Redis has for it and the
// hub does not is removed.
func (n *Node) resync(ctx context.Context, c rueidis.Client) error {
	n.idx.all.Lock()
	defer n.idx.all.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 4*n.cfg.CallTimeout)
	defer cancel()
	for _, kind := range []entryKind{kindUID, kindGroup} {
		var have []string
		if kind == kindUID {
			have = n.hub.GetAllUIDList()
		} else {
			have = n.hub.GetAllGroupIDList()
		}
		old, err := c.Do(ctx, c.B().Smembers().Key(n.reverseKey(kind)).Build()).AsStrSlice()
		if err != nil {
			return err
		}
		haveSet := make(map[string]struct{}, len(have))
		for _, k := range have {
			haveSet[k] = struct{}{}
		}
		var add, del rueidis.Commands
		for chunk := range slices.Chunk(have, 500) {
			add = append(add, c.B().Sadd().Key(n.reverseKey(kind)).Member(chunk...).Build())
		}
		for _, k := range have {
			add = append(add, c.B().Sadd().Key(n.forwardKey(kind, k)).Member(n.id).Build())
		}
		var gone []string
		for _, k := range old {
			if _, ok := haveSet[k]; !ok {
				gone = append(gone, k)
				del = append(del, c.B().Srem().Key(n.forwardKey(kind, k)).Member(n.id).Build())
			}
		}
		for chunk := range slices.Chunk(gone, 500) {
			del = append(del, c.B().Srem().Key(n.reverseKey(kind)).Member(chunk...).Build())
		}
		for _, cmds := range []rueidis.Commands{add, del} {
			for chunk := range slices.Chunk(cmds, 1000) {
				for _, r := range c.DoMulti(ctx, chunk...) {
					if err := r.Error(); err != nil {
						return err
					}
				}
			}
		}
		n.idx.mu.Lock()
		m := n.mirror(kind)
		clear(m)
		for k := range haveSet {
			m[k] = struct{}{}
		}
		n.idx.mu.Unlock()
		n.stats.indexWrites.Add(int64(len(add) + len(del)))
	}
	n.idx.needResync.Store(false)
	n.log.Debug("index resynced")
	return nil
}

// reconcile writes the entries where the hub and the mirror differ:
// changes the node was not told of (a handler or the GatewayWorker inner
// listener called the hub directly, or a client closed).
func (n *Node) reconcile(ctx context.Context, c rueidis.Client) {
	for _, kind := range []entryKind{kindUID, kindGroup} {
		var have []string
		if kind == kindUID {
			have = n.hub.GetAllUIDList()
		} else {
			have = n.hub.GetAllGroupIDList()
		}
		n.idx.mu.Lock()
		m := n.mirror(kind)
		var diff []string
		seen := make(map[string]struct{}, len(have))
		for _, k := range have {
			seen[k] = struct{}{}
			if _, ok := m[k]; !ok {
				diff = append(diff, k)
			}
		}
		for k := range m {
			if _, ok := seen[k]; !ok {
				diff = append(diff, k)
			}
		}
		n.idx.mu.Unlock()
		for _, k := range diff {
			n.syncEntry(ctx, kind, k)
		}
	}
}

// ClientClosed tells the node that a client of its hub has ended, so
// that the index drops the client's uid (and groups) at once if it was
// the last local member. Call it from the Handler's OnClose until the hub
// reports membership changes itself; without it the index catches up at
// the next refresh (NodeTTL/3).
func (n *Node) ClientClosed(c gateway.ClientInfo) {
	if c.UID != "" {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.CallTimeout)
		n.syncEntry(ctx, kindUID, c.UID)
		cancel()
	}
	select {
	case n.dirty <- struct{}{}:
	default:
	}
}

// MembershipChanged tells the node that the hub's membership of uid (or
// of group) may have changed between empty and not empty, by any
// caller: the hook the hub is to call on every bind, unbind, join, leave
// and disconnect. Either argument may be "".
func (n *Node) MembershipChanged(uid, group string) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.CallTimeout)
	defer cancel()
	n.syncEntry(ctx, kindUID, uid)
	n.syncEntry(ctx, kindGroup, group)
}

// janitor removes the index entries of nodes whose key has expired.
func (n *Node) janitor(ctx context.Context, c rueidis.Client) {
	ctx, cancel := context.WithTimeout(ctx, 4*n.cfg.CallTimeout)
	defer cancel()
	ids, err := c.Do(ctx, c.B().Smembers().Key(n.k.nodes()).Build()).AsStrSlice()
	if err != nil {
		return
	}
	slices.Sort(ids)
	cmds := make(rueidis.Commands, len(ids))
	for i, id := range ids {
		cmds[i] = c.B().Exists().Key(n.k.node(id)).Build()
	}
	live := 0
	var dead []string
	for i, r := range c.DoMulti(ctx, cmds...) {
		v, err := r.AsInt64()
		switch {
		case err != nil:
			return
		case v == 1:
			live++
		case ids[i] != n.id:
			dead = append(dead, ids[i])
		}
	}
	n.smu.Lock()
	n.nodes = live
	n.smu.Unlock()
	for _, id := range dead {
		if err := n.removeNode(ctx, c, id); err != nil {
			n.log.Debug("janitor: removing a dead node failed", "dead", id, "err", err)
			return
		}
	}
}

// removeNode removes a dead node's index entries, if no other janitor is
// doing it and the node has not come back.
func (n *Node) removeNode(ctx context.Context, c rueidis.Client, id string) error {
	token := n.id + ":" + strconv.FormatInt(time.Now().UnixNano(), 36)
	r := claimScript.run(ctx, c, scriptRun{
		keys: []string{n.k.node(id), n.k.cleaning(id), n.k.nodeUIDs(id), n.k.nodeGroups(id)},
		args: []string{token, strings64(n.cfg.NodeTTL.Milliseconds())},
	})[0]
	parts, err := r.ToArray()
	if rueidis.IsRedisNil(err) {
		return nil // alive again, or another janitor has it
	}
	if err != nil {
		return err
	}
	if len(parts) != 2 {
		return nil
	}
	uids, _ := parts[0].AsStrSlice()
	groups, _ := parts[1].AsStrSlice()
	var cmds rueidis.Commands
	for _, u := range uids {
		cmds = append(cmds, c.B().Srem().Key(n.k.uid(u)).Member(id).Build())
	}
	for _, g := range groups {
		cmds = append(cmds, c.B().Srem().Key(n.k.group(g)).Member(id).Build())
	}
	for chunk := range slices.Chunk(cmds, 1000) {
		for _, r := range c.DoMulti(ctx, chunk...) {
			if err := r.Error(); err != nil {
				return err
			}
		}
	}
	deleted, err := doneScript.run(ctx, c, scriptRun{
		keys: []string{n.k.cleaning(id), n.k.nodeUIDs(id), n.k.nodeGroups(id)},
		args: []string{token},
	})[0].AsInt64()
	if err != nil {
		return err
	}
	if err := c.Do(ctx, c.B().Srem().Key(n.k.nodes()).Member(id).Build()).Error(); err != nil {
		return err
	}
	if deleted == 0 {
		return nil // another janitor had removed them
	}
	n.stats.janitorRemoved.Add(1)
	n.log.Info("janitor: removed a dead node's entries", "dead", id, "uids", len(uids), "groups", len(groups))
	return nil
}

// leave removes this node's entries and key: a graceful stop.
func (n *Node) leave(ctx context.Context, c rueidis.Client) error {
	n.idx.all.Lock()
	defer n.idx.all.Unlock()
	var cmds rueidis.Commands
	for _, kind := range []entryKind{kindUID, kindGroup} {
		old, err := c.Do(ctx, c.B().Smembers().Key(n.reverseKey(kind)).Build()).AsStrSlice()
		if err != nil {
			return err
		}
		n.idx.mu.Lock()
		for k := range n.mirror(kind) {
			old = append(old, k)
		}
		n.idx.mu.Unlock()
		slices.Sort(old)
		for _, k := range slices.Compact(old) {
			cmds = append(cmds, c.B().Srem().Key(n.forwardKey(kind, k)).Member(n.id).Build())
		}
	}
	cmds = append(cmds,
		c.B().Del().Key(n.k.nodeUIDs(n.id), n.k.nodeGroups(n.id)).Build(),
		c.B().Del().Key(n.k.node(n.id)).Build(),
		c.B().Srem().Key(n.k.nodes()).Member(n.id).Build(),
	)
	for chunk := range slices.Chunk(cmds, 1000) {
		for _, r := range c.DoMulti(ctx, chunk...) {
			if err := r.Error(); err != nil {
				return err
			}
		}
	}
	return nil
}
