package proxy

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/testutil"
)

// routeStat returns the stats of the route with path on the site whose
// first host is host.
func routeStat(st Stats, host, path string) (RouteStats, bool) {
	for _, s := range st.Sites {
		if len(s.Hosts) == 0 || s.Hosts[0] != host {
			continue
		}
		for _, r := range s.Routes {
			if r.Path == path {
				return r, true
			}
		}
	}
	return RouteStats{}, false
}

// waitStats waits until check finds nothing wrong with e.Stats, and
// fails t with what check last said if that does not happen in time.
// Counters are added to right after the bytes they count went out, so a
// client may see a reply a moment before Stats does.
func waitStats(t *testing.T, e *edge, check func(Stats) string) Stats {
	t.Helper()
	var (
		st  Stats
		msg string
	)
	defer func() {
		if msg != "" { // WaitFor gave up
			t.Logf("stats: %s\nlast snapshot: %+v", msg, st)
		}
	}()
	testutil.WaitFor(t, "the stats", func() bool {
		st = e.Stats()
		msg = check(st)
		return msg == ""
	})
	return st
}

// wantRoute is a check for waitStats: the route's stats with their
// upstreams left out must equal want.
func wantRoute(host, path string, want RouteStats) func(Stats) string {
	return func(st Stats) string {
		got, ok := routeStat(st, host, path)
		if !ok {
			return fmt.Sprintf("no route %s%s", host, path)
		}
		got.Upstreams, want.Upstreams = nil, nil
		if !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("route %s%s:\n got %+v\nwant %+v", host, path, got, want)
		}
		return ""
	}
}

// wireLen is the length of a one-frame WebSocket message of n payload
// bytes on the wire, with a masking key when masked (client to server).
func wireLen(n int, masked bool) int64 {
	l := int64(2 + n)
	switch {
	case n > 65535:
		l += 8
	case n > 125:
		l += 2
	}
	if masked {
		l += 4
	}
	return l
}

