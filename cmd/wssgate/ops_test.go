package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wssgate/wssgate/cmd/wssgate/internal/server/servertest"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/internal/testutil"
	"github.com/wssgate/wssgate/status"
)

// Load of TestOperationsUnderLoad: echo clients through the edge, chat
// clients on the gateway, and the rate each sends at.
const (
	opsEchoClients = 300
	opsEchoRate    = 5 // messages per second per echo client
	opsChatClients = 30
	opsChatRate    = 2 // messages per second per chat client
	opsPushEvery   = 100 * time.Millisecond
	opsReloads     = 10
	opsReloadEvery = 400 * time.Millisecond
	opsBadReload   = 7 // the reload whose configuration is invalid
)

// opsConfig is the configuration of TestOperationsUnderLoad at reload
// gen: each generation adds a route /r<gen>, and some change more.
type opsConfig struct {
	dir, https, admin, push, text, echo string
	certFile, keyFile                   string
	gen                                 int
	keepalive                           string
	bad                                 bool
}

func (c opsConfig) String() string {
	var routes strings.Builder
	for i := 1; i <= c.gen; i++ {
		fmt.Fprintf(&routes, "      - { path: /r%d, respond: { body: \"route %d\" } }\n", i, i)
	}
	if c.bad {
		routes.WriteString("      - { path: /broken, upstreams: [\"tcp://127.0.0.1:1\"] }\n")
	}
	return fmt.Sprintf(`listen: { https: %q, http: "" }
admin: { listen: %q }
pid_file: %s
drain_timeout: 60s
shutdown_timeout: 5s
log: { access: false }
limits: { keepalive_timeout: %s }
gateway:
  text_listen: %q
  ping_not_response_limit: 0
  push_api: { listen: %q, secret: ops-secret }
sites:
  - hosts: [localhost]
    tls: { cert_file: %q, key_file: %q }
    routes:
      - { path: /echo, upstreams: ["ws://%s"] }
      - { path: /wss, gateway: true }
%s`, c.https, c.admin, filepath.Join(c.dir, "wssgate.pid"), c.keepalive, c.text, c.push, c.certFile, c.keyFile, c.echo, routes.String())
}

