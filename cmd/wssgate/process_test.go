package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wssgate/wssgate/cmd/wssgate/internal/server/servertest"
	"github.com/wssgate/wssgate/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if built.Load() {
		if bin, err := buildBinary(); err == nil {
			os.RemoveAll(filepath.Dir(bin))
		}
	}
	os.Exit(code)
}

// built records whether buildBinary ran, so TestMain can clean up.
var built atomic.Bool

// buildBinary builds wssgate once per test run and returns its path.
var buildBinary = sync.OnceValues(func() (string, error) {
	built.Store(true)
	dir, err := os.MkdirTemp("", "wssgate-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "wssgate")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// process is a wssgate binary this test started.
type process struct {
	cmd    *exec.Cmd
	port   string     // the https listener's port
	exited chan error // receives the exit status
	log    *testutil.LockedBuffer
}

// startProcess runs the built binary with the configuration text cfg in
// a fresh HOME (so its local CA is the test's), and waits for the line
// that names its address. The process is killed at cleanup if the test
// has not ended it.
func startProcess(t *testing.T, dir, cfg string) *process {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return startBinary(t, bin, dir, cfg)
}

// startBinary is startProcess with the binary to run.
func startBinary(t *testing.T, bin, dir, cfg string) *process {
	t.Helper()
	return startCmd(t, exec.Command(bin, "run", "-config", servertest.WriteFile(t, dir, "config.yaml", cfg)), dir)
}

// startCmd is startProcess with the command that runs wssgate.
func startCmd(t *testing.T, cmd *exec.Cmd, dir string) *process {
	t.Helper()
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	// Pipes of our own rather than exec's: after an upgrade the new
	// process shares them, so they must stay open (a write to a closed
	// pipe kills a Go program) and Wait must not wait for them to close.
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, stderrW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	p := &process{cmd: cmd, exited: make(chan error, 1), log: &testutil.LockedBuffer{}}
	err = cmd.Start()
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		t.Fatal(err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(io.MultiWriter(testutil.Writer(t), p.log), stderr)
	}()
	done := make(chan struct{})
	go func() {
		p.exited <- cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill() // only the process this test started
			<-done
		}
		stdout.Close()
		stderr.Close() // ends the copy even while a process it started lingers
		<-copied
	})
	// The first line names the address: "wssgate devel serving https://localhost:PORT".
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatalf("no output from wssgate: %v", lines.Err())
	}
	m := regexp.MustCompile(`serving https://localhost:(\d+)`).FindStringSubmatch(lines.Text())
	if m == nil {
		t.Fatalf("first line %q does not name the address", lines.Text())
	}
	p.port = m[1]
	go func() {
		for lines.Scan() {
		}
	}()
	return p
}

// waitExit waits up to d for the process to exit, and checks it
// exited 0; what says when, for messages.
func (p *process) waitExit(t *testing.T, d time.Duration, what string) {
	t.Helper()
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("wssgate exited with %v, want status 0 (%s)", err, what)
		}
	case <-time.After(d):
		t.Fatalf("wssgate still running after %s (%s)", d, what)
	}
}

// echoOnce sends msg on c and checks that it comes back.
func echoOnce(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.ReadMessage(); err != nil || string(got) != msg {
		t.Fatalf("echo: %q, %v; want %q", got, err, msg)
	}
}

// TestProcessSIGTERM runs the real binary: it serves a wss client through
// to a backend, and on SIGTERM sends the client close 1001 and exits 0.
func TestProcessSIGTERM(t *testing.T) {
	backend := testutil.EchoServer(t)
	dir := t.TempDir()
	p := startProcess(t, dir, fmt.Sprintf(`
listen: { https: "127.0.0.1:0", http: "" }
shutdown_timeout: 5s
sites:
  - hosts: [localhost]
    tls: { internal: true }
    routes:
      - { path: /wss, upstreams: ["ws://%s"] }
`, backend.Listener.Addr()))

	rootPEM, err := os.ReadFile(filepath.Join(dir, "config", "wssgate", "internal", "root.crt"))
	if err != nil {
		t.Fatalf("local CA not where the README says: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("wss://localhost:"+p.port+"/wss", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	echoOnce(t, c, "hi")

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("after SIGTERM the client got %v, want close 1001", err)
	}
	p.waitExit(t, 15*time.Second, "SIGTERM")
}

// TestProcessSIGHUP runs the real binary with certificate files: after
// the files are replaced and the process gets SIGHUP, it is still
// running, logs the reload, serves the new certificate to a new
// connection, and the connection opened before keeps working.
func TestProcessSIGHUP(t *testing.T) {
	backend := testutil.EchoServer(t)
	dir := t.TempDir()
	ca := testutil.NewCA(t, "Test Root")
	old := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"localhost"}})
	certFile, keyFile := old.WriteFiles(t, dir)
	p := startProcess(t, dir, fmt.Sprintf(`
listen: { https: "127.0.0.1:0", http: "" }
sites:
  - hosts: [localhost]
    tls: { cert_file: %q, key_file: %q }
    routes:
      - { path: /wss, upstreams: ["ws://%s"] }
`, certFile, keyFile, backend.Listener.Addr()))

	serial := func() string {
		t.Helper()
		tc, err := tls.Dial("tcp", "127.0.0.1:"+p.port, &tls.Config{ServerName: "localhost", RootCAs: ca.Pool()})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer tc.Close()
		return tc.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := serial(); got != old.X509.SerialNumber.String() {
		t.Fatalf("serving serial %s, want the first certificate's", got)
	}
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("wss://localhost:"+p.port+"/wss", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	echoOnce(t, c, "before")

	renewed := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"localhost"}})
	newCert, newKey := renewed.WriteFiles(t, t.TempDir())
	for _, f := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.log.String(), "configuration reloaded") || serial() != renewed.X509.SerialNumber.String() {
		if time.Now().After(deadline) {
			t.Fatalf("no reload 10 s after SIGHUP; log:\n%s", p.log.String())
		}
		select {
		case err := <-p.exited:
			t.Fatalf("wssgate exited on SIGHUP: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	echoOnce(t, c, "after") // the connection opened before is untouched
}
