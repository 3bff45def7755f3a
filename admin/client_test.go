package admin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestFetch(t *testing.T) {
	const token = "tok-123"
	_, open := startServer(t, Options{})
	_, guarded := startServer(t, Options{Token: token})
	addr := func(ts *httptest.Server) string { return ts.Listener.Addr().String() }

	t.Run("no token needed", func(t *testing.T) {
		snap, err := Fetch(context.Background(), addr(open), "")
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		if snap.Process.PID != 4242 || snap.Gateway == nil || snap.Gateway.Clients != 11 {
			t.Errorf("snapshot = %+v, want the fake's", snap)
		}
	})
	t.Run("right token", func(t *testing.T) {
		snap, err := Fetch(context.Background(), addr(guarded), token)
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		if snap.Reload.Generation != 3 {
			t.Errorf("reload generation = %d, want 3", snap.Reload.Generation)
		}
	})
	for _, tc := range []struct {
		name, token, want string
	}{
		{"wrong token", "nope", "admin: admin token rejected by admin listener " + addr(guarded)},
		{"no token", "", "admin: admin token rejected: admin listener " + addr(guarded) + " requires a token and none was given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Fetch(context.Background(), addr(guarded), tc.token)
			if !errors.Is(err, ErrTokenRejected) {
				t.Fatalf("Fetch = %v, want ErrTokenRejected", err)
			}
			if err.Error() != tc.want {
				t.Errorf("Fetch error %q, want %q", err, tc.want)
			}
		})
	}
}

func TestFetchNotRunning(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	_, err = Fetch(context.Background(), addr, "")
	if !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Fetch = %v, want ErrNotRunning", err)
	}
	if want := "admin: is wssgate running? admin listener " + addr + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Fetch error %q, want it to start with %q", err, want)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Fetch error %q, want the cause, connection refused", err)
	}
}

func TestFetchBadAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"server error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "snapshot exploded\nmore", http.StatusInternalServerError)
		}, "GET /status: 500 Internal Server Error: snapshot exploded"},
		{"not found", func(w http.ResponseWriter, r *http.Request) {
			http.NotFound(w, r)
		}, "GET /status: 404 Not Found: 404 page not found"},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://192.0.2.1/", http.StatusFound)
		}, "GET /status: 302 Found"},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("<html>"))
		}, "GET /status: decode: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(tc.handler)
			t.Cleanup(ts.Close)
			addr := ts.Listener.Addr().String()
			_, err := Fetch(context.Background(), addr, "")
			if err == nil {
				t.Fatal("Fetch succeeded, want an error")
			}
			if want := "admin: admin listener " + addr + ": "; !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Fetch error %q, want %q...%q", err, want, tc.want)
			}
		})
	}
}

func TestFetchGivesUp(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(release) })

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := Fetch(ctx, ts.Listener.Addr().String(), "")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer in time") {
		t.Errorf("Fetch to a server that never answers = %v, want a deadline error saying so", err)
	}
}
