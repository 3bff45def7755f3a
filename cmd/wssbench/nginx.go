package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// nginxOff as the -nginx flag skips nginx.
const nginxOff = "off"

// errNoNginx means no nginx binary was found; wssbench then measures
// wssgate alone.
var errNoNginx = errors.New("nginx not found in PATH or /usr/sbin (install Debian's nginx-light, or pass -nginx PATH)")

// findNginx resolves the -nginx flag: a path is used as given, "" is
// looked up in PATH and then /usr/sbin (root's PATH has it, a user's
// often not). It returns errNoNginx when the lookup finds nothing.
func findNginx(flagValue string) (string, error) {
	if flagValue != "" {
		path, err := exec.LookPath(flagValue)
		if err != nil {
			return "", fmt.Errorf("nginx: -nginx %s: %w", flagValue, err)
		}
		return path, nil
	}
	if path, err := exec.LookPath("nginx"); err == nil {
		return path, nil
	}
	if path, err := exec.LookPath("/usr/sbin/nginx"); err == nil {
		return path, nil
	}
	return "", errNoNginx
}

// nginxConf is the nginx equivalent of wssgateConfig: TLS 1.2 and 1.3
// with the same certificate, /wss proxied to the backend with the
// headers the README's nginx block sets, no access log, and every path
// inside the private directory. workers is worker_processes; nofile is
// the descriptor limit each worker may set for itself.
func nginxConf(s proxySetup, port, workers, nofile int, withoutModules string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# written by wssbench
daemon off;
master_process on;
worker_processes %d;
worker_rlimit_nofile %d;
pid %s;
error_log %s warn;

events {
    worker_connections %d;
}

http {
    access_log off;
    client_body_temp_path %s;
    proxy_temp_path %s;
`, workers, nofile, filepath.Join(s.Dir, "nginx.pid"), filepath.Join(s.Dir, "error.log"),
		// An upgraded stream holds a client and an upstream connection,
		// and one worker may end up with all of them.
		2*s.MaxConns+64,
		filepath.Join(s.Dir, "client_body"), filepath.Join(s.Dir, "proxy"))
	// Modules compiled in have temp paths under /var/lib/nginx unless told.
	for _, m := range []string{"fastcgi", "uwsgi", "scgi"} {
		if !strings.Contains(withoutModules, "--without-http_"+m+"_module") {
			fmt.Fprintf(&b, "    %s_temp_path %s;\n", m, filepath.Join(s.Dir, m))
		}
	}
	fmt.Fprintf(&b, `
    server {
        listen 127.0.0.1:%d ssl;
        server_name localhost 127.0.0.1;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_protocols TLSv1.2 TLSv1.3;

        location /wss {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "Upgrade";
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }
    }
}
`, port, s.Certs.CertFile, s.Certs.KeyFile, s.Backend)
	return b.String()
}

// startNginx runs bin in the foreground (master and workers) with the
// configuration of nginxConf on a free port, and waits until the port
// accepts connections.
func startNginx(ctx context.Context, bin string, workers int, s proxySetup) (*proxyProc, error) {
	// nginx -V prints its version and configure arguments on stderr.
	info, _ := exec.CommandContext(ctx, bin, "-V").CombinedOutput()
	version := "?"
	if first, _, _ := strings.Cut(string(info), "\n"); strings.Contains(first, "nginx/") {
		version = first[strings.Index(first, "nginx/"):]
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return nil, fmt.Errorf("nginx: getrlimit: %w", err)
	}
	nofile := min(uint64(2*s.MaxConns+256), rl.Max)
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	conf := filepath.Join(s.Dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(s, port, workers, int(nofile), string(info))), 0o644); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	cmd := exec.Command(bin, "-p", s.Dir, "-c", conf)
	logPath := filepath.Join(s.Dir, "nginx.log")
	c, _, err := startChild(ctx, "nginx", cmd, logPath, nil)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitListening(ctx, c, addr); err != nil {
		_ = c.stop()
		errLog, _ := os.ReadFile(filepath.Join(s.Dir, "error.log"))
		return nil, fmt.Errorf("nginx: %w\n%s", err, strings.TrimSpace(string(errLog)))
	}
	return &proxyProc{
		Name:    "nginx",
		Version: version,
		Setup:   fmt.Sprintf("master + worker_processes %d", workers),
		Addr:    addr,
		Logs:    []string{logPath, filepath.Join(s.Dir, "error.log")},
		proc:    c,
	}, nil
}

// freePort returns a loopback TCP port that was free a moment ago, for
// nginx, which must be told its port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitListening polls addr until it accepts a connection, c exits, ctx
// ends or readyTimeout passes.
func waitListening(ctx context.Context, c *child, addr string) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if c.exited() {
			return fmt.Errorf("exited before it listened on %s (%v)%s", addr, c.waitErr, c.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %v: %w", addr, readyTimeout, err)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