// TestOperationsUnderLoad runs the real binary under load — echo clients
// through the edge, chat clients on the bundled gateway, broadcasts from
// the push API — through ten reloads by `wssgate reload` (one of them
// invalid, which must change nothing and exit 1) and one binary upgrade
// by `wssgate upgrade` to a rebuilt binary. Every message sent must come
// back, in order, with no client error: counted and asserted. After each
// reload a new connection must see the new route, and after the one that
// changes the certificate files, the new certificate; `wssgate status`
// and /metrics are read and checked while the load runs.
func TestOperationsUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary under load")
	}
	dir := t.TempDir()
	bin := copyBinary(t, dir)
	backend := testutil.EchoServer(t)
	ca := testutil.NewCA(t, "Ops Root")
	first := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"localhost"}})
	second := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"localhost"}})
	for _, sub := range []string{"a", "b"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	certA, keyA := first.WriteFiles(t, filepath.Join(dir, "a"))
	certB, keyB := second.WriteFiles(t, filepath.Join(dir, "b"))
	cfg := opsConfig{dir: dir, https: testutil.FreeAddr(t), admin: testutil.FreeAddr(t), push: testutil.FreeAddr(t),
		text: testutil.FreeAddr(t), echo: backend.Listener.Addr().String(), certFile: certA, keyFile: keyA, keepalive: "75s"}
	cfgPath := filepath.Join(dir, "config.yaml")
	p := startBinary(t, bin, dir, cfg.String())
	firstPID := p.cmd.Process.Pid
	tlsConf := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	base := "localhost:" + p.port
	ctl := controller(t, cfgPath)

	// The load.
	var errs errorList
	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	dialer := &websocket.Dialer{TLSClientConfig: tlsConf, HandshakeTimeout: 10 * time.Second}
	echoes := make([]*echoClient, opsEchoClients)
	for i := range echoes {
		echoes[i] = dialEcho(t, dialer, "wss://"+base+"/echo")
	}
	chats := make([]*chatClient, opsChatClients)
	for i := range chats {
		chats[i] = dialChat(t, dialer, "wss://"+base+"/wss")
	}
	for _, c := range chats { // everyone has heard of everyone: no message can predate a listener
		c.waitLogins(t, opsChatClients-1)
	}
	var load sync.WaitGroup
	for _, c := range echoes {
		load.Go(func() { c.run(ctx, &errs) })
	}
	for _, c := range chats {
		load.Go(func() { c.run(ctx, &errs) })
	}
	pushCtx, stopPush := context.WithCancel(ctx)
	var pushes atomic.Int64
	var pusher sync.WaitGroup
	pushAPI := "http://" + cfg.push
	pusher.Go(func() { push(pushCtx, pushAPI, &pushes, &errs) })

	// status and /metrics while the load runs.
	testutil.WaitFor(t, "echo streams counted", func() bool {
		s := adminStatus(t, cfg.admin)
		return routeConns(s, "/echo") == opsEchoClients
	})
	out, code := ctl("status")
	if code != 0 {
		t.Fatalf("wssgate status: exit %d\n%s", code, out)
	}
	checkStatusTable(t, out, firstPID)
	out, code = ctl("status", "-json")
	var js status.Snapshot
	if err := json.Unmarshal([]byte(out), &js); code != 0 || err != nil {
		t.Fatalf("wssgate status -json: exit %d, %v\n%s", code, err, out)
	}
	if js.Process.PID != firstPID || routeConns(js, "/echo") != opsEchoClients || js.Gateway == nil || js.Gateway.Clients != opsChatClients {
		t.Errorf("status -json: pid %d, /echo conns %d, gateway %+v", js.Process.PID, routeConns(js, "/echo"), js.Gateway)
	}
	checkMetrics(t, cfg.admin)

	// Ten reloads, one invalid.
	serial := func() string {
		c, err := tls.Dial("tcp", cfg.https, tlsConf)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	oldText := cfg.text
	for gen := 1; gen <= opsReloads; gen++ {
		time.Sleep(opsReloadEvery) // the load runs between reloads too
		next := cfg
		next.gen = gen
		switch gen {
		case 3: // new certificate files
			next.certFile, next.keyFile = certB, keyB
		case 5: // new limits: the https server is replaced under the load
			next.keepalive = "30s"
		case 6: // the text protocol moves
			next.text = testutil.FreeAddr(t)
		case opsBadReload:
			next.bad = true
		}
		servertest.WriteFile(t, dir, "config.yaml", next.String())
		out, code := ctl("reload")
		if next.bad {
			if code != 1 || !regexp.MustCompile(`config\.yaml:\d+: sites\[0\]\.routes\[\d+\]\.upstreams\[0\]: scheme`).MatchString(out) {
				t.Fatalf("invalid reload: exit %d, output:\n%s\nwant exit 1 naming file, line and key", code, out)
			}
			get(t, tlsConf, base, fmt.Sprintf("/r%d", gen), http.StatusNotFound) // nothing of it applied
			// The server itself refuses it too, when signalled directly.
			if err := syscall.Kill(firstPID, syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, "the server's refusal", func() bool { return adminStatus(t, cfg.admin).Reload.Failed })
			if s := adminStatus(t, cfg.admin); !strings.Contains(strings.Join(s.Reload.Problems, "\n"), "upstreams[0]: scheme") {
				t.Errorf("status shows the refused reload's problems as %q", s.Reload.Problems)
			}
			get(t, tlsConf, base, fmt.Sprintf("/r%d", gen), http.StatusNotFound)
			continue
		}
		if code != 0 {
			t.Fatalf("reload %d: exit %d\n%s", gen, code, out)
		}
		cfg = next
		get(t, tlsConf, base, fmt.Sprintf("/r%d", gen), http.StatusOK) // a new connection sees the new route
		switch gen {
		case 3:
			if got := serial(); got != second.X509.SerialNumber.String() {
				t.Errorf("after reload 3 a new connection got certificate %s, want the new one", got)
			}
		case 6:
			if c, err := net.Dial("tcp", oldText); err == nil {
				c.Close()
				t.Errorf("text protocol still accepting on its old address %s after it moved", oldText)
			}
			tp := gatewaytest.DialText(t, cfg.text)
			if got := tp.Read(); !strings.HasPrefix(got, "Hello ") {
				t.Errorf("text protocol on its new address: %q", got)
			}
			tp.Close()
		}
	}
	if s := adminStatus(t, cfg.admin); s.Reload.Generation != opsReloads-1 || s.Reload.Attempts != opsReloads {
		t.Errorf("status reload block %+v, want %d generations of %d attempts", s.Reload, opsReloads-1, opsReloads)
	}

	// Broadcasts stop before the upgrade: the push API moves to the new
	// process, while these chat clients stay on the old one.
	stopPush()
	pusher.Wait()
	if pushes.Load() == 0 {
		t.Fatalf("no broadcast went through the push API: %v", errs.err())
	}
	for _, c := range chats {
		c.waitPushes(t, pushes.Load())
	}

	// The upgrade, to a rebuilt binary at the same path.
	rebuild(t, bin, "v9.9.9-ops")
	out, code = ctl("upgrade")
	if code != 0 {
		t.Fatalf("wssgate upgrade: exit %d\n%s", code, out)
	}
	var s status.Snapshot
	testutil.WaitFor(t, "the new process on the admin listener", func() bool { // the old one may answer a moment longer
		s = adminStatus(t, cfg.admin)
		return s.Process.PID != firstPID
	})
	if s.Process.Version != "v9.9.9-ops" {
		t.Fatalf("after the upgrade status shows pid %d version %q; want a new pid running v9.9.9-ops", s.Process.PID, s.Process.Version)
	}
	newPID := s.Process.PID
	t.Cleanup(func() { _ = syscall.Kill(newPID, syscall.SIGKILL) }) // only if the test failed before stopping it
	fresh := dialEcho(t, dialer, "wss://"+base+"/echo")
	fresh.roundTrip(t, "to the new process")
	get(t, tlsConf, base, fmt.Sprintf("/r%d", opsReloads), http.StatusOK)
	time.Sleep(2 * time.Second) // the old process serves its clients while it drains

	// The end of the load: every message counted.
	stopLoad()
	load.Wait()
	for _, c := range chats {
		c.waitChats(t, chats)
	}
	var sent, echoed, said int64
	for _, c := range chats {
		said += int64(c.said)
	}
	for _, c := range echoes {
		sent += c.sent
		echoed += c.received
		c.close()
	}
	for _, c := range chats {
		c.close()
	}
	if err := errs.err(); err != nil {
		t.Fatalf("client errors under reloads and upgrade:\n%v", err)
	}
	if sent == 0 || sent != echoed {
		t.Fatalf("echo: %d sent, %d came back", sent, echoed)
	}
	t.Logf("%d echo clients: %d messages, all back in order; %d chat clients: %d lines, each heard by all in order; %d broadcasts, each to all in order",
		opsEchoClients, sent, opsChatClients, said, pushes.Load())

	// The old process leaves once its last connection has.
	p.waitExit(t, 20*time.Second, "the old process, once its last client left")
	out, code = ctl("stop")
	if code != 0 || !strings.Contains(out, strconv.Itoa(newPID)) {
		t.Fatalf("wssgate stop: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "wssgate.pid")); !os.IsNotExist(err) {
		t.Errorf("PID file left after stop: %v", err)
	}
}

// errorList collects client errors from many goroutines.
type errorList struct {
	mu   sync.Mutex
	list []string
}

func (l *errorList) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.list) < 50 {
		l.list = append(l.list, fmt.Sprintf(format, args...))
	}
}

