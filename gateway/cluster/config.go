package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Defaults that [New] fills in for zero fields.
const (
	DefaultPrefix      = "wssgate"
	DefaultNodeTTL     = 15 * time.Second
	DefaultCallTimeout = 3 * time.Second
	// DefaultInboxQueue bounds the requests from other nodes waiting for
	// this node's worker.
	DefaultInboxQueue = 4096
)

// Config configures a [Node]. It mirrors the gateway.cluster block of the
// configuration file; every zero field means its default.
type Config struct {
	// Node is the gateway's node address (gateway.node): the address
	// its client ids carry, which names this node in the cluster. It must
	// be the hub's Options.Node, an IPv4 address with a port, and distinct
	// on every node. Required.
	Node netip.AddrPort
	// Redis says how to reach Redis. Required: at least one address.
	Redis RedisConfig
	// Prefix starts every key and channel, so that two clusters can share
	// one Redis. It must not contain '{' or '}' (they select Redis Cluster
	// slots). Zero means "wssgate".
	Prefix string
	// NodeTTL is how long a node that stops refreshing its key stays in
	// the cluster: a node killed without a graceful leave disappears from
	// every uid and group within NodeTTL (plus one janitor tick, at most
	// a second). Nodes refresh every NodeTTL/3. Zero means 15s; the least
	// is 1s.
	NodeTTL time.Duration
	// Offline keeps messages for uids that are offline on every node. The
	// zero value keeps none.
	Offline OfflineConfig
	// PushStream is a Redis stream from which the nodes apply push calls
	// as one consumer group. "" reads none.
	PushStream string
	// CallTimeout bounds a call that needs Redis or another node: the
	// Redis commands it sends and the replies it waits for. Zero means 3s.
	CallTimeout time.Duration
	// InboxQueue bounds the requests of other nodes (calls on this node's
	// clients, count and list queries) waiting for this node's worker; a
	// request beyond it is dropped and counted, and its caller times out.
	// Zero means 4096.
	InboxQueue int
	// Logger receives state changes at Info and Warn, and per-call
	// detail at Debug. Nil discards them.
	Logger *slog.Logger
}

// RedisConfig says how to reach Redis: one server, a Redis Cluster, or a
// master found through Sentinel.
type RedisConfig struct {
	// Addrs are "host:port" addresses. One address is a single server;
	// several are Redis Cluster seeds; with MasterName they are Sentinels.
	// Required.
	Addrs []string
	// MasterName, when set, asks the Sentinels at Addrs for the master of
	// that name (and follows failovers). "" means no Sentinel.
	MasterName string
	// Username and Password authenticate (AUTH); "" means none. Password
	// is the secret itself: config resolves password_file and password_env
	// before it gets here.
	Username string
	Password string
	// DB is the database SELECTed on a single server or Sentinel master.
	// Redis Cluster has only database 0. Zero means 0.
	DB int
	// TLS, when not nil, connects with TLS. Nil means plain TCP.
	TLS *TLSConfig
}

// TLSConfig configures TLS to Redis.
type TLSConfig struct {
	// CAFile is a PEM file of the roots that Redis's certificate must
	// chain to. "" means the system roots.
	CAFile string
	// ServerName is the name checked in Redis's certificate. "" means the
	// host of each address.
	ServerName string
}

// OfflineConfig configures offline messages: a sendToUid for a uid bound
// on no node is kept, and the next bind of that uid, on any node, gets
// the kept messages first, in order, once.
type OfflineConfig struct {
	// MaxPerUID bounds the messages kept per uid; the oldest go first.
	// Zero turns offline messages off.
	MaxPerUID int
	// TTL is how long a kept message may wait; an older one is dropped.
	// Zero means 24h when MaxPerUID is set.
	TTL time.Duration
}

// Validate reports every problem with c, joined.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("cluster: "+format, args...)) }
	if !c.Node.IsValid() || !c.Node.Addr().Unmap().Is4() {
		add("node %q is not an IPv4 address with a port", c.Node)
	}
	if len(c.Redis.Addrs) == 0 {
		add("redis.addrs is empty")
	}
	for _, a := range c.Redis.Addrs {
		if a == "" || !strings.Contains(a, ":") {
			add("redis address %q is not host:port", a)
		}
	}
	if c.Redis.DB < 0 {
		add("redis.db %d is negative", c.Redis.DB)
	}
	if c.Redis.MasterName == "" && len(c.Redis.Addrs) > 1 && c.Redis.DB != 0 {
		add("redis.db %d with several addrs: Redis Cluster has only db 0", c.Redis.DB)
	}
	if strings.ContainsAny(c.Prefix, "{}") {
		add("prefix %q contains a brace", c.Prefix)
	}
	if c.NodeTTL < 0 || (c.NodeTTL > 0 && c.NodeTTL < time.Second) {
		add("node_ttl %v is below 1s", c.NodeTTL)
	}
	if c.Offline.MaxPerUID < 0 {
		add("offline.max_per_uid %d is negative", c.Offline.MaxPerUID)
	}
	if c.Offline.TTL < 0 {
		add("offline.ttl %v is negative", c.Offline.TTL)
	}
	if strings.ContainsAny(c.PushStream, "{}") {
		add("push_stream %q contains a brace", c.PushStream)
	}
	if c.CallTimeout < 0 {
		add("call timeout %v is negative", c.CallTimeout)
	}
	if c.InboxQueue < 0 {
		add("inbox queue %d is negative", c.InboxQueue)
	}
	if c.Redis.TLS != nil && c.Redis.TLS.CAFile != "" {
		if _, err := os.Stat(c.Redis.TLS.CAFile); err != nil {
			add("redis.tls.ca_file: %v", err)
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero fields set.
func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.NodeTTL == 0 {
		c.NodeTTL = DefaultNodeTTL
	}
	if c.Offline.MaxPerUID > 0 && c.Offline.TTL == 0 {
		c.Offline.TTL = 24 * time.Hour
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.InboxQueue == 0 {
		c.InboxQueue = DefaultInboxQueue
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Redis.Addrs = append([]string(nil), c.Redis.Addrs...)
	return c
}

// clientOption builds the rueidis options of r. Retries are off: a
// command fails at once when its connection breaks, and the node's own
// loop decides what to retry, so that nothing waits unseen.
func (r RedisConfig) clientOption(name string, timeout time.Duration) (rueidis.ClientOption, error) {
	o := rueidis.ClientOption{
		InitAddress:       r.Addrs,
		Username:          r.Username,
		Password:          r.Password,
		SelectDB:          r.DB,
		ClientName:        name,
		DisableCache:      true,
		DisableRetry:      true,
		ConnWriteTimeout:  timeout,
		BlockingPoolSize:  16,
		RingScaleEachConn: 8,
	}
	o.Dialer.Timeout = timeout
	if r.MasterName != "" {
		o.Sentinel = rueidis.SentinelOption{MasterSet: r.MasterName, Username: r.Username, Password: r.Password}
		o.Sentinel.Dialer.Timeout = timeout
	} else if len(r.Addrs) == 1 {
		o.ForceSingleClient = true
	}
	if r.TLS != nil {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: r.TLS.ServerName}
		if r.TLS.CAFile != "" {
			pem, err := os.ReadFile(r.TLS.CAFile)
			if err != nil {
				return o, fmt.Errorf("cluster: redis.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return o, fmt.Errorf("cluster: redis.tls.ca_file %s: no PEM certificate", r.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
		o.TLSConfig = tc
		if r.MasterName != "" {
			o.Sentinel.TLSConfig = tc.Clone()
		}
	}
	return o, nil
}
