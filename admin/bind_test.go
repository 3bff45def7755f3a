package admin

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckBind(t *testing.T) {
	for _, tc := range []struct {
		addr, token string
		wantErr     error  // nil: accepted
		wantText    string // in the error
	}{
		{addr: "127.0.0.1:9180"},
		{addr: "127.1.2.3:9180"},
		{addr: "[::1]:9180"},
		{addr: "[::ffff:127.0.0.1]:9180"},
		{addr: "localhost:9180"},
		{addr: "LocalHost:9180"},
		{addr: "127.0.0.1:0"},

		{addr: ":9180", wantErr: ErrNeedsToken, wantText: "every interface"},
		{addr: "0.0.0.0:9180", wantErr: ErrNeedsToken, wantText: "every interface"},
		{addr: "[::]:9180", wantErr: ErrNeedsToken, wantText: "every interface"},
		{addr: "192.168.1.10:9180", wantErr: ErrNeedsToken, wantText: "not a loopback address"},
		{addr: "10.0.0.1:9180", wantErr: ErrNeedsToken, wantText: "not a loopback address"},
		{addr: "[2001:db8::1]:9180", wantErr: ErrNeedsToken, wantText: "not a loopback address"},
		{addr: "[fe80::1%eth0]:9180", wantErr: ErrNeedsToken, wantText: "not a loopback address"},
		{addr: "admin.example.com:9180", wantErr: ErrNeedsToken, wantText: "host other than localhost"},
		{addr: "localhost.example.com:9180", wantErr: ErrNeedsToken, wantText: "host other than localhost"},
		{addr: "128.0.0.1:9180", wantErr: ErrNeedsToken, wantText: "not a loopback address"},

		{addr: ":9180", token: "t"},
		{addr: "0.0.0.0:9180", token: "t"},
		{addr: "[::]:9180", token: "t"},
		{addr: "admin.example.com:9180", token: "t"},

		{addr: "9180", wantText: "missing port"},
		{addr: "9180", token: "t", wantText: "missing port"},
		{addr: "", wantText: "missing port"},
	} {
		name := tc.addr
		if tc.token != "" {
			name += " with token"
		}
		t.Run(name, func(t *testing.T) {
			err := CheckBind(tc.addr, tc.token)
			if tc.wantErr == nil && tc.wantText == "" {
				if err != nil {
					t.Errorf("CheckBind(%q, %q) = %v, want nil", tc.addr, tc.token, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckBind(%q, %q) = nil, want an error", tc.addr, tc.token)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("CheckBind(%q, %q) = %v, want it to wrap %v", tc.addr, tc.token, err, tc.wantErr)
			}
			if tc.wantErr == nil && errors.Is(err, ErrNeedsToken) {
				t.Errorf("CheckBind(%q, %q) = %v, want a syntax error, not ErrNeedsToken", tc.addr, tc.token, err)
			}
			if !strings.Contains(err.Error(), tc.wantText) || !strings.HasPrefix(err.Error(), "admin: ") {
				t.Errorf("CheckBind(%q, %q) = %q, want \"admin: ...%s...\"", tc.addr, tc.token, err, tc.wantText)
			}
		})
	}
}
