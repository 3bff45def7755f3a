package cluster

// This file is one concern: the Node's life (connecting to Redis,
// subscribing, refreshing its key, the janitor, leaving) and its state.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/wssgate/wssgate/gateway"
)

// LocalHub is what a Node needs of the hub it makes part of the cluster:
// the gateway API on this node's own clients. *gateway.Hub satisfies it.
type LocalHub interface {
	Call(c gateway.Call) (any, error)
	SendToAll(data []byte, only, exclude []string) int
	SendToClient(clientID string, data []byte) error
	SendToUID(data []byte, uids ...string) int
	SendToGroup(data []byte, groups []string, exclude []string) int
	BindUID(clientID, uid string) (bool, error)
	GetUIDByClientID(clientID string) (string, error)
	IsUIDOnline(uid string) bool
	GetClientIDCountByGroup(group string) int
	GetAllUIDList() []string
	GetAllGroupIDList() []string
}

var _ LocalHub = (*gateway.Hub)(nil)

// State is a node's connection to the cluster.
type State int

const (
	// StateStarting: Run has not reached Redis yet.
	StateStarting State = iota
	// StateUp: Redis answers and the node receives its channels.
	StateUp
	// StateDown: Redis cannot be reached; local clients are served, calls
	// needing other nodes fail with ErrUnavailable, and the node retries.
	StateDown
	// StateClosed: the node has left the cluster.
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateStarting:
		return "starting"
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Status is a node's state, for status output and metrics.
type Status struct {
	Node  string    // this node's id (12 hex digits)
	State State     // up, down, ...
	Since time.Time // when State began
	Err   string    // why the node is down; "" otherwise
	Nodes int       // live nodes seen by the last janitor pass, this one included
}

// Stats are a node's counters since it was created.
type Stats struct {
	Published        int64 // messages published (sends, calls, queries, replies)
	Received         int64 // messages received from other nodes
	SendsReceived    int64 // sends (sendToAll, sendToUid, sendToGroup fan-out) received
	CallsReceived    int64 // calls and queries received and run
	Dropped          int64 // requests dropped: the inbox queue was full, or a message was malformed
	Unavailable      int64 // calls that failed with ErrUnavailable
	IndexWrites      int64 // index updates written to Redis
	JanitorRemoved   int64 // dead nodes whose index entries this node removed
	OfflineStored    int64 // messages this node kept for offline uids
	OfflineDelivered int64 // kept messages this node delivered at a bind
	StreamApplied    int64 // push stream entries applied and acknowledged
	StreamDead       int64 // push stream entries moved to the dead-letter stream
}

type nodeStats struct {
	published, received, sends, calls, dropped, unavailable   atomic.Int64
	indexWrites, janitorRemoved, offlineStored, offlineDelivd atomic.Int64
	streamApplied, streamDead                                 atomic.Int64
}

// Node makes a hub part of a cluster of hubs sharing one Redis. Its
// methods act cluster-wide; see the package documentation for which
// nodes each touches. Create it with [New], run it with [Node.Run], and
// leave the cluster with [Node.Shutdown]. Its methods are safe for
// concurrent use.
type Node struct {
	cfg     Config
	hub     LocalHub
	log     *slog.Logger
	id      string
	k       keys
	opt     rueidis.ClientOption
	tick    time.Duration // janitor and claim period
	refresh time.Duration // node key refresh period

	client  atomic.Pointer[redisClient]
	sharded atomic.Bool // Redis Cluster: sharded pub/sub

	smu    sync.Mutex
	state  State
	since  time.Time
	err    string
	nodes  int
	subOK  map[string]bool // channel → subscribed now
	refOK  bool            // the last refresh succeeded
	upOnce chan struct{}   // closed the first time the node is up

	nextReq atomic.Uint64
	pmu     sync.Mutex
	pending map[uint64]*pending

	inbox chan func(context.Context)
	dirty chan struct{} // a client closed: reconcile the index soon
	kick  chan struct{} // state changed: refresh now

	idx index

	bmu   sync.Mutex
	binds map[string]*bindBuf
	nbind atomic.Int32

	stats nodeStats

	runOnce  sync.Once
	ran      atomic.Bool
	stop     chan struct{} // closed by Shutdown
	stopOnce sync.Once
	done     chan struct{} // closed when Run has returned
	noLeave  atomic.Bool   // tests: end as if killed

	// beforeAck, if set (tests), runs after a push stream entry is
	// applied; false leaves it unacknowledged, as a crash would.
	beforeAck func(id string) bool
	// onPublish, if set (tests), sees every channel published to.
	onPublish func(channel string)
}

// redisClient holds the client so that an atomic.Pointer can carry it.
type redisClient struct{ rueidis.Client }

// New returns a node that joins hub to the cluster cfg names, once Run
// runs. It fails when cfg does not validate or hub is nil; it does not
// contact Redis.
func New(hub LocalHub, cfg Config) (*Node, error) {
	err := cfg.Validate()
	if hub == nil {
		err = errors.Join(errors.New("cluster: hub is nil"), err)
	}
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	id := NodeID(cfg.Node)
	opt, err := cfg.Redis.clientOption("wssgate-"+id, cfg.CallTimeout)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:     cfg,
		hub:     hub,
		log:     cfg.Logger.With("component", "cluster", "node", id),
		id:      id,
		k:       keys{p: cfg.Prefix},
		opt:     opt,
		refresh: cfg.NodeTTL / 3,
		tick:    min(cfg.NodeTTL/4, time.Second),
		state:   StateStarting,
		since:   time.Now(),
		subOK:   make(map[string]bool),
		upOnce:  make(chan struct{}),
		pending: make(map[uint64]*pending),
		inbox:   make(chan func(context.Context), cfg.InboxQueue),
		dirty:   make(chan struct{}, 1),
		kick:    make(chan struct{}, 1),
		binds:   make(map[string]*bindBuf),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	n.idx.init()
	return n, nil
}

// ID returns the node's id: the 12 hex digits its client ids start with.
func (n *Node) ID() string { return n.id }

// Status returns the node's state.
func (n *Node) Status() Status {
	n.smu.Lock()
	defer n.smu.Unlock()
	return Status{Node: n.id, State: n.state, Since: n.since, Err: n.err, Nodes: n.nodes}
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	s := &n.stats
	return Stats{
		Published: s.published.Load(), Received: s.received.Load(), SendsReceived: s.sends.Load(),
		CallsReceived: s.calls.Load(), Dropped: s.dropped.Load(), Unavailable: s.unavailable.Load(),
		IndexWrites: s.indexWrites.Load(), JanitorRemoved: s.janitorRemoved.Load(),
		OfflineStored: s.offlineStored.Load(), OfflineDelivered: s.offlineDelivd.Load(),
		StreamApplied: s.streamApplied.Load(), StreamDead: s.streamDead.Load(),
	}
}

// WaitUp returns nil once the node has been up (joined the cluster) at
// least once, or ctx.Err().
func (n *Node) WaitUp(ctx context.Context) error {
	select {
	case <-n.upOnce:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrClosed
	}
}

// up reports whether calls may use Redis now.
func (n *Node) up() bool {
	n.smu.Lock()
	defer n.smu.Unlock()
	return n.state == StateUp
}

// usable returns the client when the node is up, else ErrUnavailable.
func (n *Node) usable() (rueidis.Client, error) {
	n.smu.Lock()
	st, why := n.state, n.err
	n.smu.Unlock()
	c := n.client.Load()
	switch {
	case st == StateUp && c != nil:
		return c.Client, nil
	case st == StateClosed:
		return nil, ErrClosed
	case why != "":
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, why)
	default:
		return nil, fmt.Errorf("%w: not connected to redis", ErrUnavailable)
	}
}

