package pushapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wssgate/wssgate/gateway"
)

// FuzzHandler posts arbitrary bodies to arbitrary methods: the push API
// answers every one with JSON and a status, and never panics.
func FuzzHandler(f *testing.F) {
	for _, c := range []struct{ method, body string }{
		{"sendToAll", `{"data":"hi"}`},
		{"batch", `{"calls":[{"method":"sendToUid","uid":"42","data":{"x":1}},{"method":"nope"}]}`},
		{"getSession", `{"client_id":"7f00000100000000000a"}`},
		{"setSession", `{"client_id":"x","session":{"a":{"b":[1,2]}}}`},
		{"joinGroup", `{"client_id":1,"group":2}`},
		{"sendToAll", `{"data":"x"} trailing`},
		{"x", ``},
	} {
		f.Add(c.method, []byte(c.body))
	}
	hub := gateway.New(gateway.Options{Logger: slog.New(slog.DiscardHandler)})
	api, err := New(hub, Options{Secret: testSecret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method string, body []byte) {
		req, err := http.NewRequest(http.MethodPost, "/api/"+method, bytes.NewReader(body))
		if err != nil {
			return // not a valid path
		}
		req.Header.Set("Authorization", "Bearer "+testSecret)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("POST /api/%q %q: status %d with a body that is not JSON: %q", method, body, rec.Code, rec.Body.Bytes())
		}
		if rec.Code == http.StatusNotFound && len(rec.Body.Bytes()) > 512 {
			t.Fatalf("a 404 echoes %d bytes", rec.Body.Len())
		}
	})
}