func (l *errorList) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.list) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(l.list, "\n"))
}

// echoClient sends numbered messages at a steady rate and checks that
// each comes back, in order.
type echoClient struct {
	c              *websocket.Conn
	sent, received int64 // owned by run until it returns
}

func dialEcho(t *testing.T, d *websocket.Dialer, url string) *echoClient {
	t.Helper()
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return &echoClient{c: c}
}

func (e *echoClient) roundTrip(t *testing.T, msg string) {
	t.Helper()
	_ = e.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := e.c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	if _, got, err := e.c.ReadMessage(); err != nil || string(got) != msg {
		t.Fatalf("echo: %q, %v; want %q", got, err, msg)
	}
}

// run sends a numbered message every 1/opsEchoRate until ctx ends,
// reading each echo before the next send is due.
func (e *echoClient) run(ctx context.Context, errs *errorList) {
	every(ctx, time.Second/opsEchoRate, func() bool {
		e.sent++
		msg := strconv.FormatInt(e.sent, 10)
		_ = e.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := e.c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			errs.add("echo client: send %s: %v", msg, err)
			return false
		}
		_ = e.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, got, err := e.c.ReadMessage()
		if err != nil {
			errs.add("echo client: waiting for %s: %v", msg, err)
			return false
		}
		if string(got) != msg {
			errs.add("echo client: got %q, want %q", got, msg)
			return false
		}
		e.received++
		return true
	})
}

