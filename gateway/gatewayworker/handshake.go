package gatewayworker

import (
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// Handshake is what CMD_ON_WEBSOCKET_CONNECT tells a BusinessWorker
// about a client's WebSocket upgrade request; Events::onWebSocketConnect
// reads it as $data['server'], $data['get'] and $data['cookie'].
type Handshake struct {
	Method     string         // "GET"
	RequestURI string         // path and query as sent
	Proto      string         // "HTTP/1.1"
	Host       string         // the Host header, port included
	Header     []HeaderField  // every header line in request order, Host included
	RemoteAddr netip.AddrPort // the client's real address
	ServerPort uint16         // the port the client connected to
}

// HeaderField is one request header line.
type HeaderField struct{ Name, Value string }

// HandshakeFromRequest fills a Handshake from r. remote is the client's
// address (the edge's view, forwarding headers included) and serverPort
// the port the client connected to. Go does not keep the order of
// header lines, so Header holds Host first and the others sorted by
// name, a repeated header's values joined with ",".
func HandshakeFromRequest(r *http.Request, remote netip.AddrPort, serverPort uint16) Handshake {
	h := Handshake{
		Method:     r.Method,
		RequestURI: r.RequestURI,
		Proto:      r.Proto,
		Host:       r.Host,
		RemoteAddr: remote,
		ServerPort: serverPort,
	}
	if h.RequestURI == "" && r.URL != nil {
		h.RequestURI = r.URL.RequestURI()
	}
	if r.Host != "" {
		h.Header = append(h.Header, HeaderField{"Host", r.Host})
	}
	for _, name := range slices.Sorted(maps.Keys(r.Header)) {
		if strings.EqualFold(name, "Host") {
			continue
		}
		h.Header = append(h.Header, HeaderField{name, strings.Join(r.Header[name], ",")})
	}
	return h
}

// header returns the value of the first header named name, as
// workerman's Request::header (joined with "," when repeated).
func (h *Handshake) header(name string) (string, bool) {
	var vals []string
	for _, f := range h.Header {
		if strings.EqualFold(f.Name, name) {
			vals = append(vals, f.Value)
		}
	}
	return strings.Join(vals, ","), vals != nil
}

// Value returns the array the PHP Gateway serializes into the body of
// CMD_ON_WEBSOCKET_CONNECT: ['get' => ..., 'server' => [QUERY_STRING,
// REQUEST_METHOD, REQUEST_URI, SERVER_PROTOCOL, SERVER_NAME,
// CONTENT_TYPE, REMOTE_ADDR, REMOTE_PORT, SERVER_PORT, HTTP_*...],
// 'cookie' => ...].
func (h *Handshake) Value() *Array {
	query := ""
	if i := strings.IndexByte(h.RequestURI, '?'); i >= 0 {
		query = h.RequestURI[i+1:]
	}
	server := &Array{}
	set := func(k string, v any) { server.Set(StringKey(k), v) }
	set("QUERY_STRING", query)
	set("REQUEST_METHOD", h.Method)
	set("REQUEST_URI", h.RequestURI)
	set("SERVER_PROTOCOL", h.Proto)
	set("SERVER_NAME", h.Host)
	if ct, ok := h.header("Content-Type"); ok {
		set("CONTENT_TYPE", ct)
	} else {
		set("CONTENT_TYPE", nil)
	}
	set("REMOTE_ADDR", h.RemoteAddr.Addr().Unmap().String())
	set("REMOTE_PORT", int64(h.RemoteAddr.Port()))
	set("SERVER_PORT", int64(h.ServerPort))
	seen := map[string]bool{}
	for _, f := range h.Header {
		key := "HTTP_" + strings.ReplaceAll(strings.ToUpper(f.Name), "-", "_")
		if seen[key] {
			continue
		}
		seen[key] = true
		v, _ := h.header(f.Name)
		set(key, v)
	}
	cookie := ""
	if c, ok := h.header("Cookie"); ok {
		cookie = c
	}
	out := &Array{}
	out.Set(StringKey("get"), ParseStr(query))
	out.Set(StringKey("server"), server)
	out.Set(StringKey("cookie"), ParseStr(cookiePairs(cookie)))
	return out
}

// cookiePairs turns a Cookie header into a query string, as workerman
// does before parse_str: "; " and ";" separate pairs.
func cookiePairs(c string) string {
	c = strings.ReplaceAll(c, "; ", "&")
	return strings.ReplaceAll(c, ";", "&")
}

// ParseStr parses a query string as PHP's parse_str: '+' and %XX are
// decoded, "a[]=1&a[]=2" and "a[x]=1" make nested arrays, and '.' and
// ' ' in a top-level name become '_'.
func ParseStr(query string) *Array {
	out := &Array{}
	for pair := range strings.SplitSeq(query, "&") {
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		name, err1 := url.QueryUnescape(name)
		value, err2 := url.QueryUnescape(value)
		if err1 != nil || err2 != nil || name == "" {
			continue
		}
		base, rest := name, ""
		if i := strings.IndexByte(name, '['); i > 0 && strings.Contains(name[i:], "]") {
			base, rest = name[:i], name[i:]
		}
		base = strings.NewReplacer(".", "_", " ", "_").Replace(base)
		var path []string // nil entries are "[]"
		appendAt := []bool{}
		for strings.HasPrefix(rest, "[") {
			j := strings.IndexByte(rest, ']')
			if j < 0 {
				break
			}
			path = append(path, rest[1:j])
			appendAt = append(appendAt, j == 1)
			rest = rest[j+1:]
		}
		dst := out
		key := StringKey(base)
		for i, seg := range path {
			sub, ok := dst.Get(key)
			a, isArr := sub.(*Array)
			if !ok || !isArr {
				a = &Array{}
				dst.Set(key, a)
			}
			dst = a
			if appendAt[i] {
				key = IntKey(dst.next)
			} else {
				key = StringKey(seg)
			}
		}
		dst.Set(key, value)
	}
	return out
}
