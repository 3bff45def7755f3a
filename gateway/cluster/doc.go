// Package cluster makes several wssgate nodes sharing one Redis act as
// one gateway hub. A [Node] wraps the node's own *gateway.Hub (through
// the [LocalHub] interface it declares) and runs every gateway API call
// cluster-wide; cmd plugs it in where the push API, webhooks and the
// handlers call the hub.
//
// # Data model
//
// Every key and channel starts with Config.Prefix (P below). Braces are
// Redis Cluster hash tags.
//
//	P:node:{N}            liveness of node N: SET with PX node_ttl, refreshed every node_ttl/3
//	P:nodes               set of every node id that joined: the janitor's list
//	P:node:{N}:uids       uids node N holds (reverse index, for removing a dead node)
//	P:node:{N}:groups     groups node N holds
//	P:node:{N}:cleaning   a janitor's claim while it removes dead node N's entries
//	P:uid:{U}             set of node ids holding a client bound to uid U
//	P:offline:{U}         list of messages kept for uid U (deadline ':' message)
//	P:group:{G}           set of node ids holding a member of group G
//	P:epoch:{N}           INCR'd at every start of node N (see [Epoch])
//	P:all                 channel: sendToAll, and count/list queries
//	P:inbox:{N}           channel of node N: sends, calls and replies for it
//
// A node writes its index entries only when its hub's membership of a
// uid or group changes between empty and not empty, so the index costs
// nothing per message and one write pair per first-bind or last-unbind.
//
// # Which calls touch which nodes
//
//   - sendToClient, closeClient, destroyClient, setSession, updateSession,
//     getSession, joinGroup, leaveGroup, bindUid, unbindUid, isOnline and
//     getUidByClientId run on the node the client id names (its first 12
//     hex digits): one publish to that node's inbox and one reply.
//   - sendToUid and sendToGroup read the index (one EVALSHA per uid, one
//     SMEMBERS per group) and publish once per node that holds a member,
//     never once per client. This node's clients get it directly.
//   - sendToAll is one PUBLISH on P:all (with client_ids: one per node).
//   - Counts and lists (getAllClientIdCount, getAllUidList,
//     getClientIdListByGroup, getAllClientSessions, ungroup, ...) are
//     scatter-gather: one publish on P:all, each other node replies with
//     its part, the caller merges. The publish's subscriber count says how
//     many replies to wait for. Keeping membership in Redis instead would
//     cost a write per connect, bind and join, and Redis memory per idle
//     client; queries are rare, so they pay instead.
//   - isUidOnline reads P:uid:{U}.
//
// Messages from one node to another go through the target's one inbox
// channel, so their order is kept; on a single Redis (or Sentinel) the
// P:all channel shares the subscriber connection, so order is kept
// between sendToAll and the rest too. In Redis Cluster the node uses
// sharded pub/sub (SPUBLISH, SSUBSCRIBE), and the two channels may live
// on different shards.
//
// # Failures
//
// A node that stops refreshing (killed) loses its key after node_ttl;
// every node runs a janitor each min(node_ttl/4, 1s) that removes a dead
// node's index entries. A node that leaves gracefully ([Node.Shutdown])
// removes its own at once. Scatter-gather skips a dead node at once: it
// is no longer subscribed.
//
// When Redis is down, local clients are served and local delivery goes
// on; calls that need another node fail at once with [ErrUnavailable].
// The node logs one line per state change, reconnects by itself, and
// rewrites its index entries when it is back (Redis may have lost them).
// Nothing is queued meanwhile: pub/sub messages sent while a node is
// disconnected are lost, as with any pub/sub.
//
// # Wiring, and what the hub still lacks
//
// Until the hub has the hooks below, the index catches changes made on
// the hub directly (by a Handler, the chat handler or the GatewayWorker
// inner listener) at the next refresh (NodeTTL/3), and a Handler's
// OnClose should call [Node.ClientClosed]. Calls made through the Node
// keep the index exact at once.
//
//   - A membership hook: the hub calls a function after any change, by
//     any caller, that can make a uid or group go between no local member
//     and some (BindUID for the new and the old uid, UnbindUID, JoinGroup,
//     LeaveGroup, Ungroup, and a client's unregistering for its uid and
//     each of its groups), outside its lock, on the caller's goroutine:
//     [Node.MembershipChanged] is that function.
//   - A per-start epoch in client ids: an exported first counter
//     (Options.firstCounter today) set from [FirstCounter]([Epoch](...)),
//     and a counter that wraps within its epoch's range.
//   - The push API, webhooks, the chat handler and the inner listener
//     calling an interface (Call(gateway.Call) (any, error) and the typed
//     sends) instead of *gateway.Hub, so that cmd can pass the Node; and
//     ErrUnavailable mapped to 503 (best as a gateway sentinel that this
//     package wraps, so that pushapi need not import it).
package cluster
