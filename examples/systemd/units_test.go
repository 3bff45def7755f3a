// Package systemd_test checks the unit files of examples/systemd: that
// systemd-analyze verify accepts them with a real wssgate binary, and that
// they carry the directives the README relies on.
package systemd_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wssgate/wssgate/config"
)

// binPath is where the units expect the binary.
const binPath = "/usr/local/bin/wssgate"

// unitFiles are the files systemd reads, by their path in this directory,
// which is also their path under /etc/systemd/system.
func unitFiles() []string {
	return []string{"wssgate.service", "wssgate.socket", "wssgate.service.d/socket-activation.conf"}
}

// read returns the text of a file in this directory.
func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// systemdAnalyze returns the path of systemd-analyze. Without it the test
// is skipped, except in CI (CI=true), where it fails.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		const msg = "systemd-analyze not found (Debian: apt-get install systemd); the unit files are not verified"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// buildWssgate builds cmd/wssgate into a temporary directory.
func buildWssgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wssgate")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/wssgate/wssgate/cmd/wssgate").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// installUnits copies the unit files into a new directory, with the
// binary's path replaced by bin, and returns the directory. edit, if not
// nil, may change each file's text.
func installUnits(t *testing.T, bin string, edit func(name, text string) string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range unitFiles() {
		text := strings.ReplaceAll(read(t, name), binPath, bin)
		if edit != nil {
			text = edit(name, text)
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// verify runs systemd-analyze verify on the units in dir (the drop-in is
// read from dir/wssgate.service.d) and returns the problems it reported
// about them. Lines about other units (the system's targets) are logged.
func verify(t *testing.T, analyze, dir, bin string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, analyze, "verify",
		filepath.Join(dir, "wssgate.service"), filepath.Join(dir, "wssgate.socket"))
	cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=")
	out, err := cmd.CombinedOutput()
	var problems []string
	if err != nil {
		problems = append(problems, "systemd-analyze verify: "+err.Error())
	}
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.Contains(line, dir), strings.Contains(line, bin), strings.Contains(line, "wssgate"):
			problems = append(problems, line)
		default:
			t.Logf("systemd-analyze, not about these units: %s", line)
		}
	}
	return problems
}

func TestVerify(t *testing.T) {
	analyze := systemdAnalyze(t)
	bin := buildWssgate(t)

	t.Run("units", func(t *testing.T) {
		dir := installUnits(t, bin, nil)
		for _, p := range verify(t, analyze, dir, bin) {
			t.Error(p)
		}
	})

	// The check must see a mistake: an unknown key, which systemd only
	// warns about, in the drop-in.
	t.Run("a mistake is reported", func(t *testing.T) {
		dir := installUnits(t, bin, func(name, text string) string {
			if strings.HasSuffix(name, ".conf") {
				text += "AmbientCapabilitys=\n"
			}
			return text
		})
		if problems := verify(t, analyze, dir, bin); len(problems) == 0 {
			t.Error("systemd-analyze verify reported nothing for an unknown key in the drop-in")
		}
	})
}

// directives maps "Section.Key" to every value assigned, in order, as
// systemd reads a unit file (an empty assignment is kept as "").
type directives map[string][]string

// parseUnit reads the assignments of a unit file. It follows systemd's
// syntax: [Section] headers, # and ; comments, Key=Value, and lines
// continued with a trailing backslash.
func parseUnit(t *testing.T, text string) directives {
	t.Helper()
	d := directives{}
	section := ""
	var cont strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cont.Len() == 0 && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			cont.WriteString(rest + " ")
			continue
		}
		cont.WriteString(line)
		line = cont.String()
		cont.Reset()
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("line %d: %q is neither a [Section] nor a Key=Value in a section", n, line)
		}
		k := section + "." + strings.TrimSpace(key)
		d[k] = append(d[k], strings.TrimSpace(value))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}