// dialBig is e.dial with a write buffer large enough that gorilla sends
// every message of the tests as one frame, whose length wireLen gives.
func (e *edge) dialBig(t *testing.T, host, path string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: e.tlsConfig(), HandshakeTimeout: relayWait, NetDialContext: clientDialer.DialContext, WriteBufferSize: 1 << 17}
	c, _, err := d.Dial("wss://"+e.srv.Listener.Addr().String()+path, http.Header{"Host": {host}})
	if err != nil {
		t.Fatalf("dial %s%s: %v", host, path, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestStats passes known traffic through the edge and checks that Stats
// reports exactly that: while streams are open and after they end,
// refusals and failures, upstream health, and across a reload.
func TestStats(t *testing.T) {
	verifyNoStreamLeaks(t)
	b := newBackend(t)
	dead := "ws://" + testutil.FreeAddr(t)
	const chat, limited = "chat.example.com", "limited.example.com"
	routes := []config.Route{
		{Path: "/wss", Upstreams: []string{b.wsURL()}, AllowedOrigins: []string{"https://chat.example.com"}},
		{Path: "/api", Upstreams: []string{b.URL}},
		{Path: "/dead", Upstreams: []string{dead}, MaxFails: 2, FailTimeout: time.Minute},
		{Path: "/old", Upstreams: []string{b.wsURL()}},
		{Path: "/hello", Respond: &config.Respond{Body: "hello"}},
	}
	cfg := siteConfig(routes...)
	cfg.Sites = append(cfg.Sites, config.Site{
		Hosts: []string{limited}, TLS: config.SiteTLS{Internal: true}, MaxConnections: 1,
		Routes: []config.Route{{Path: "/wss", Upstreams: []string{b.wsURL()}}},
	})
	e := newEdge(t, cfg)

	st := e.Stats()
	if len(st.Sites) != 2 || st.Sites[0].Hosts[0] != chat || st.Sites[1].Hosts[0] != limited || st.Sites[1].MaxConnections != 1 {
		t.Fatalf("sites: got %+v, want chat.example.com then limited.example.com (max 1)", st.Sites)
	}
	var paths, kinds []string
	for _, r := range st.Sites[0].Routes {
		paths, kinds = append(paths, r.Path), append(kinds, r.Kind)
	}
	if got, want := strings.Join(paths, " "), "/wss /api /dead /old /hello"; got != want {
		t.Errorf("routes: got %s, want %s (configuration order)", got, want)
	}
	if got, want := strings.Join(kinds, " "), "upstream upstream upstream upstream respond"; got != want {
		t.Errorf("kinds: got %s, want %s", got, want)
	}

	// Plain HTTP: three GETs and a POST with a body.
	var apiOut int64
	for i := range 3 {
		resp := e.get(t, chat, fmt.Sprintf("/api/%d", i), nil)
		body, _ := io.ReadAll(resp.Body)
		apiOut += int64(len(body))
	}
	post, err := http.NewRequest(http.MethodPost, e.srv.URL+"/api/post", bytes.NewReader(make([]byte, 1000)))
	if err != nil {
		t.Fatal(err)
	}
	post.Host = chat
	tr := &http.Transport{TLSClientConfig: e.tlsConfig(), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(post)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	apiOut += int64(len(body))
	waitStats(t, e, wantRoute(chat, "/api", RouteStats{
		Path: "/api", Kind: RouteUpstream, Total: 4, Requests: 4, BytesIn: 1000, BytesOut: apiOut,
	}))

	// Two streams, each passing one message of every size each way. The
	// counts are live: checked with the streams open.
	sizes := []int{0, 1, 125, 126, 65535, 65536, 70000}
	const streams = 2
	var in, out int64
	var conns []*websocket.Conn
	for range streams {
		c := e.dialBig(t, chat, "/wss")
		for _, n := range sizes {
			testutil.EchoRoundTrip(t, c, websocket.BinaryMessage, bytes.Repeat([]byte{'x'}, n))
			in, out = in+wireLen(n, true), out+wireLen(n, false)
		}
		conns = append(conns, c)
	}
	msgs := int64(streams * len(sizes))
	open := RouteStats{
		Path: "/wss", Kind: RouteUpstream, Active: streams, Total: streams, Streams: streams,
		BytesIn: in, BytesOut: out, MessagesIn: msgs, MessagesOut: msgs,
	}
	st = waitStats(t, e, wantRoute(chat, "/wss", open))
	if st.Active != streams || st.Streams != streams || st.Sites[0].Active != streams {
		t.Errorf("with %d streams open: Active %d, Streams %d, site Active %d", streams, st.Active, st.Streams, st.Sites[0].Active)
	}
	if r, _ := routeStat(st, chat, "/wss"); len(r.Upstreams) != 1 || r.Upstreams[0] != (UpstreamStats{URL: b.wsURL(), Healthy: true, Active: streams, Total: streams}) {
		t.Errorf("/wss upstreams: got %+v, want one, healthy, with %d streams", r.Upstreams, streams)
	}

	// Refusals and failures: each upgrade that did not become a stream is
	// a failed handshake.
	failures := []struct {
		name       string
		host, path string
		header     http.Header
		status     int
		upstream   UpstreamStats // of path, when URL is set
	}{
		{name: "foreign origin", host: chat, path: "/wss", header: http.Header{"Origin": {"https://evil.example"}}, status: http.StatusForbidden},
		{name: "dead upstream", host: chat, path: "/dead", status: http.StatusBadGateway,
			upstream: UpstreamStats{URL: dead, Healthy: true, Fails: 1, Total: 1, Failed: 1}},
		{name: "dead upstream, max_fails reached", host: chat, path: "/dead", status: http.StatusBadGateway,
			upstream: UpstreamStats{URL: dead, Healthy: false, Fails: 0, Total: 2, Failed: 2}},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			before, _ := routeStat(e.Stats(), f.host, f.path)
			h := f.header.Clone()
			if h == nil {
				h = http.Header{}
			}
			h.Set("Host", f.host)
			_, resp, err := e.dial(t, f.path, h)
			if err == nil || resp == nil || resp.StatusCode != f.status {
				t.Fatalf("dial: %v, %v; want %d", err, resp, f.status)
			}
			after, _ := routeStat(e.Stats(), f.host, f.path)
			if got, want := after.HandshakesFailed, before.HandshakesFailed+1; got != want {
				t.Errorf("HandshakesFailed: got %d, want %d", got, want)
			}
			if after.Streams != before.Streams || after.Active != before.Active {
				t.Errorf("Streams %d→%d, Active %d→%d; want both unchanged", before.Streams, after.Streams, before.Active, after.Active)
			}
			if f.upstream.URL == "" {
				return
			}
			got := after.Upstreams[0]
			if !f.upstream.Healthy {
				if !got.DownUntil.After(time.Now()) {
					t.Errorf("DownUntil %v: want a time to come", got.DownUntil)
				}
				got.DownUntil = time.Time{}
			}
			if got != f.upstream {
				t.Errorf("upstream: got %+v, want %+v", got, f.upstream)
			}
		})
	}

	// Over max_connections: one stream holds limited's only slot.
	lc := e.dialBig(t, limited, "/wss")
	testutil.EchoRoundTrip(t, lc, websocket.BinaryMessage, []byte("hold"))
	if _, resp, err := e.dial(t, "/wss", http.Header{"Host": {limited}}); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second stream on limited: %v, %v; want 503", err, resp)
	}
	st = waitStats(t, e, wantRoute(limited, "/wss", RouteStats{
		Path: "/wss", Kind: RouteUpstream, Active: 1, Total: 1, Streams: 1, HandshakesFailed: 1,
		BytesIn: wireLen(4, true), MessagesIn: 1, MessagesOut: 1,
		BytesOut: wireLen(4, false) + int64(len("503 Service Unavailable\n")), // the stream's and the error page's
	}))
	if st.Sites[1].Active != 1 {
		t.Errorf("limited: site Active %d, want 1", st.Sites[1].Active)
	}

	// A plain request to a WebSocket route is a request (answered 426).
	if resp := e.get(t, chat, "/wss", nil); resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET /wss = %d, want 426", resp.StatusCode)
	}
	if r, _ := routeStat(e.Stats(), chat, "/wss"); r.Requests != 1 || r.Total != streams+1 {
		t.Errorf("/wss after a plain GET: Requests %d, Total %d; want 1, %d", r.Requests, r.Total, streams+1)
	}

	// A reload keeps the counters of the routes it keeps, and the open
	// streams go on counting into them. A removed route with an open
	// stream is still listed, after the current ones, until it ends.
	oldStream, _, err := e.dial(t, "/old", nil)
	if err != nil {
		t.Fatal(err)
	}
	// gorilla's default 4 KiB write buffer sends this as several frames:
	// one message.
	testutil.EchoRoundTrip(t, oldStream, websocket.BinaryMessage, bytes.Repeat([]byte("old"), 5000))
	waitStats(t, e, func(st Stats) string {
		if r, _ := routeStat(st, chat, "/old"); r.MessagesIn != 1 || r.MessagesOut != 1 {
			return fmt.Sprintf("/old: MessagesIn %d, MessagesOut %d after one fragmented message; want 1, 1", r.MessagesIn, r.MessagesOut)
		}
		return ""
	})
	kept, _ := routeStat(e.Stats(), chat, "/wss")
	next := siteConfig(routes[0], routes[1], config.Route{Path: "/new", Respond: &config.Respond{Body: "new"}})
	next.Sites = append(next.Sites, cfg.Sites[1])
	if err := e.reload(t, next); err != nil {
		t.Fatal(err)
	}
	// The old table goes once the last request that routed by it has
	// returned, which may be a moment after its client had the answer.
	st = waitStats(t, e, func(st Stats) string {
		paths = paths[:0]
		for _, r := range st.Sites[0].Routes {
			paths = append(paths, r.Path)
		}
		if got, want := strings.Join(paths, " "), "/wss /api /new /old"; got != want {
			return fmt.Sprintf("routes after the reload: got %s, want %s", got, want)
		}
		return ""
	})
	if r, _ := routeStat(st, chat, "/wss"); r.Streams != kept.Streams || r.MessagesIn != kept.MessagesIn || r.BytesOut != kept.BytesOut {
		t.Errorf("/wss after the reload: got %+v, want the counters of before: %+v", r, kept)
	}
	for _, c := range conns {
		testutil.EchoRoundTrip(t, c, websocket.BinaryMessage, []byte("after"))
	}
	kept.MessagesIn += streams
	kept.MessagesOut += streams
	kept.BytesIn += streams * wireLen(5, true)
	kept.BytesOut += streams * wireLen(5, false)
	kept.Upstreams = nil
	waitStats(t, e, wantRoute(chat, "/wss", kept))

	oldStream.Close()
	waitStats(t, e, func(st Stats) string {
		if _, ok := routeStat(st, chat, "/old"); ok {
			return "/old still listed after its last stream ended"
		}
		return ""
	})

	// Streams that end keep their counts; only Active drops.
	for _, c := range conns {
		c.Close()
	}
	lc.Close()
	st = waitStats(t, e, func(st Stats) string {
		if st.Active != 0 || st.Streams != 0 {
			return fmt.Sprintf("Active %d, Streams %d after every stream ended", st.Active, st.Streams)
		}
		return ""
	})
	r, _ := routeStat(st, chat, "/wss")
	if r.Active != 0 || r.Streams != streams || r.MessagesIn != kept.MessagesIn || r.BytesIn < kept.BytesIn {
		t.Errorf("/wss after its streams ended: %+v", r)
	}
	if r.Upstreams[0].Active != 0 || r.Upstreams[0].Total != streams {
		t.Errorf("/wss upstream after its streams ended: %+v", r.Upstreams[0])
	}
}