// every calls step every d until ctx ends or step returns false.
func every(ctx context.Context, d time.Duration, step func() bool) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !step() {
			return
		}
	}
}

func (e *echoClient) close() {
	_ = e.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	e.c.Close()
}

// chatClient is a client of the gateway's chat: it says numbered lines,
// and checks that it hears every client's lines, each client's in order,
// and every push API broadcast, in order.
type chatClient struct {
	c  *websocket.Conn
	id string

	mu      sync.Mutex
	logins  int            // other clients known: from "online" and "login" lines
	heard   map[string]int // sender id → last number heard
	pushes  int64          // last broadcast number heard
	said    int            // lines said; owned by run until it returns
	readErr error
	changed chan struct{}
}

func dialChat(t *testing.T, d *websocket.Dialer, url string) *chatClient {
	t.Helper()
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	cc := &chatClient{c: c, heard: map[string]int{}, changed: make(chan struct{}, 1)}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, hello, err := c.ReadMessage()
	if err != nil || !bytes.HasPrefix(hello, []byte("Hello ")) {
		t.Fatalf("chat greeting %q, %v", hello, err)
	}
	cc.id = string(hello[len("Hello "):])
	_ = c.SetReadDeadline(time.Time{})
	go cc.read()
	return cc
}

// read handles everything the client hears until its connection ends.
func (c *chatClient) read() {
	for {
		_, m, err := c.c.ReadMessage()
		c.mu.Lock()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				c.readErr = err
			}
			c.mu.Unlock()
			c.notify()
			return
		}
		line := string(m)
		switch {
		case strings.HasSuffix(line, " login"):
			c.logins++
		case strings.HasPrefix(line, "online"): // those connected before c
			c.logins += len(strings.Fields(line)) - 1
		case strings.HasPrefix(line, "push "):
			n, _ := strconv.ParseInt(line[len("push "):], 10, 64)
			if n != c.pushes+1 && c.readErr == nil {
				c.readErr = fmt.Errorf("chat client %s: broadcast %d after %d", c.id, n, c.pushes)
			}
			c.pushes = n
		case strings.Contains(line, " said "):
			from, text, _ := strings.Cut(line, " said ")
			n, _ := strconv.Atoi(text)
			if n != c.heard[from]+1 && c.readErr == nil {
				c.readErr = fmt.Errorf("chat client %s: line %d of %s after %d", c.id, n, from, c.heard[from])
			}
			c.heard[from] = n
		}
		c.mu.Unlock()
		c.notify()
	}
}

func (c *chatClient) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until cond (called with c.mu held) holds.
func (c *chatClient) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		ok, err := cond(), c.readErr
		c.mu.Unlock()
		if err != nil {
			t.Fatalf("chat client %s: %v", c.id, err)
		}
		if ok {
			return
		}
		select {
		case <-c.changed:
		case <-deadline:
			t.Fatalf("chat client %s: still waiting for %s after 20 s", c.id, what)
		}
	}
}

func (c *chatClient) waitLogins(t *testing.T, n int) {
	t.Helper()
	c.waitFor(t, fmt.Sprintf("%d logins", n), func() bool { return c.logins >= n })
}

func (c *chatClient) waitPushes(t *testing.T, n int64) {
	t.Helper()
	c.waitFor(t, fmt.Sprintf("broadcast %d", n), func() bool { return c.pushes == n })
}

// waitChats waits until c has heard every line each of all said.
func (c *chatClient) waitChats(t *testing.T, all []*chatClient) {
	t.Helper()
	c.waitFor(t, "every line", func() bool {
		for _, o := range all {
			if c.heard[o.id] != o.said {
				return false
			}
		}
		return true
	})
}

// run says a numbered line at opsChatRate until ctx ends.
func (c *chatClient) run(ctx context.Context, errs *errorList) {
	every(ctx, time.Second/opsChatRate, func() bool {
		_ = c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.c.WriteMessage(websocket.TextMessage, []byte(strconv.Itoa(c.said+1))); err != nil {
			errs.add("chat client %s: say: %v", c.id, err)
			return false
		}
		c.said++
		return true
	})
}

func (c *chatClient) close() {
	_ = c.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.c.Close()
}

