package cluster

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// script is a Lua script run with EVALSHA, falling back to EVAL when
// Redis does not know it yet (after a restart).
type script struct{ src, sha string }

func newScript(src string) *script {
	h := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(h[:])}
}

type scriptRun struct{ keys, args []string }

// run runs s once per r, pipelined, and returns the results in order.
func (s *script) run(ctx context.Context, c rueidis.Client, runs ...scriptRun) []rueidis.RedisResult {
	cmds := make(rueidis.Commands, len(runs))
	for i, r := range runs {
		cmds[i] = c.B().Evalsha().Sha1(s.sha).Numkeys(int64(len(r.keys))).Key(r.keys...).Arg(r.args...).Build()
	}
	res := c.DoMulti(ctx, cmds...)
	var again []int
	for i, r := range res {
		if e, ok := rueidis.IsRedisErr(r.Error()); ok && e.IsNoScript() {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		cmds = cmds[:0]
		for _, i := range again {
			r := runs[i]
			cmds = append(cmds, c.B().Eval().Script(s.src).Numkeys(int64(len(r.keys))).Key(r.keys...).Arg(r.args...).Build())
		}
		for j, r := range c.DoMulti(ctx, cmds...) {
			res[again[j]] = r
		}
	}
	return res
}

// refreshScript sets the node key with its TTL and reports whether it
// existed before (false: first start, or the node was taken for dead)
// and whether a janitor is removing the node's entries.
var refreshScript = newScript(`
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {existed, redis.call('EXISTS', KEYS[2])}
`)

// pushOffline is the Lua that keeps ARGV[4] for a uid: an entry is the
// message's deadline (Redis time, ms), ':' and the message.
const pushOffline = `
local function keep(key, max, ttl, msg)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('RPUSH', key, (now + tonumber(ttl)) .. ':' .. msg)
  redis.call('LTRIM', key, -tonumber(max), -1)
  redis.call('PEXPIRE', key, ttl)
end
`

// routeScript returns {stored, nodes}: the nodes holding uid KEYS[1]
// and, when there are none and ARGV[1] is "1", keeps ARGV[4] in the
// offline list KEYS[2] (ARGV[2] messages at most, ARGV[3] ms).
var routeScript = newScript(pushOffline + `
local nodes = redis.call('SMEMBERS', KEYS[1])
if #nodes > 0 or ARGV[1] ~= '1' then return {0, nodes} end
keep(KEYS[2], ARGV[2], ARGV[3], ARGV[4])
return {1, nodes}
`)

// goneScript removes node ARGV[1] from uid KEYS[1] (it holds no client of
// it), and when no node is left and ARGV[2] is "1" keeps the message
// ARGV[5] that reached nobody. It returns 1 when it kept it.
var goneScript = newScript(pushOffline + `
redis.call('SREM', KEYS[1], ARGV[1])
if ARGV[2] ~= '1' or redis.call('SCARD', KEYS[1]) > 0 then return 0 end
keep(KEYS[2], ARGV[3], ARGV[4], ARGV[5])
return 1
`)

// bindScript adds node ARGV[1] to uid KEYS[1] and takes the messages kept
// for it (KEYS[2]), dropping those past their deadline: in one step, so
// that a message is either taken here or sent to the node.
var bindScript = newScript(`
redis.call('SADD', KEYS[1], ARGV[1])
local msgs = redis.call('LRANGE', KEYS[2], 0, -1)
if #msgs == 0 then return {} end
redis.call('DEL', KEYS[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, m in ipairs(msgs) do
  local i = string.find(m, ':', 1, true)
  if i and tonumber(string.sub(m, 1, i - 1)) > now then
    out[#out + 1] = string.sub(m, i + 1)
  end
end
return out
`)

// claimScript lets one janitor remove a dead node's entries: when the
// node key KEYS[1] is gone and nobody holds KEYS[2], it takes KEYS[2]
// with token ARGV[1] for ARGV[2] ms and returns the node's uids and
// groups (KEYS[3], KEYS[4]). Otherwise it returns nil.
var claimScript = newScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return {redis.call('SMEMBERS', KEYS[3]), redis.call('SMEMBERS', KEYS[4])}
`)

// doneScript ends a janitor's removal: it deletes the node's reverse sets
// and the claim, if the claim is still the janitor's, and returns how
// many reverse sets it deleted (0: another janitor had been first).
var doneScript = newScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return redis.call('DEL', KEYS[2], KEYS[3])
`)

// refreshKey runs refreshScript and adds the node to the node set.
func (n *Node) refreshKey(ctx context.Context, c rueidis.Client) (existed, cleaning bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	defer cancel()
	val := fmt.Sprintf(`{"node":%q,"at":%d}`, n.cfg.Node.String(), time.Now().UnixMilli())
	r := refreshScript.run(ctx, c, scriptRun{
		keys: []string{n.k.node(n.id), n.k.cleaning(n.id)},
		args: []string{val, strconv.FormatInt(n.cfg.NodeTTL.Milliseconds(), 10)},
	})[0]
	v, err := r.AsIntSlice()
	if err != nil {
		return false, false, err
	}
	if len(v) != 2 {
		return false, false, errors.New("cluster: refresh: unexpected reply")
	}
	if err := c.Do(ctx, c.B().Sadd().Key(n.k.nodes()).Member(n.id).Build()).Error(); err != nil {
		return false, false, err
	}
	return v[0] == 1, v[1] == 1, nil
}

// publish sends msg on channel and returns how many subscribers got it.
func (n *Node) publish(ctx context.Context, c rueidis.Client, channel string, e *envelope) (int64, error) {
	msg, err := e.encode()
	if err != nil {
		return 0, err
	}
	var cmd rueidis.Completed
	if n.sharded.Load() {
		cmd = c.B().Spublish().Channel(channel).Message(msg).Build()
	} else {
		cmd = c.B().Publish().Channel(channel).Message(msg).Build()
	}
	if n.onPublish != nil {
		n.onPublish(channel)
	}
	got, err := c.Do(ctx, cmd).AsInt64()
	if err != nil {
		return 0, unavailable(err)
	}
	n.stats.published.Add(1)
	return got, nil
}

// strings64 formats n in decimal.
func strings64(v int64) string { return strconv.FormatInt(v, 10) }
