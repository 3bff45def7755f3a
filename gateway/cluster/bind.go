package cluster

import (
	"context"
)

// maxBindBuffer bounds the messages held for a uid while its offline
// messages are delivered; beyond it they are delivered at once.
const maxBindBuffer = 1024

// bindBuf holds the messages for a uid that arrive while a bind of it
// delivers the uid's offline messages, so that those come first.
type bindBuf struct {
	refs int
	msgs [][]byte
}

// bind binds clientID to uid on this node's hub and writes the index.
// With offline messages on, it takes the messages kept for uid in the
// step that marks the uid online here, and queues them to the client
// before any message sent to the uid after that step.
func (n *Node) bind(ctx context.Context, clientID, uid string) (any, error) {
	old, err := n.hub.GetUIDByClientID(clientID)
	if err != nil {
		return nil, err
	}
	if n.cfg.Offline.MaxPerUID <= 0 {
		changed, err := n.hub.BindUID(clientID, uid)
		if changed {
			n.syncEntry(ctx, kindUID, uid)
			n.syncEntry(ctx, kindUID, old)
		}
		return changed, err
	}
	n.beginBind(uid)
	defer n.endBind(uid)
	changed, err := n.hub.BindUID(clientID, uid)
	if err != nil || !changed {
		return changed, err
	}
	n.syncEntry(ctx, kindUID, old)
	for _, m := range n.takeOffline(ctx, uid) {
		if n.hub.SendToClient(clientID, m) == nil {
			n.stats.offlineDelivd.Add(1)
		}
	}
	return true, nil
}

// takeOffline marks uid online on this node and returns the messages
// kept for it, in order. While Redis is down it returns none; the
// resync marks the uid, and the next bind gets them.
func (n *Node) takeOffline(ctx context.Context, uid string) [][]byte {
	n.idx.all.RLock()
	defer n.idx.all.RUnlock()
	mu := n.idx.stripe(byte(kindUID), uid)
	mu.Lock()
	defer mu.Unlock()
	c, err := n.usable()
	if err != nil {
		n.idx.needResync.Store(true)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	defer cancel()
	if err := c.Do(ctx, c.B().Sadd().Key(n.reverseKey(kindUID)).Member(uid).Build()).Error(); err != nil {
		n.idx.needResync.Store(true)
		return nil
	}
	msgs, err := bindScript.run(ctx, c, scriptRun{
		keys: []string{n.k.uid(uid), n.k.offline(uid)},
		args: []string{n.id},
	})[0].AsStrSlice()
	if err != nil {
		n.idx.needResync.Store(true)
		n.log.Debug("bind: index write failed", "uid", uid, "err", err)
		return nil
	}
	n.stats.indexWrites.Add(1)
	n.idx.set(n.idx.uids, uid, true)
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = []byte(m)
	}
	return out
}

func (n *Node) beginBind(uid string) {
	n.bmu.Lock()
	defer n.bmu.Unlock()
	b := n.binds[uid]
	if b == nil {
		b = &bindBuf{}
		n.binds[uid] = b
	}
	b.refs++
	n.nbind.Add(1)
}

// endBind delivers what was held for uid, unless another bind of it
// still runs.
func (n *Node) endBind(uid string) {
	n.bmu.Lock()
	defer n.bmu.Unlock()
	b := n.binds[uid]
	b.refs--
	n.nbind.Add(-1)
	if b.refs > 0 {
		return
	}
	delete(n.binds, uid)
	// Delivered under bmu, so that a message arriving now waits for
	// these in buffer() and is not queued before them.
	for _, m := range b.msgs {
		n.hub.SendToUID(m, uid)
	}
}

// buffer holds data for uid if a bind of it is delivering offline
// messages, and reports whether it did.
func (n *Node) buffer(uid string, data []byte) bool {
	n.bmu.Lock()
	defer n.bmu.Unlock()
	b := n.binds[uid]
	if b == nil || len(b.msgs) >= maxBindBuffer {
		return false
	}
	b.msgs = append(b.msgs, data)
	return true
}
