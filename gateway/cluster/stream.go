package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/wssgate/wssgate/gateway"
)

// Push stream: the nodes are one consumer group (named by the prefix) on
// Config.PushStream, each consumer named by its node id. An entry's field
// "call" is one push call as JSON, the push API's body plus "method". An
// entry is acknowledged after it is applied; one that cannot be applied
// for good (malformed, unknown method, missing argument) goes to
// "<stream>:dead" with the error, then is acknowledged. One that fails
// because the cluster is unavailable stays pending: after NodeTTL idle
// any node claims it (XAUTOCLAIM) and applies it, which is also how a
// dead node's entries are taken over.

const (
	streamBatch = 100
	streamBlock = time.Second
	deadMaxLen  = 10000
)

func (n *Node) group() string { return n.cfg.Prefix }

func (n *Node) deadStream() string { return n.cfg.PushStream + ":dead" }

// consume applies the push stream until ctx is done.
func (n *Node) consume(ctx context.Context) {
	created := false
	lastClaim := time.Time{}
	for ctx.Err() == nil {
		c, err := n.usable()
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(n.tick):
			}
			continue
		}
		if !created {
			if err := n.createGroup(ctx, c); err != nil {
				n.log.Debug("push stream: creating the group failed", "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(n.tick):
				}
				continue
			}
			created = true
		}
		if time.Since(lastClaim) >= n.tick {
			lastClaim = time.Now()
			if err := n.claim(ctx, c); err != nil && ctx.Err() == nil {
				n.log.Debug("push stream: claim failed", "err", err)
			}
		}
		entries, err := n.readNew(ctx, c)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if isNoGroup(err) {
				created = false
			}
			n.log.Debug("push stream: read failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(n.tick):
			}
			continue
		}
		n.applyEntries(ctx, c, entries)
	}
}

func isNoGroup(err error) bool {
	e, ok := rueidis.IsRedisErr(err)
	return ok && len(e.Error()) >= 7 && e.Error()[:7] == "NOGROUP"
}

// createGroup creates the consumer group, starting with entries added
// from now on ($), and the stream if it does not exist.
func (n *Node) createGroup(ctx context.Context, c rueidis.Client) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	defer cancel()
	err := c.Do(ctx, c.B().XgroupCreate().Key(n.cfg.PushStream).Group(n.group()).Id("$").Mkstream().Build()).Error()
	if e, ok := rueidis.IsRedisErr(err); ok && len(e.Error()) >= 9 && e.Error()[:9] == "BUSYGROUP" {
		return nil
	}
	return err
}

// readNew reads entries no consumer has had, blocking up to a second.
func (n *Node) readNew(ctx context.Context, c rueidis.Client) ([]rueidis.XRangeEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, streamBlock+n.cfg.CallTimeout)
	defer cancel()
	cmd := c.B().Xreadgroup().Group(n.group(), n.id).Count(streamBatch).Block(streamBlock.Milliseconds()).
		Streams().Key(n.cfg.PushStream).Id(">").Build()
	res, err := c.Do(ctx, cmd).AsXRead()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return res[n.cfg.PushStream], nil
}

// claim takes the entries that have waited NodeTTL unacknowledged (their
// consumer died, or the cluster was unavailable) and applies them.
func (n *Node) claim(ctx context.Context, c rueidis.Client) error {
	start := "0-0"
	for range 100 { // bounded: 100 batches per claim
		cctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
		cmd := c.B().Xautoclaim().Key(n.cfg.PushStream).Group(n.group()).Consumer(n.id).
			MinIdleTime(strconv.FormatInt(n.cfg.NodeTTL.Milliseconds(), 10)).Start(start).Count(streamBatch).Build()
		parts, err := c.Do(cctx, cmd).ToArray()
		cancel()
		if err != nil {
			return err
		}
		if len(parts) < 2 {
			return errors.New("cluster: XAUTOCLAIM: unexpected reply")
		}
		next, _ := parts[0].ToString()
		entries, err := parts[1].AsXRange()
		if err != nil {
			return err
		}
		if len(entries) > 0 {
			n.log.Info("push stream: claimed entries idle for node_ttl", "count", len(entries))
		}
		if !n.applyEntries(ctx, c, entries) {
			return nil
		}
		if next == "0-0" || next == "" {
			return nil
		}
		start = next
	}
	return nil
}

