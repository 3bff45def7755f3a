package cluster

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/internal/testutil"
)

func TestConfigValidate(t *testing.T) {
	node := netip.MustParseAddrPort("10.0.0.5:2900")
	ok := Config{Node: node, Redis: RedisConfig{Addrs: []string{"127.0.0.1:6379"}}}
	tests := []struct {
		name string
		mod  func(*Config)
		want string // "" for valid
	}{
		{"minimal", func(*Config) {}, ""},
		{"no node", func(c *Config) { c.Node = netip.AddrPort{} }, "node"},
		{"ipv6 node", func(c *Config) { c.Node = netip.MustParseAddrPort("[::1]:2900") }, "IPv4"},
		{"no addrs", func(c *Config) { c.Redis.Addrs = nil }, "redis.addrs is empty"},
		{"bad addr", func(c *Config) { c.Redis.Addrs = []string{"localhost"} }, "not host:port"},
		{"db in cluster", func(c *Config) { c.Redis.Addrs = []string{"a:1", "b:2"}; c.Redis.DB = 2 }, "only db 0"},
		{"db with sentinel", func(c *Config) { c.Redis.Addrs = []string{"a:1", "b:2"}; c.Redis.MasterName = "m"; c.Redis.DB = 2 }, ""},
		{"brace prefix", func(c *Config) { c.Prefix = "a{b" }, "brace"},
		{"short ttl", func(c *Config) { c.NodeTTL = 500 * time.Millisecond }, "below 1s"},
		{"negative offline", func(c *Config) { c.Offline.MaxPerUID = -1 }, "max_per_uid"},
		{"missing ca", func(c *Config) { c.Redis.TLS = &TLSConfig{CAFile: "/nonexistent/ca.pem"} }, "ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.Redis.Addrs = append([]string(nil), ok.Redis.Addrs...)
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error with %q", err, tt.want)
			}
		})
	}
	if _, err := New(nil, ok); err == nil {
		t.Error("New(nil hub) succeeded")
	}
}

func TestClientOption(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "redis test CA")
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		r     RedisConfig
		check func(t *testing.T, o rueidis.ClientOption)
	}{
		{"single", RedisConfig{Addrs: []string{"a:1"}, Username: "u", Password: "p", DB: 3}, func(t *testing.T, o rueidis.ClientOption) {
			if !o.ForceSingleClient || o.Username != "u" || o.Password != "p" || o.SelectDB != 3 || o.TLSConfig != nil {
				t.Errorf("got %+v", o)
			}
		}},
		{"cluster", RedisConfig{Addrs: []string{"a:1", "b:2"}}, func(t *testing.T, o rueidis.ClientOption) {
			if o.ForceSingleClient || o.Sentinel.MasterSet != "" {
				t.Errorf("cluster seeds made a single or sentinel client: %+v", o)
			}
		}},
		{"sentinel tls", RedisConfig{Addrs: []string{"a:1", "b:2"}, MasterName: "mymaster", Password: "p",
			TLS: &TLSConfig{CAFile: caFile, ServerName: "redis.test"}}, func(t *testing.T, o rueidis.ClientOption) {
			if o.Sentinel.MasterSet != "mymaster" || o.Sentinel.Password != "p" {
				t.Errorf("sentinel options %+v", o.Sentinel)
			}
			if o.TLSConfig == nil || o.TLSConfig.ServerName != "redis.test" || o.TLSConfig.RootCAs == nil || o.Sentinel.TLSConfig == nil {
				t.Errorf("TLS config %+v", o.TLSConfig)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := tt.r.clientOption("x", time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if !o.DisableRetry || !o.DisableCache {
				t.Errorf("retries or client cache on: %+v", o)
			}
			tt.check(t, o)
		})
	}
}

// TestStartsWhileRedisDown: a node whose Redis is down at start serves
// its local clients, answers ErrUnavailable for the rest, and joins
// when Redis comes up.
func TestStartsWhileRedisDown(t *testing.T) {
	r := testutil.StartRedis(t)
	r.Stop()
	cfg := testConfig(t, 0, r.Addr)
	h := &closer{Recorder: &gatewaytest.Recorder{}}
	env := gatewaytest.New(t, gateway.Options{Node: cfg.Node, Handler: h, Logger: cfg.Logger})
	env.Events = h.Recorder
	n, err := New(env.Hub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); n.Run(t.Context()) }()
	t.Cleanup(func() {
		n.Shutdown(t.Context())
		<-done
	})
	p, id := env.Connect(t, "websocket")
	waitFor(t, 5*time.Second, "state down", func() bool { return n.Status().State == StateDown })
	if _, err := n.Call(gateway.Call{Method: "sendToClient", ClientID: id, Data: data("local")}); err != nil {
		t.Fatalf("local sendToClient while Redis is down: %v", err)
	}
	expect(t, p, "local")
	_, err = n.Call(gateway.Call{Method: "getAllClientIdCount"})
	if !strings.HasPrefix(errString(err), "cluster unavailable: ") {
		t.Fatalf("count while Redis is down: %v, want cluster unavailable", err)
	}
	r.Start()
	waitFor(t, 5*time.Second, "state up", func() bool { return n.Status().State == StateUp })
	if got, err := n.Call(gateway.Call{Method: "getAllClientIdCount"}); err != nil || got != 1 {
		t.Fatalf("count after Redis came up = %v, %v; want 1", got, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
