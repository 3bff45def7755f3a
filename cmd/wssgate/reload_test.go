package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/wssgate/wssgate/cmd/wssgate/internal/server"
	"github.com/wssgate/wssgate/cmd/wssgate/internal/server/servertest"
	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/testutil"
)

// TestReloadSIGHUPAndLogReopen drives a server through its signal
// channel: SIGHUP reloads, SIGUSR1 reopens the access log file after it
// was moved away, as logrotate does.
func TestReloadSIGHUPAndLogReopen(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	cfgText := func(body string) string {
		return fmt.Sprintf(`listen: { https: "127.0.0.1:0", http: "" }
admin: { listen: "" }
log: { access_file: %q }
sites:
  - hosts: [localhost]
    tls: { internal: true }
    routes:
      - { path: /, respond: { body: %q } }
`, logPath, body)
	}
	path := servertest.WriteFile(t, dir, "config.yaml", cfgText("one"))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	access, closeAccess, err := openAccessLog(cfg.Log, testutil.Logger(t), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAccess()
	sig := make(chan os.Signal, 1)
	srv := servertest.Serve(t, cfg, server.Options{Signals: sig, ReopenLogs: access.reopen, AccessLog: access.logger,
		Load: func() (*config.Config, error) { return config.Load(path) }})
	client := srv.Client()
	url := srv.URL("/")

	servertest.Body(t, client, url+"before")
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	sig <- syscall.SIGUSR1
	testutil.WaitFor(t, "a new access log file", func() bool { _, err := os.Stat(logPath); return err == nil })
	servertest.Body(t, client, url+"after")
	testutil.WaitFor(t, "the access line in the new file", func() bool {
		b, _ := os.ReadFile(logPath)
		return bytes.Contains(b, []byte("after"))
	})
	if old, _ := os.ReadFile(logPath + ".1"); !bytes.Contains(old, []byte("before")) || bytes.Contains(old, []byte("after")) {
		t.Errorf("rotated file holds:\n%s", old)
	}

	servertest.WriteFile(t, dir, "config.yaml", cfgText("two"))
	sig <- syscall.SIGHUP
	testutil.WaitFor(t, "the reloaded response", func() bool { return servertest.Body(t, client, url) == "two" })
}

// TestValidateAdminNeedsToken checks that a public admin address without
// a token is refused with file, line and key.
func TestValidateAdminNeedsToken(t *testing.T) {
	path := servertest.WriteFile(t, t.TempDir(), "config.yaml", `admin: { listen: "0.0.0.0:9180" }
sites:
  - hosts: [localhost]
    tls: { internal: true }
    routes: [{ path: /, respond: { body: ok } }]
`)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"validate", "-config", path}, &stdout, &stderr)
	if code != exitFail || !strings.Contains(stderr.String(), "config.yaml:1: admin.listen: 0.0.0.0:9180 is not a loopback address") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
}
