package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

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

// TestProcessSIGTERM runs the real binary: it serves a wss client through
// to a backend, and on SIGTERM sends the client close 1001 and exits 0.
func TestProcessSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	backend := echoBackend(t)
	dir := t.TempDir()
	cfgFile := writeFile(t, dir, "config.yaml", fmt.Sprintf(`
listen: { https: "127.0.0.1:0", http: "" }
shutdown_timeout: 5s
sites:
  - hosts: [localhost]
    tls: { internal: true }
    routes:
      - { path: /wss, upstreams: ["ws://%s"] }
`, backend.Listener.Addr()))

	cmd := exec.Command(bin, "run", "-config", cfgFile)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testutil.Writer(t)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // only the process this test started
			<-exited
		}
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
	go func() {
		for lines.Scan() {
		}
	}()

	rootPEM, err := os.ReadFile(filepath.Join(dir, "config", "wssgate", "internal", "root.crt"))
	if err != nil {
		t.Fatalf("local CA not where the README says: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("wss://localhost:"+m[1]+"/wss", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "hi" {
		t.Fatalf("echo: %q, %v", msg, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("after SIGTERM the client got %v, want close 1001", err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("wssgate exited with %v, want status 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("wssgate still running 15 s after SIGTERM")
	}
}