// push broadcasts "push <n>" through the push API every opsPushEvery
// until ctx ends, counting in n the broadcasts the API accepted.
func push(ctx context.Context, api string, n *atomic.Int64, errs *errorList) {
	every(ctx, opsPushEvery, func() bool {
		body := fmt.Sprintf(`{"data":"push %d"}`, n.Load()+1)
		req, _ := http.NewRequest("POST", api+"/api/sendToAll", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer ops-secret")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			errs.add("push API: %v", err)
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			errs.add("push API: %s", resp.Status)
			return false
		}
		n.Add(1)
		return true
	})
}

// get fetches path over a new TLS connection and checks the status.
func get(t *testing.T, tc *tls.Config, hostport, path string, want int) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + hostport + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %s, want %d", path, resp.Status, want)
	}
}

// adminStatus reads /status from the admin listener.
func adminStatus(t *testing.T, addr string) status.Snapshot {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + addr + "/status")
	if err != nil {
		t.Fatalf("admin /status: %v", err)
	}
	defer resp.Body.Close()
	var s status.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("admin /status: %v", err)
	}
	return s
}

// routeConns is the open connections of the route with path in s.
func routeConns(s status.Snapshot, path string) int64 {
	for _, r := range s.Routes {
		if r.Path == path {
			return r.Conns
		}
	}
	return -1
}

// checkStatusTable parses the table `wssgate status` printed.
func checkStatusTable(t *testing.T, out string, pid int) {
	t.Helper()
	if !regexp.MustCompile(`(?m)^\s*pid\s+` + strconv.Itoa(pid) + `\s*$`).MatchString(out) {
		t.Errorf("status table does not show pid %d:\n%s", pid, out)
	}
	var route, upstream []string
	for _, row := range tableRows(t, out, "/echo") {
		switch {
		case len(row) > 3 && row[2] == "upstream": // site path kind conns ...
			route = row
		case len(row) > 5 && strings.HasPrefix(row[2], "ws://"): // site route upstream health fails conns ...
			upstream = row
		}
	}
	want := strconv.Itoa(opsEchoClients)
	if route == nil || route[3] != want {
		t.Errorf("status table: route /echo row %q, want %s connections:\n%s", route, want, out)
	}
	if upstream == nil || upstream[3] != "up" || upstream[5] != want {
		t.Errorf("status table: upstream row %q, want up with %s connections:\n%s", upstream, want, out)
	}
	if rows := tableRows(t, out, "ops-secret"); len(rows) != 0 {
		t.Errorf("status shows a secret: %q", rows)
	}
}

// tableRows returns the rows of a status table that have a column equal
// to col, split on runs of two or more spaces.
func tableRows(t *testing.T, out, col string) [][]string {
	t.Helper()
	var rows [][]string
	sep := regexp.MustCompile(`\s{2,}`)
	for _, line := range strings.Split(out, "\n") {
		cols := sep.Split(strings.TrimSpace(line), -1)
		for _, c := range cols {
			if c == col {
				rows = append(rows, cols)
				break
			}
		}
	}
	return rows
}

// checkMetrics scrapes /metrics and checks the connection gauges.
func checkMetrics(t *testing.T, admin string) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^wssgate_route_connections\{[^}]*route="/echo"[^}]*\} ` + strconv.Itoa(opsEchoClients) + `$`),
		regexp.MustCompile(`(?m)^wssgate_gateway_clients\{?[^}]*\}? ` + strconv.Itoa(opsChatClients) + `$`),
		regexp.MustCompile(`(?m)^wssgate_listener_connections\{[^}]*listener="https"[^}]*\} \d+$`),
	} {
		if !want.Match(b) {
			t.Errorf("/metrics has no line matching %s", want)
		}
	}
}

// controller returns a function that runs a control command (status,
// reload, upgrade, stop) with -config cfgPath and returns its output and
// exit code. It runs the built binary, never one a test replaces.
func controller(t *testing.T, cfgPath string) func(args ...string) (string, int) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return func(args ...string) (string, int) {
		t.Helper()
		out, err := exec.Command(bin, append(args, "-config", cfgPath)...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatalf("wssgate %s: %v", args[0], err)
		}
		return string(out), 0
	}
}

// copyBinary copies the built binary into dir, so that the test can
// replace it for an upgrade without touching other tests' binary.
func copyBinary(t *testing.T, dir string) string {
	t.Helper()
	src, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin", "wssgate")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// rebuild builds wssgate with version set and puts it at bin, as a
// deploy would: written beside it, then renamed over it.
func rebuild(t *testing.T, bin, version string) {
	t.Helper()
	tmp := bin + ".new"
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version="+version, "-o", tmp, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
}

// TestProcessUpgradeDrain runs the real binary through a failed upgrade
// (the new binary exits at once: the old process goes on serving and
// `wssgate upgrade` exits 1) and a good one with drain_timeout 1s: the
// client left on the old process keeps working, then gets close 1001;
// the old process exits 0; `wssgate stop`, finding the new process
// through the admin listener alone, stops it.
func TestProcessUpgradeDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	backend := testutil.EchoServer(t)
	dir := t.TempDir()
	bin := copyBinary(t, dir)
	adminAddr := testutil.FreeAddr(t)
	cfgPath := servertest.WriteFile(t, dir, "config.yaml", "") // startBinary writes it
	p := startBinary(t, bin, dir, fmt.Sprintf(`
