package server

import (
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"testing"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/tlsconf"
)

func TestRedirect(t *testing.T) {
	tests := []struct {
		httpsAddr, method, target, host string
		wantCode                        int
		wantLoc                         string
	}{
		{"127.0.0.1:443", "GET", "/wss?x=1", "chat.example.com", 301, "https://chat.example.com/wss?x=1"},
		{"127.0.0.1:8443", "GET", "/", "chat.example.com:8080", 301, "https://chat.example.com:8443/"},
		{"127.0.0.1:443", "POST", "/api", "chat.example.com", 308, "https://chat.example.com/api"},
	}
	for _, tt := range tests {
		addr, _ := net.ResolveTCPAddr("tcp", tt.httpsAddr)
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(tt.method, tt.target, nil)
		req.Host = tt.host
		redirectHandler(addr).ServeHTTP(rec, req)
		if rec.Code != tt.wantCode || rec.Header().Get("Location") != tt.wantLoc {
			t.Errorf("%s %s (Host %s) = %d %q, want %d %q", tt.method, tt.target, tt.host, rec.Code, rec.Header().Get("Location"), tt.wantCode, tt.wantLoc)
		}
	}
}

// upgradeTestError is a keyed problem, as tlsconf reports one.
type upgradeTestError struct {
	key string
	err error
}

func (e upgradeTestError) Error() string { return e.key + ": " + e.err.Error() }
func (e upgradeTestError) Path() string  { return e.key }
func (e upgradeTestError) Unwrap() error { return e.err }

// TestUpgradeHint checks that every problem of a refused reload is kept,
// and that those only an upgrade can apply say so.
func TestUpgradeHint(t *testing.T) {
	cfg, err := config.Parse("config.yaml", []byte("sites:\n  - hosts: [a.example]\n    tls: { acme: true }\n    routes: [{ path: /, respond: { body: ok } }]\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = upgradeHint(cfg, errors.Join(
		upgradeTestError{"sites[0].tls.acme", fmt.Errorf("host a.example is new: %w", tlsconf.ErrRestartRequired)},
		upgradeTestError{"sites[0].tls", errors.New("broken")},
	))
	got := config.Errors(err)
	want := []string{
		"config.yaml:3: sites[0].tls.acme: host a.example is new: needs a restart; apply it with wssgate upgrade",
		"config.yaml:3: sites[0].tls: broken",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].Error() != want[i] {
			t.Errorf("problem %d: got %q, want %q", i, got[i], want[i])
		}
	}
}
