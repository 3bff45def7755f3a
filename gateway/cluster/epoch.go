package cluster

import (
	"context"
	"fmt"

	"github.com/redis/rueidis"
)

// EpochBits is how many high bits of a client id's 32-bit counter the
// epoch takes in [FirstCounter]: 256 starts of a node before an epoch
// repeats, 2²⁴ connections per start before the counter reaches the next
// epoch's range.
const EpochBits = 8

// Epoch returns this start's epoch for cfg.Node: a counter in Redis
// (INCR <prefix>:epoch:{node}) that every start of the node increments,
// so that client ids made with it differ from those of earlier starts,
// which stale entries (an app's database, a push stream entry) may still
// name. It makes its own short connection, bounded by ctx; call it once
// before the hub is made.
func Epoch(ctx context.Context, cfg Config) (uint64, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	cfg = cfg.withDefaults()
	opt, err := cfg.Redis.clientOption("wssgate-epoch", cfg.CallTimeout)
	if err != nil {
		return 0, err
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return 0, unavailable(err)
	}
	defer c.Close()
	k := keys{p: cfg.Prefix}
	v, err := c.Do(ctx, c.B().Incr().Key(k.epoch(NodeID(cfg.Node))).Build()).AsInt64()
	if err != nil {
		return 0, unavailable(err)
	}
	if v <= 0 {
		return 0, fmt.Errorf("cluster: epoch counter is %d", v)
	}
	return uint64(v), nil
}

// FirstCounter is where a hub's client id counter should start in epoch
// e: e in the top EpochBits bits. Two starts of a node 256 epochs apart
// share a range; a hub that keeps its counter within the range (wrapping
// to its start) never makes an id an earlier start of the last 255 made.
func FirstCounter(e uint64) uint32 {
	return uint32(e%(1<<EpochBits)) << (32 - EpochBits)
}