// applyEntries applies entries in order and acknowledges each applied
// one. It stops at the first that fails for want of the cluster, which
// stays pending, and reports whether it got through them all.
func (n *Node) applyEntries(ctx context.Context, c rueidis.Client, entries []rueidis.XRangeEntry) bool {
	for _, e := range entries {
		if e.FieldValues == nil { // deleted from the stream while pending
			n.ack(ctx, c, e.ID)
			continue
		}
		raw, ok := e.FieldValues["call"]
		var err error
		var call gateway.Call
		if !ok {
			err = errors.New(`no field "call"`)
		} else {
			call, err = decodeCall([]byte(raw))
		}
		if err == nil {
			_, err = n.CallContext(ctx, call)
		}
		switch {
		case err == nil, errors.Is(err, gateway.ErrClientNotFound):
			if err != nil {
				n.log.Debug("push stream: call for a client that is gone", "id", e.ID, "err", err)
			}
		case errors.Is(err, ErrUnavailable), errors.Is(err, ErrClosed), ctx.Err() != nil:
			n.log.Debug("push stream: entry left pending", "id", e.ID, "err", err)
			return false
		default:
			if !n.deadLetter(ctx, c, e, raw, err) {
				return false
			}
			n.stats.streamDead.Add(1)
			n.log.Info("push stream: entry moved to the dead-letter stream", "id", e.ID, "dead", n.deadStream(), "err", err)
		}
		if n.beforeAck != nil && !n.beforeAck(e.ID) {
			return false
		}
		if !n.ack(ctx, c, e.ID) {
			return false
		}
		if err == nil {
			n.stats.streamApplied.Add(1)
		}
	}
	return true
}

func (n *Node) ack(ctx context.Context, c rueidis.Client, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	defer cancel()
	err := c.Do(ctx, c.B().Xack().Key(n.cfg.PushStream).Group(n.group()).Id(id).Build()).Error()
	if err != nil {
		n.log.Debug("push stream: ack failed", "id", id, "err", err)
	}
	return err == nil
}

func (n *Node) deadLetter(ctx context.Context, c rueidis.Client, e rueidis.XRangeEntry, raw string, cause error) bool {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	defer cancel()
	cmd := c.B().Xadd().Key(n.deadStream()).Maxlen().Almost().Threshold(strconv.Itoa(deadMaxLen)).Id("*").
		FieldValue().FieldValue("call", raw).FieldValue("error", cause.Error()).FieldValue("id", e.ID).
		FieldValue("node", n.id).Build()
	if err := c.Do(ctx, cmd).Error(); err != nil {
		n.log.Debug("push stream: dead-lettering failed", "id", e.ID, "err", err)
		return false
	}
	return true
}

// decodeCall decodes one push call strictly, as the push API does:
// unknown fields and trailing data are errors, and method must be one
// the hub knows.
func decodeCall(b []byte) (gateway.Call, error) {
	var c gateway.Call
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%w: bad JSON: %v", gateway.ErrBadCall, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return c, fmt.Errorf("%w: bad JSON: data after the object", gateway.ErrBadCall)
	}
	if c.Method == "" {
		return c, fmt.Errorf("%w: method is required", gateway.ErrBadCall)
	}
	if !slices.Contains(gateway.Methods(), c.Method) {
		return c, fmt.Errorf("%w: unknown method %q", gateway.ErrBadCall, c.Method)
	}
	return c, nil
}
