package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// wssgatePackage is what buildWssgate compiles; it resolves from any
// directory inside the wssgate module.
const wssgatePackage = "github.com/wssgate/wssgate/cmd/wssgate"

// proxySetup is what both proxies are configured with.
type proxySetup struct {
	Dir      string // private directory for config, logs and state
	Backend  string // the echo backend, host:port
	Certs    *certs
	MaxConns int // WebSocket streams the proxy must accept at once
}

// proxyProc is a proxy under test that is serving.
type proxyProc struct {
	Name    string   // "wssgate" or "nginx"
	Version string   // as the binary reports it
	Setup   string   // how it was run, for the report ("GOMAXPROCS 2")
	Addr    string   // 127.0.0.1:port where it serves wss://localhost/wss
	Logs    []string // files the proxy writes its warnings and errors to
	proc    *child
}

// buildWssgate compiles wssgate into dir with "go build". It works when
// the current directory is inside the wssgate module.
func buildWssgate(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "wssgate")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, wssgatePackage)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("wssgate: go build %s (run from inside the wssgate module, or pass -wssgate PATH): %w\n%s",
			wssgatePackage, err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// wssgateConfig is the configuration wssbench gives wssgate: the https
// listener on a port the kernel picks, no plain listener, no access log,
// and /wss routed to the backend.
func wssgateConfig(s proxySetup) string {
	return fmt.Sprintf(`# written by wssbench
listen: { https: "127.0.0.1:0", http: "" }
shutdown_timeout: 2s
limits: { max_connections: %d }
log: { level: warn, access: false }
sites:
  - hosts: ["localhost", "127.0.0.1"]
    tls: { cert_file: %q, key_file: %q }
    routes:
      - path: /wss
        upstreams: ["ws://%s"]
`, s.MaxConns, s.Certs.CertFile, s.Certs.KeyFile, s.Backend)
}

// servingLine matches wssgate's first line on stdout,
// "wssgate devel serving https://localhost:PORT".
var servingLine = regexp.MustCompile(`serving https://[^/\s]+:(\d+)`)

// startWssgate runs bin with the configuration of wssgateConfig and
// waits until it announces its address.
func startWssgate(ctx context.Context, bin string, s proxySetup) (*proxyProc, error) {
	cfgPath := filepath.Join(s.Dir, "wssgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(wssgateConfig(s)), 0o644); err != nil {
		return nil, fmt.Errorf("wssgate: %w", err)
	}
	version := "?"
	if out, err := exec.CommandContext(ctx, bin, "version").Output(); err == nil {
		version = strings.TrimSpace(string(out))
	}
	cmd := exec.Command(bin, "run", "-config", cfgPath)
	logPath := filepath.Join(s.Dir, "wssgate.log")
	c, lines, err := startChild(ctx, "wssgate", cmd, logPath, firstLine)
	if err != nil {
		return nil, err
	}
	line := lines[0]
	m := servingLine.FindStringSubmatch(line)
	if m == nil {
		_ = c.stop()
		return nil, fmt.Errorf("wssgate: first line %q does not name the address", line)
	}
	return &proxyProc{
		Name:    "wssgate",
		Version: version,
		Setup:   "1 process, " + gomaxprocs(),
		Addr:    "127.0.0.1:" + m[1],
		Logs:    []string{logPath},
		proc:    c,
	}, nil
}

// gomaxprocs describes the GOMAXPROCS wssgate runs with: the inherited
// environment's setting, or the runtime's default of one per CPU.
func gomaxprocs() string {
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		return "GOMAXPROCS=" + v
	}
	return fmt.Sprintf("GOMAXPROCS %d (default)", runtime.NumCPU())
}
