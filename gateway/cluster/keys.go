package cluster

import (
	"encoding/hex"
	"net/netip"

	"github.com/wssgate/wssgate/gateway"
)

// keys names every key and channel of one cluster (one prefix). The
// parts in braces are Redis Cluster hash tags: a uid's index entry and
// its offline list share a slot, and so do a node's keys, so that the
// scripts that touch them together run on one shard.
type keys struct{ p string }

// nodes is a set of every node id that joined: the janitor's list.
func (k keys) nodes() string { return k.p + ":nodes" }

// node is a node's liveness key, refreshed with a TTL.
func (k keys) node(id string) string { return k.p + ":node:{" + id + "}" }

// nodeUIDs and nodeGroups are the uids and groups a node holds: the
// reverse of the index, so that a dead node's entries can be removed.
func (k keys) nodeUIDs(id string) string   { return k.p + ":node:{" + id + "}:uids" }
func (k keys) nodeGroups(id string) string { return k.p + ":node:{" + id + "}:groups" }

// cleaning is held by the janitor that removes a dead node's entries.
func (k keys) cleaning(id string) string { return k.p + ":node:{" + id + "}:cleaning" }

// epoch counts a node's starts.
func (k keys) epoch(id string) string { return k.p + ":epoch:{" + id + "}" }

// uid is the set of node ids holding a client bound to uid.
func (k keys) uid(uid string) string { return k.p + ":uid:{" + uid + "}" }

// offline is the list of messages kept for uid.
func (k keys) offline(uid string) string { return k.p + ":offline:{" + uid + "}" }

// group is the set of node ids holding a member of group.
func (k keys) group(g string) string { return k.p + ":group:{" + g + "}" }

// all is the channel every node subscribes to: sendToAll and queries.
func (k keys) all() string { return k.p + ":all" }

// inbox is a node's own channel: sends, calls and replies for it.
func (k keys) inbox(id string) string { return k.p + ":inbox:{" + id + "}" }

// NodeID returns the id by which the cluster names a node: the first 12
// hex digits of every client id the node makes (its IPv4 address and
// port).
func NodeID(node netip.AddrPort) string {
	a := node.Addr().Unmap().As4()
	p := node.Port()
	return hex.EncodeToString([]byte{a[0], a[1], a[2], a[3], byte(p >> 8), byte(p)})
}

// nodeOf returns the id of the node that holds clientID, or false for a
// malformed id.
func nodeOf(clientID string) (string, bool) {
	if _, _, err := gateway.ParseClientID(clientID); err != nil {
		return "", false
	}
	return clientID[:12], true
}
