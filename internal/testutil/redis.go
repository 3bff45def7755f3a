package testutil

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// redisStartWait bounds how long a redis-server may take to answer PING.
const redisStartWait = 10 * time.Second

// Redis is a redis-server (Debian's redis-server package) that a test
// started on a free loopback port, in a temporary directory, with no
// persistence: a restart starts it empty.
type Redis struct {
	// Addr is "127.0.0.1:port".
	Addr string

	t    testing.TB
	bin  string
	dir  string
	args []string // extra arguments after the common ones

	mu   sync.Mutex
	stop func() // nil while stopped
	pid  int
}

// RedisBinary returns the path of redis-server (or of redis-cli, when name
// says so). Without it the test is skipped, but fails when the environment
// has CI=true: CI must install Debian's redis-server package.
func RedisBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testutil: %s not found (CI must install Debian's redis-server package): %v", name, err)
		}
		t.Skipf("testutil: %s not found; install Debian's redis-server package to run this test", name)
	}
	return p
}

// StartRedis starts a redis-server on a free loopback port and waits
// until it answers PING. extra are further command-line arguments
// ("--cluster-enabled", "yes", ...). It is stopped, by its PID, when the
// test ends.
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	r := &Redis{
		Addr: FreeAddr(t),
		t:    t,
		bin:  RedisBinary(t, "redis-server"),
		dir:  t.TempDir(),
		args: extra,
	}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Port returns the port of Addr.
func (r *Redis) Port() int {
	_, p, _ := net.SplitHostPort(r.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// PID returns the process id of the running server, 0 while stopped.
func (r *Redis) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pid
}

// Start starts the server again on the same port after [Redis.Stop]; it
// does nothing while the server runs. It fails the test if the server
// does not answer PING within 10s.
func (r *Redis) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop != nil {
		return
	}
	args := []string{
		"--port", strconv.Itoa(r.Port()), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir,
		"--daemonize", "no", "--logfile", "", "--loglevel", "warning",
		"--protected-mode", "no",
	}
	args = append(args, r.args...)
	cmd := exec.Command(r.bin, args...)
	cmd.Dir = r.dir
	cmd.Stdout, cmd.Stderr = Writer(r.t), Writer(r.t)
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("testutil: start redis-server: %v", err)
	}
	r.stop = stopper(cmd)
	r.pid = cmd.Process.Pid
	deadline := time.Now().Add(redisStartWait)
	for {
		err := redisPing(r.Addr)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.stop()
			r.stop, r.pid = nil, 0
			r.t.Fatalf("testutil: redis-server on %s not answering: %v", r.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the server by its PID (SIGTERM, then SIGKILL after 5s) and
// waits for it. It does nothing while the server is stopped.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop != nil {
		r.stop()
		r.stop, r.pid = nil, 0
	}
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (r *Redis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop != nil {
		syscall.Kill(r.pid, syscall.SIGKILL)
		r.stop()
		r.stop, r.pid = nil, 0
	}
}

// Restart stops the server and starts it again on the same port, empty.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	r.Start()
}

// Do sends one command and returns its reply in a plain form: a simple
// string, an error ("ERR ..."), an integer as decimal text, a bulk
// string, or the elements of an array joined by "\n". It is for setting
// up and inspecting tests, not for the code under test.
func (r *Redis) Do(args ...string) (string, error) {
	return RedisDo(r.Addr, args...)
}

// RedisDo is [Redis.Do] against any address.
func RedisDo(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	return readRESP(bufio.NewReader(c))
}

// readRESP reads one RESP2 reply.
func readRESP(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("testutil: empty RESP line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		parts := make([]string, 0, n)
		for range n {
			s, err := readRESP(br)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("testutil: unexpected RESP line %q", line)
}

func redisPing(addr string) error {
	s, err := RedisDo(addr, "PING")
	if err != nil {
		return err
	}
	if s != "PONG" {
		return fmt.Errorf("PING answered %q", s)
	}
	return nil
}

// RedisCluster is a Redis Cluster of three masters without replicas,
// started on free loopback ports, with every slot assigned.
type RedisCluster struct {
	// Addrs are the masters' "127.0.0.1:port" addresses.
	Addrs []string
	// Nodes are the masters' servers.
	Nodes []*Redis
}

// StartRedisCluster starts three redis-servers with cluster mode on,
// joins them with redis-cli --cluster create and waits until the cluster
// reports cluster_state:ok on every node. They are stopped when the test
// ends. Note that the cluster bus uses each port + 10000, which must be
// free too; a port whose bus port is taken is skipped over.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	cli := RedisBinary(t, "redis-cli")
	c := &RedisCluster{}
	for range 3 {
		dir := t.TempDir()
		r := &Redis{t: t, bin: RedisBinary(t, "redis-server"), dir: dir}
		r.Addr = freeClusterAddr(t)
		r.args = []string{"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "2000"}
		r.Start()
		t.Cleanup(r.Stop)
		c.Nodes = append(c.Nodes, r)
		c.Addrs = append(c.Addrs, r.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("testutil: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(redisStartWait)
	for _, r := range c.Nodes {
		for {
			info, err := r.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("testutil: redis cluster not ok on %s: %v %s", r.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// freeClusterAddr returns a free loopback address whose port + 10000 (the
// cluster bus) is free as well.
func freeClusterAddr(t testing.TB) string {
	t.Helper()
	for range 50 {
		a := FreeAddr(t)
		_, p, _ := net.SplitHostPort(a)
		n, _ := strconv.Atoi(p)
		if n+10000 > 65535 {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(n+10000))
		if err != nil {
			continue
		}
		ln.Close()
		return a
	}
	t.Fatalf("testutil: no free port pair for a cluster node")
	return ""
}