// setSub records whether channel is subscribed, and updates the state.
func (n *Node) setSub(channel string, ok bool, err error) {
	n.smu.Lock()
	n.subOK[channel] = ok
	n.updateLocked(err)
	n.smu.Unlock()
}

// setRefresh records the last refresh's outcome, and updates the state.
func (n *Node) setRefresh(err error) {
	n.smu.Lock()
	n.refOK = err == nil
	n.updateLocked(err)
	n.smu.Unlock()
}

// updateLocked moves to up when the last refresh worked and every channel
// is subscribed, to down otherwise; it logs each change once.
func (n *Node) updateLocked(err error) {
	if n.state == StateClosed {
		return
	}
	want := StateUp
	if !n.refOK || len(n.subOK) < n.channelCount() {
		want = StateDown
	}
	for _, ok := range n.subOK {
		if !ok {
			want = StateDown
		}
	}
	if want == StateDown && err == nil && n.state == StateStarting {
		return // still starting: subscriptions not all confirmed yet
	}
	if want == StateDown && err != nil {
		n.err = err.Error()
	}
	if want == n.state {
		return
	}
	prev := n.state
	n.state, n.since = want, time.Now()
	switch want {
	case StateUp:
		n.err = ""
		n.idx.needResync.Store(true)
		n.log.Info("cluster up", "redis", n.cfg.Redis.Addrs, "was", prev.String())
		select {
		case <-n.upOnce:
		default:
			close(n.upOnce)
		}
	case StateDown:
		if n.err == "" {
			n.err = "redis connection lost"
		}
		n.idx.needResync.Store(true)
		n.log.Warn("cluster down: serving local clients only", "redis", n.cfg.Redis.Addrs, "err", n.err)
		// Replies to calls in flight may never come: fail them now.
		n.pmu.Lock()
		for id, p := range n.pending {
			delete(n.pending, id)
			p.fail(fmt.Errorf("%w: %s", ErrUnavailable, n.err))
		}
		n.pmu.Unlock()
	}
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// channelCount is how many channels a node subscribes to: the
// cluster's and its own inbox.
func (n *Node) channelCount() int { return 2 }

// Run joins the cluster and keeps the node in it until ctx is done or
// [Node.Shutdown] is called: it connects to Redis (retrying while it is
// down), subscribes to the node's channels, refreshes the node's key,
// removes dead nodes' entries, keeps the index of this node's uids and
// groups, and applies the push stream. Then it leaves the cluster and
// returns nil. Run may be called once.
func (n *Node) Run(ctx context.Context) error {
	first := false
	n.runOnce.Do(func() { first = true })
	if !first {
		return errors.New("cluster: Run called twice")
	}
	n.ran.Store(true)
	defer close(n.done)
	ctx, cancel := context.WithCancel(ctx)
	var watch sync.WaitGroup
	defer watch.Wait()
	defer cancel()
	watch.Go(func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	})

	c, err := n.connect(ctx)
	if err != nil {
		n.close(nil)
		return nil
	}
	n.client.Store(&redisClient{c})
	n.sharded.Store(c.Mode() == rueidis.ClientModeCluster)
	n.log.Info("cluster starting", "redis", n.cfg.Redis.Addrs, "mode", string(c.Mode()), "prefix", n.cfg.Prefix)

	var wg sync.WaitGroup
	if n.sharded.Load() {
		wg.Go(func() { n.subscribe(ctx, c, n.k.all()) })
		wg.Go(func() { n.subscribe(ctx, c, n.k.inbox(n.id)) })
	} else {
		wg.Go(func() { n.subscribe(ctx, c, n.k.all(), n.k.inbox(n.id)) })
	}
	wg.Go(func() { n.work(ctx) })
	if n.cfg.PushStream != "" {
		wg.Go(func() { n.consume(ctx) })
	}
	n.loop(ctx, c)
	wg.Wait()
	n.close(c)
	return nil
}

