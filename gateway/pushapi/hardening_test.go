package pushapi

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/wssgate/wssgate/internal/testutil"
)

// TestInputNotEchoedWhole sends an authenticated call with a 100 KB
// client id: the 404 names it cut to 64 bytes, and so does the log.
func TestInputNotEchoedWhole(t *testing.T) {
	var logs testutil.LockedBuffer
	e := start(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	id := strings.Repeat("7", 100_000)
	req, _ := http.NewRequest("POST", e.apiURL+"/api/sendToClient", strings.NewReader(`{"client_id":"`+id+`","data":"x"}`))
	req.Header.Set("Authorization", "Bearer "+testSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || len(body) > 300 || !bytes.Contains(body, []byte(strings.Repeat("7", 64)+"…")) {
		t.Errorf("got %d with a %d-byte body %.120q; want 404 naming the id cut to 64 bytes", resp.StatusCode, len(body), body)
	}
	if l := logs.String(); strings.Contains(l, strings.Repeat("7", 65)) {
		t.Errorf("the log repeats more than 64 bytes of the id: %.300q", l)
	}
}

// TestWrongTokenLoggedOnce sends many wrong tokens from one source: they
// are all counted and refused, and logged in one line.
func TestWrongTokenLoggedOnce(t *testing.T) {
	var logs testutil.LockedBuffer
	e := start(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 5 { // within the free failures: no slowdown
		req, _ := http.NewRequest("POST", e.apiURL+"/api/getAllClientIdCount", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer wrong")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("got %d, want 401", resp.StatusCode)
		}
	}
	if n := strings.Count(logs.String(), "authentication failed"); n != 1 {
		t.Errorf("%d log lines for 5 failures from one source, want 1:\n%s", n, logs.String())
	}
	if got := e.api.Stats().Unauthorized; got != 5 {
		t.Errorf("Unauthorized = %d, want 5", got)
	}
}