// last returns the value in effect for a single-valued key and whether
// the key is set at all.
func (d directives) last(key string) (string, bool) {
	v := d[key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

func TestDirectives(t *testing.T) {
	units := map[string]directives{}
	for _, name := range unitFiles() {
		units[name] = parseUnit(t, read(t, name))
	}
	const (
		service = "wssgate.service"
		socket  = "wssgate.socket"
		dropIn  = "wssgate.service.d/socket-activation.conf"
	)
	tests := []struct {
		file, key, want string
	}{
		{service, "Service.Type", "notify"},
		{service, "Service.NotifyAccess", "all"},
		{service, "Service.ExecStart", binPath + " run -config /etc/wssgate/config.yaml"},
		{service, "Service.ExecReload", binPath + " reload -config /etc/wssgate/config.yaml"},
		{service, "Service.Restart", "on-failure"},
		{service, "Service.DynamicUser", "yes"},
		{service, "Service.StateDirectory", "wssgate"},
		{service, "Service.RuntimeDirectory", "wssgate"},
		{service, "Service.LogsDirectory", "wssgate"},
		{service, "Service.ConfigurationDirectory", "wssgate"},
		{service, "Service.LimitNOFILE", "1048576"},
		{service, "Service.AmbientCapabilities", "CAP_NET_BIND_SERVICE"},
		{service, "Service.CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"},
		{service, "Service.NoNewPrivileges", "yes"},
		{service, "Service.ProtectSystem", "strict"},
		{service, "Service.ProtectHome", "yes"},
		{service, "Service.PrivateTmp", "yes"},
		{service, "Service.PrivateDevices", "yes"},
		{service, "Service.ProtectKernelTunables", "yes"},
		{service, "Service.ProtectKernelModules", "yes"},
		{service, "Service.ProtectControlGroups", "yes"},
		{service, "Service.RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{service, "Service.LockPersonality", "yes"},
		{service, "Service.MemoryDenyWriteExecute", "yes"},
		{service, "Service.SystemCallArchitectures", "native"},
		{service, "Install.WantedBy", "multi-user.target"},
		{socket, "Socket.BindIPv6Only", "both"},
		{socket, "Install.WantedBy", "sockets.target"},
		{dropIn, "Unit.Requires", "wssgate.socket"},
		{dropIn, "Unit.After", "wssgate.socket"},
		// Empty assignments clear the service's capabilities.
		{dropIn, "Service.AmbientCapabilities", ""},
		{dropIn, "Service.CapabilityBoundingSet", ""},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.key, func(t *testing.T) {
			got, ok := units[tt.file].last(tt.key)
			if !ok {
				t.Fatalf("%s: %s is not set, want %q", tt.file, tt.key, tt.want)
			}
			if got != tt.want {
				t.Errorf("%s: %s=%s, want %q", tt.file, tt.key, got, tt.want)
			}
		})
	}

	// An old process draining after an upgrade must get SIGTERM on stop
	// too: KillMode stays control-group.
	t.Run("KillMode", func(t *testing.T) {
		if got, ok := units[service].last("Service.KillMode"); ok && got != "control-group" {
			t.Errorf("KillMode=%s, want control-group (the default)", got)
		}
	})

	// A stop waits shutdown_timeout for closing handshakes before exiting;
	// systemd must not SIGKILL first.
	t.Run("TimeoutStopSec", func(t *testing.T) {
		v, ok := units[service].last("Service.TimeoutStopSec")
		if !ok {
			t.Fatal("TimeoutStopSec is not set")
		}
		got, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("TimeoutStopSec=%s: write it as a Go duration such as 30s: %v", v, err)
		}
		if def := config.Default().ShutdownTimeout; got <= def {
			t.Errorf("TimeoutStopSec=%s, want more than the default shutdown_timeout %s", v, def)
		}
	})

	// The README pairs ListenStream=443 with listen.https: ":443", the
	// default, and the same for :80.
	t.Run("ListenStream", func(t *testing.T) {
		got := strings.Join(units[socket]["Socket.ListenStream"], " ")
		if want := "443 80"; got != want {
			t.Errorf("ListenStream: %s, want %s", got, want)
		}
		def := config.Default().Listen
		if def.HTTPS != ":443" || def.HTTP != ":80" {
			t.Errorf("default listen.https %q and listen.http %q no longer match the socket's :443 and :80", def.HTTPS, def.HTTP)
		}
	})
}

func TestLogrotate(t *testing.T) {
	text := read(t, "logrotate")
	var lines []string // without comments
	for line := range strings.Lines(text) {
		if line = strings.TrimSpace(line); line != "" && line[0] != '#' {
			lines = append(lines, line)
		}
	}
	has := func(prefix string) bool {
		for _, l := range lines {
			if l == prefix || strings.HasPrefix(l, prefix+" ") {
				return true
			}
		}
		return false
	}
	tests := []struct {
		name  string
		match string
		want  bool
	}{
		{"rotates the log directory", "/var/log/wssgate/*.log {", true},
		{"creates a new file", "create", true},
		{"never copies and truncates", "copytruncate", false},
		{"one postrotate for all files", "sharedscripts", true},
		{"runs a postrotate script", "postrotate", true},
		{"signals wssgate's main process with USR1", "systemctl kill -s USR1 --kill-who=main wssgate.service", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := has(tt.match); got != tt.want {
				t.Errorf("a line %q: got %v, want %v", tt.match, got, tt.want)
			}
		})
	}
}