// TestStatsGateway: the edge counts the gateway route's connections and
// refusals, not its messages.
func TestStatsGateway(t *testing.T) {
	cfg := siteConfig(config.Route{Path: "/wss", Gateway: true, AllowedOrigins: []string{"https://chat.example.com"}})
	e := newEdgeWith(t, cfg, Options{Gateway: inProcessGateway(ClientAddrFunc(nil))})
	c, _, err := e.dial(t, "/wss", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(relayWait))
	if _, _, err := c.ReadMessage(); err != nil { // the client address
		t.Fatal(err)
	}
	testutil.EchoRoundTrip(t, c, websocket.BinaryMessage, []byte("hi"))
	if _, resp, err := e.dial(t, "/wss", http.Header{"Origin": {"https://evil.example"}}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v, %v; want 403", err, resp)
	}
	waitStats(t, e, wantRoute("chat.example.com", "/wss", RouteStats{
		Path: "/wss", Kind: RouteGateway, Active: 1, Total: 1, Streams: 1, HandshakesFailed: 1,
		BytesOut: int64(len("403 Forbidden\n")),
	}))
	c.Close()
	waitStats(t, e, wantRoute("chat.example.com", "/wss", RouteStats{
		Path: "/wss", Kind: RouteGateway, Total: 1, Streams: 1, HandshakesFailed: 1,
		BytesOut: int64(len("403 Forbidden\n")),
	}))
}

