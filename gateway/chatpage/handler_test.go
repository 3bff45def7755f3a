package chatpage_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/wssgate/wssgate/gateway/chatpage"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(chatpage.Handler())
	defer srv.Close()

	const (
		html = "text/html; charset=utf-8"
		js   = "text/javascript; charset=utf-8"
		css  = "text/css; charset=utf-8"
	)
	for _, tc := range []struct {
		method, path string
		wantStatus   int
		wantType     string // "" for an error
		wantBody     string // a part of it
	}{
		{"GET", "/", 200, html, `<script src="app.js" defer></script>`},
		{"GET", "/index.html", 200, html, `id="log"`},
		{"GET", "/chat/", 200, html, `id="log"`},
		{"GET", "/chat/index.html", 200, html, `id="log"`},
		{"GET", "/room/42", 200, html, `id="log"`},
		{"GET", "/?ws=/other", 200, html, `id="log"`},
		{"GET", "/app.js", 200, js, `"use strict"`},
		{"GET", "/chat/app.js", 200, js, `"use strict"`},
		{"GET", "/style.css", 200, css, `#log`},
		{"GET", "/chat/style.css", 200, css, `#log`},
		{"HEAD", "/", 200, html, ""},
		{"HEAD", "/app.js", 200, js, ""},
		{"GET", "/favicon.ico", 404, "", "404"},
		{"GET", "/robots.txt", 404, "", "404"},
		{"GET", "/chat/other.js", 404, "", "404"},
		{"POST", "/", 405, "", "405"},
		{"PUT", "/app.js", 405, "", "405"},
		{"DELETE", "/index.html", 405, "", "405"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			h := resp.Header
			for name, want := range map[string]string{
				"X-Content-Type-Options":  "nosniff",
				"Content-Security-Policy": chatpage.ContentSecurityPolicy,
				"Referrer-Policy":         "no-referrer",
			} {
				if got := h.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if tc.wantStatus == 405 {
				if got := h.Get("Allow"); got != "GET, HEAD" {
					t.Errorf("Allow = %q, want %q", got, "GET, HEAD")
				}
			}
			if tc.wantType != "" {
				if got := h.Get("Content-Type"); got != tc.wantType {
					t.Errorf("Content-Type = %q, want %q", got, tc.wantType)
				}
				if got := h.Get("Cache-Control"); got != "no-cache" {
					t.Errorf("Cache-Control = %q, want no-cache", got)
				}
				if h.Get("ETag") == "" {
					t.Error("no ETag")
				}
			}
			if tc.method == "HEAD" {
				if len(body) != 0 || resp.ContentLength <= 0 {
					t.Errorf("HEAD: body %d bytes, Content-Length %d; want none and the GET's length", len(body), resp.ContentLength)
				}
			} else if !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("body lacks %q:\n%.300s", tc.wantBody, body)
			}
		})
	}
}

func TestETagRevalidation(t *testing.T) {
	srv := httptest.NewServer(chatpage.Handler())
	defer srv.Close()
	for _, p := range []string{"/", "/app.js", "/style.css"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		etag := resp.Header.Get("ETag")
		req, _ := http.NewRequest("GET", srv.URL+p, nil)
		req.Header.Set("If-None-Match", etag)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match %s: status %d, want 304", p, etag, resp.StatusCode)
		}
	}
	resp, err := http.Get(srv.URL + "/app.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	page, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if resp.Header.Get("ETag") == page.Header.Get("ETag") {
		t.Errorf("app.js and the page share the ETag %s", page.Header.Get("ETag"))
	}
}

// TestContentSecurityPolicy checks that the policy is strict and that the
// page needs nothing it forbids: no inline script or style, no event
// handler attributes, and no HTML built from strings in the script.
func TestContentSecurityPolicy(t *testing.T) {
	csp := chatpage.ContentSecurityPolicy
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("policy lacks %q: %s", want, csp)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "http:", "https:"} {
		if strings.Contains(csp, bad) {
			t.Errorf("policy allows %q: %s", bad, csp)
		}
	}

	srv := httptest.NewServer(chatpage.Handler())
	defer srv.Close()
	get := func(p string) string {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	html, js := get("/"), get("/app.js")
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(tag, "src=") {
			t.Errorf("inline script %s", tag)
		}
	}
	for _, re := range []string{`(?i)\son[a-z]+\s*=`, `(?i)\sstyle\s*=`, `(?i)<style`, `(?i)javascript:`} {
		if m := regexp.MustCompile(re).FindString(html); m != "" {
			t.Errorf("page has %q, which the policy blocks", m)
		}
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %s; messages must reach the page as text only", bad)
		}
	}
}