listen: { https: "127.0.0.1:0", http: "" }
admin: { listen: %q }
drain_timeout: 1s
shutdown_timeout: 5s
sites:
  - hosts: [localhost]
    tls: { internal: true }
    routes:
      - { path: /wss, upstreams: ["ws://%s"] }
`, adminAddr, backend.Listener.Addr()))
	ctl := controller(t, cfgPath)
	roots := processRoots(t, dir)
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: roots}, HandshakeTimeout: 5 * time.Second}
	url := "wss://localhost:" + p.port + "/wss"
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoOnce(t, c, "before")

	// A new binary that cannot start.
	good := bin + ".good"
	if err := os.Rename(bin, good); err != nil {
		t.Fatal(err)
	}
	servertest.WriteFile(t, filepath.Dir(bin), "wssgate", "#!/bin/sh\necho broken build >&2\nexit 3\n")
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, code := ctl("upgrade")
	if code != 1 || !strings.Contains(out, "goes on serving") {
		t.Fatalf("upgrade to a broken binary: exit %d\n%s", code, out)
	}
	if s := adminStatus(t, adminAddr); s.Process.PID != p.cmd.Process.Pid || s.Upgrade.Error == "" {
		t.Fatalf("after a failed upgrade status shows pid %d, upgrade %+v", s.Process.PID, s.Upgrade)
	}
	echoOnce(t, c, "after the failed upgrade")

	// The good binary back, and the upgrade.
	if err := os.Rename(good, bin); err != nil {
		t.Fatal(err)
	}
	out, code = ctl("upgrade")
	if code != 0 {
		t.Fatalf("upgrade: exit %d\n%s", code, out)
	}
	// The old process may answer a moment longer, until it has closed
	// its copy of the admin socket.
	var newPID int
	testutil.WaitFor(t, "the new process on the admin listener", func() bool {
		newPID = adminStatus(t, adminAddr).Process.PID
		return newPID != p.cmd.Process.Pid
	})
	t.Cleanup(func() { _ = syscall.Kill(newPID, syscall.SIGKILL) }) // only if the test failed before stopping it
	echoOnce(t, c, "draining")
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("after drain_timeout the client got %v, want close 1001", err)
	}
	p.waitExit(t, 15*time.Second, "the old process, after drain_timeout")
	fresh, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial the new process: %v", err)
	}
	defer fresh.Close()
	echoOnce(t, fresh, "new process")

	out, code = ctl("stop")
	if code != 0 || !strings.Contains(out, strconv.Itoa(newPID)) {
		t.Fatalf("stop: exit %d\n%s", code, out)
	}
	if err := syscall.Kill(newPID, 0); err == nil {
		t.Errorf("new process %d still running after stop", newPID)
	}
}

// processRoots reads the local CA a process made under dir.
func processRoots(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dir, "config", "wssgate", "internal", "root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return roots
}

// TestProcessSocketActivation passes the real binary a listening socket
// as systemd does (LISTEN_FDS, LISTEN_PID, descriptor 3): wssgate serves
// on it instead of binding the address itself, which the test's own
// descriptor of the socket would make fail.
func TestProcessSocketActivation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	cfgPath := servertest.WriteFile(t, dir, "config.yaml", fmt.Sprintf(`
listen: { https: %q, http: "" }
admin: { listen: "" }
sites:
  - hosts: [localhost]
    tls: { internal: true }
    routes:
      - { path: /, respond: { body: "from a systemd socket" } }