// TestStatsSendFail: a stream whose client stops reading is cut by
// send_timeout and counted in SendFail.
func TestStatsSendFail(t *testing.T) {
	verifyNoStreamLeaks(t)
	flood := httptestWS(t, func(c *websocket.Conn) {
		msg := make([]byte, 64<<10)
		for {
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				return
			}
		}
	})
	cfg := siteConfig(config.Route{Path: "/wss", Upstreams: []string{flood}})
	cfg.Limits.SendTimeout = 200 * time.Millisecond
	e := newEdge(t, cfg)

	// A client that upgrades, then never reads.
	conn, err := tls.Dial("tcp", e.srv.Listener.Addr().String(), e.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /wss HTTP/1.1\r\nHost: chat.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	waitStats(t, e, func(st Stats) string {
		r, _ := routeStat(st, "chat.example.com", "/wss")
		if r.SendFail != 1 || r.Active != 0 {
			return fmt.Sprintf("SendFail %d, Active %d; want 1, 0", r.SendFail, r.Active)
		}
		return ""
	})
}

// httptestWS serves WebSocket connections with serve and returns the
// ws:// URL.
func httptestWS(t *testing.T, serve func(c *websocket.Conn)) string {
	t.Helper()
	srv := httptest.NewServer(wsUpstream(serve))
	t.Cleanup(srv.Close)
	return "ws://" + srv.Listener.Addr().String()
}
