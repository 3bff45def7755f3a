package chatpage

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is the policy sent with every response: the
// page's own script and style only (no inline code), WebSockets and
// fetches to its own origin ('self' covers ws: and wss: of the same
// host), no plugins, frames, forms or base URL.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// file is one embedded file, ready to serve.
type file struct {
	name  string // for http.ServeContent
	data  []byte
	ctype string
	etag  string
}

// handler serves the page and its two files.
type handler struct {
	page   file
	assets map[string]file // by last path element
}

// Handler returns the handler of the chat page. It serves:
//
//   - app.js and style.css at any path whose last element they are, so
//     that the page's relative links work under any prefix;
//   - the page itself at any other path that ends in "/", ends in
//     "index.html" or has no "." in its last element;
//   - 404 for anything else, and 405 for methods other than GET and HEAD.
//
// Every response has Cache-Control: no-cache (an ETag makes revalidation
// cheap), X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer
// and the [ContentSecurityPolicy].
func Handler() http.Handler {
	return &handler{
		page: load("index.html", "text/html; charset=utf-8"),
		assets: map[string]file{
			"app.js":    load("app.js", "text/javascript; charset=utf-8"),
			"style.css": load("style.css", "text/css; charset=utf-8"),
		},
	}
}

// load reads an embedded file. The files are part of the package, so a
// missing one is a build mistake.
func load(name, ctype string) file {
	data, err := static.ReadFile("static/" + name)
	if err != nil {
		panic("chatpage: " + err.Error())
	}
	sum := sha256.Sum256(data)
	return file{name: name, data: data, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f, ok := h.lookup(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr.Set("Content-Type", f.ctype)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", f.etag)
	// A zero time sends no Last-Modified: the ETag validates.
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.data))
}

// lookup returns the file served at p.
func (h *handler) lookup(p string) (file, bool) {
	if p == "" || strings.HasSuffix(p, "/") {
		return h.page, true
	}
	base := path.Base(p)
	if f, ok := h.assets[base]; ok {
		return f, true
	}
	if base == "index.html" || !strings.Contains(base, ".") {
		return h.page, true
	}
	return file{}, false
}