// connect makes the Redis client, retrying until ctx is done. rueidis
// dials when the client is made, so a Redis that is down at start is
// waited for here, while the hub serves its clients.
func (n *Node) connect(ctx context.Context) (rueidis.Client, error) {
	wait := 100 * time.Millisecond
	for {
		c, err := rueidis.NewClient(n.opt)
		if err == nil {
			return c, nil
		}
		n.setRefresh(err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// subscribe receives channels until ctx is done, resubscribing after a
// lost connection.
func (n *Node) subscribe(ctx context.Context, c rueidis.Client, channels ...string) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		var cmd rueidis.Completed
		if n.sharded.Load() {
			cmd = c.B().Ssubscribe().Channel(channels...).Build()
		} else {
			cmd = c.B().Subscribe().Channel(channels...).Build()
		}
		hctx := rueidis.WithOnSubscriptionHook(ctx, func(s rueidis.PubSubSubscription) {
			switch s.Kind {
			case "subscribe", "ssubscribe":
				n.setSub(s.Channel, true, nil)
				wait = 100 * time.Millisecond
			}
		})
		err := c.Receive(hctx, cmd, n.onMessage)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("unsubscribed")
		}
		for _, ch := range channels {
			n.setSub(ch, false, fmt.Errorf("subscription lost: %w", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// loop refreshes the node key, runs the janitor and reconciles the index
// until ctx is done.
func (n *Node) loop(ctx context.Context, c rueidis.Client) {
	t := time.NewTicker(n.tick)
	defer t.Stop()
	var lastRefresh time.Time
	n.refreshOnce(ctx, c)
	lastRefresh = time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		case <-t.C:
		case <-n.dirty:
			if n.up() {
				n.reconcile(ctx, c)
			}
			continue
		}
		if time.Since(lastRefresh) >= n.refresh || !n.up() {
			n.refreshOnce(ctx, c)
			lastRefresh = time.Now()
		}
		if n.up() {
			n.janitor(ctx, c)
		}
	}
}

// refreshOnce refreshes the node key, then resyncs or reconciles the
// index.
func (n *Node) refreshOnce(ctx context.Context, c rueidis.Client) {
	existed, cleaning, err := n.refreshKey(ctx, c)
	n.setRefresh(err)
	if err != nil {
		return
	}
	if !existed || cleaning {
		n.idx.needResync.Store(true)
	}
	if !n.up() {
		return
	}
	if n.idx.needResync.Load() && !cleaning {
		if err := n.resync(ctx, c); err != nil {
			n.log.Debug("index resync failed", "err", err)
		}
		return
	}
	n.reconcile(ctx, c)
}

// Shutdown leaves the cluster gracefully: Run stops, removes this node's
// index entries and key at once, and returns. Shutdown waits for that or
// for ctx. It is idempotent; shut the hub down first, so that no client
// is left that the cluster no longer routes to.
func (n *Node) Shutdown(ctx context.Context) error {
	n.stopOnce.Do(func() { close(n.stop) })
	if !n.ran.Load() {
		first := false
		n.runOnce.Do(func() { first = true })
		if first {
			n.ran.Store(true)
			n.close(nil)
			close(n.done)
		}
	}
	select {
	case <-n.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close leaves the cluster (unless killed), closes c and fails the calls
// still waiting.
func (n *Node) close(c rueidis.Client) {
	if c != nil {
		if !n.noLeave.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.CallTimeout)
			if err := n.leave(ctx, c); err != nil {
				n.log.Warn("leaving the cluster failed; the janitors remove this node's entries after node_ttl", "err", err)
			}
			cancel()
		}
		c.Close()
	}
	n.smu.Lock()
	n.state, n.since = StateClosed, time.Now()
	n.smu.Unlock()
	n.pmu.Lock()
	for id, p := range n.pending {
		delete(n.pending, id)
		p.fail(ErrClosed)
	}
	n.pmu.Unlock()
	n.log.Info("cluster left")
}

// kill ends the node as a crash would, for tests: no leave.
func (n *Node) kill() {
	n.noLeave.Store(true)
	n.stopOnce.Do(func() { close(n.stop) })
	<-n.done
}
