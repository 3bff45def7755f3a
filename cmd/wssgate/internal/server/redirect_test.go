package server

import (
	"net"
	"net/http/httptest"
	"testing"
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