`, ln.Addr()))
	// systemd sets LISTEN_PID between fork and exec; a shell that execs
	// wssgate keeps its PID, so $$ is wssgate's.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=https exec "$0" run -config "$1"`, bin, cfgPath)
	cmd.ExtraFiles = []*os.File{f} // descriptor 3
	p := startCmd(t, cmd, dir)
	f.Close()
	ln.Close() // the process has its own descriptor now

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: processRoots(t, dir)}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://localhost:" + p.port + "/")
	if err != nil {
		t.Fatalf("GET through the passed socket: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "from a systemd socket" {
		t.Errorf("body %q", b)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitExit(t, 15*time.Second, "SIGTERM")
}

// TestProcessUpgradeAfterReloads runs the real binary through reloads
// that drop an address and add it back, move the admin listener and
// change its token, and one refused reload that adds a listener; then an
// upgrade. Every address the configuration has must serve from the new
// process, and the one the refused reload tried to add must not.
func TestProcessUpgradeAfterReloads(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := copyBinary(t, dir)
	https, text, extra := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
	admin1, admin2 := testutil.FreeAddr(t), testutil.FreeAddr(t)
	cfgText := func(text, admin, token, http, minVersion string) string {
		s := fmt.Sprintf(`listen: { https: %q, http: %q }
admin: { listen: %q, token: %q }
tls: { min_version: %q }
pid_file: %s
gateway:
  node: "127.0.0.1:0"
`, https, http, admin, token, minVersion, filepath.Join(dir, "wssgate.pid"))
		if text != "" {
			s += fmt.Sprintf("  text_listen: %q\n", text)
		}
		return s + `sites:
  - hosts: [localhost]
    tls: { internal: true }
    routes:
      - { path: /wss, gateway: true }
`
	}
	p := startBinary(t, bin, dir, cfgText(text, admin1, "t1", "", "1.2"))
	cfgPath := filepath.Join(dir, "config.yaml")
	run := controller(t, cfgPath)
	ctl := func(wantCode int, cfg string, args ...string) string {
		t.Helper()
		servertest.WriteFile(t, dir, "config.yaml", cfg)
		out, code := run(args...)
		if code != wantCode {
			t.Fatalf("wssgate %s: exit %d, want %d\n%s", args[0], code, wantCode, out)
		}
		return string(out)
	}
	refused := func(addr string) bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	}

	ctl(0, cfgText("", admin1, "t1", "", "1.2"), "reload") // drop the text protocol
	if !refused(text) {
		t.Fatal("a dropped address still accepts")
	}
	ctl(0, cfgText(text, admin1, "t1", "", "1.2"), "reload") // and add it back
	ctl(0, cfgText(text, admin2, "t2", "", "1.2"), "reload") // the admin listener moves, with a new token: found by pid_file
	if !refused(admin1) {
		t.Error("the old admin address still accepts")
	}
	out := ctl(1, cfgText(text, admin2, "t2", extra, "1.3"), "reload") // refused: min_version needs an upgrade
	if !strings.Contains(out, "config.yaml:3: tls.min_version: changed") {
		t.Errorf("refused reload says:\n%s", out)
	}
	if !refused(extra) {
		t.Fatal("the refused reload's new address accepts")
	}

	out = ctl(0, cfgText(text, admin2, "t2", "", "1.2"), "upgrade")
	m := regexp.MustCompile(`pid (\d+) serves`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("upgrade output: %s", out)
	}
	newPID, _ := strconv.Atoi(m[1])
	t.Cleanup(func() { _ = syscall.Kill(newPID, syscall.SIGKILL) }) // only if the test failed before stopping it
	p.waitExit(t, 15*time.Second, "the old process, with no connection to drain")
	tp := gatewaytest.DialText(t, text)
	if got := tp.Read(); !strings.HasPrefix(got, "Hello ") {
		t.Errorf("text protocol after the upgrade: %q", got)
	}
	tp.Close()
	if refused(https) || !refused(extra) || !refused(admin1) {
		t.Errorf("after the upgrade: https refused %v, refused reload's address refused %v, old admin refused %v", refused(https), refused(extra), refused(admin1))
	}
	if got := servertest.BearerGet(t, "http://"+admin2+"/healthz", "t2"); got != http.StatusOK {
		t.Errorf("admin after the upgrade: %d", got)
	}
	ctl(0, cfgText(text, admin2, "t2", "", "1.2"), "stop")
}
