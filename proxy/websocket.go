package proxy

import (
	"bufio"
	"context"
	"crypto/sha1" //nolint:gosec // required by RFC 6455 for Sec-WebSocket-Accept
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"time"
)

// websocketGUID is the RFC 6455 constant for Sec-WebSocket-Accept.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// maxErrorBody bounds how much of an upstream's refusal is passed on.
const maxErrorBody = 1 << 20

// maxUpgradeAnswer bounds the status line and headers of an upstream's
// answer to an upgrade request.
const maxUpgradeAnswer = 64 << 10

// serveWebSocket checks the client's upgrade, opens the same upgrade to
// one of the route's upstreams (trying the next one when connecting or
// the handshake fails) and hands the client the upstream's answer. Once
// both sides switched protocols it starts the relay on goroutines of its
// own and returns errDetached: releasing sl and the access line are then
// the relay's to do when the stream ends. Returning frees the HTTP server's
// per-connection buffers and the handler's stack, grown by the TLS and
// HTTP handshakes, which would otherwise be held for the stream's life
// (about half the memory of an idle proxied connection).
func (p *Proxy) serveWebSocket(w *responseRecorder, r *http.Request, t *table, rt *route, ci clientInfo, rec *accessRecord, sl slot) error {
	rec.websocket = true
	if err := p.admitUpgrade(r, rt); err != nil {
		return err
	}
	cands := rt.pool.candidates()
	var (
		up      *upstream
		conn    net.Conn
		br      *bufio.Reader
		resp    *http.Response
		lastErr error
	)
	for _, u := range cands {
		u.ctr.attempt()
		out := upgradeRequest(r, rt, u.url, ci)
		c, b, res, err := dialWebSocket(r.Context(), t.limits.DialTimeout, u, out)
		if err == nil {
			up, conn, br, resp = u, c, b, res
			break
		}
		clientLeft := r.Context().Err() != nil
		u.ctr.done(!clientLeft)
		if clientLeft {
			return fmt.Errorf("proxy: client left during upstream handshake: %w", context.Canceled)
		}
		rt.pool.failed(u, err)
		lastErr = err
	}
	if up == nil {
		return fmt.Errorf("%w: %w", ErrNoUpstream, lastErr)
	}
	rec.upstream = up.url.String()
	detached, upFailed := false, false
	defer func() {
		if !detached {
			up.ctr.done(upFailed)
		}
	}()

	if resp.StatusCode != http.StatusSwitchingProtocols {
		// The upstream refused the upgrade itself (auth, unknown path):
		// its answer is the client's answer, within response_timeout and
		// for as long as the client waits.
		up.succeed()
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(t.limits.ResponseTimeout))
		stop := context.AfterFunc(r.Context(), func() { conn.Close() })
		defer stop()
		copyHeader(w.Header(), resp.Header)
		removeHopHeaders(w.Header())
		if resp.ContentLength < 0 || resp.ContentLength > maxErrorBody {
			w.Header().Del("Content-Length")
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := checkAccept(r, resp); err != nil {
		conn.Close()
		upFailed = true
		rt.pool.failed(up, err)
		return err
	}
	up.succeed()

	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		conn.Close()
		return fmt.Errorf("proxy: hijack: %w", err)
	}
	w.hijacked = true
	if err := writeSwitching(brw.Writer, resp); err != nil {
		conn.Close()
		client.Close()
		return fmt.Errorf("proxy: write 101 to client: %w", err)
	}
	rec.status = http.StatusSwitchingProtocols

	s := newStream(client, buffered(brw.Reader), conn, buffered(br), rt.stream)
	remove := p.streams.add(s)
	detached = true
	rt.ctr.opened()
	// The stream's goroutine is owned by the registry: Shutdown and Wait
	// wait for it to empty, and remove comes last, so that nothing of the
	// stream outlives them.
	go func() {
		defer remove()
		res := s.run()
		up.ctr.done(false)
		sl.release()
		rec.bytesIn, rec.bytesOut = res.FromClient, res.ToClient
		rec.closeCode, rec.closedBy = res.CloseCode, res.ClosedBy
		p.logAccess(rec)
	}()
	return errDetached
}

// admitUpgrade is what every WebSocket upgrade passes at the edge, to an
// upstream or to the in-process gateway: a well-formed request, an
// allowed Origin, and a proxy that is not shutting down.
func (p *Proxy) admitUpgrade(r *http.Request, rt *route) error {
	if err := checkUpgrade(r); err != nil {
		return err
	}
	if !rt.originAllowed(r.Header.Get("Origin")) {
		return fmt.Errorf("%w: %q", ErrOriginNotAllowed, r.Header.Get("Origin"))
	}
	if p.streams.closing() {
		return ErrShuttingDown
	}
	return nil
}

// checkUpgrade checks the parts of the client's upgrade request that the
// proxy must vouch for before it bothers an upstream.
func checkUpgrade(r *http.Request) error {
	if r.Method != http.MethodGet {
		return fmt.Errorf("%w, got %s", ErrMethod, r.Method)
	}
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return fmt.Errorf("%w: needs HTTP/1.1, got %s", ErrBadHandshake, r.Proto)
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		return fmt.Errorf("%w %q", ErrBadVersion, v)
	}
	key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key"))
	if err != nil || len(key) != 16 {
		return fmt.Errorf("%w: Sec-WebSocket-Key must be 16 bytes in base64", ErrBadHandshake)
	}
	return nil
}

// checkAccept checks the upstream's 101 answer against the client's key.
func checkAccept(r *http.Request, resp *http.Response) error {
	if !headerHasToken(resp.Header, "Upgrade", "websocket") || !headerHasToken(resp.Header, "Connection", "upgrade") {
		return fmt.Errorf("%w: 101 without Upgrade: websocket", ErrUpstreamHandshake)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(r.Header.Get("Sec-WebSocket-Key")); got != want {
		return fmt.Errorf("%w: Sec-WebSocket-Accept %q, want %q", ErrUpstreamHandshake, got, want)
	}
	return nil
}

func acceptKey(key string) string {
	h := sha1.New() //nolint:gosec // RFC 6455
	h.Write([]byte(key))
	h.Write([]byte(websocketGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// upgradeRequest builds the upgrade request for upstream u: the client's
// request with hop-by-hop headers replaced, forwarding headers set and
// the route's headers applied. Query string, cookies, Origin and the
// Sec-WebSocket-* headers pass through unchanged, so that subprotocol and
// extension negotiation happens end to end.
func upgradeRequest(in *http.Request, rt *route, u *url.URL, ci clientInfo) *http.Request {
	h := in.Header.Clone()
	removeHopHeaders(h)
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", "websocket")
	setForwarded(h, in, ci)
	for k, v := range rt.headers {
		h[k] = v
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // keep Go's default User-Agent out
	}
	target := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: rt.targetPath(u, in.URL.Path), RawQuery: in.URL.RawQuery}
	if in.URL.RawPath != "" {
		target.RawPath = rt.targetPath(&url.URL{Path: u.EscapedPath()}, in.URL.RawPath)
	}
	host := in.Host
	if rt.host != "" {
		host = rt.host
	}
	return &http.Request{
		Method:     http.MethodGet,
		URL:        target,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       host,
	}
}

// dialWebSocket connects to up, sends the upgrade request and reads the
// answer, all within timeout. The returned reader holds any bytes the
// upstream sent after its answer.
func dialWebSocket(ctx context.Context, timeout time.Duration, up *upstream, out *http.Request) (net.Conn, *bufio.Reader, *http.Response, error) {
	u := up.url
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostPort(u))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("proxy: dial %s: %w", u.Host, err)
	}
	// Bound the whole handshake; cut it short if the client leaves.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	fail := func(step string, err error) (net.Conn, *bufio.Reader, *http.Response, error) {
		conn.Close()
		if ctx.Err() != nil && !isTimeout(err) {
			err = errors.Join(err, ctx.Err())
		}
		return nil, nil, nil, fmt.Errorf("proxy: %s %s: %w", step, u.Host, err)
	}
	if up.wsTLS != nil {
		tc := tls.Client(conn, up.wsTLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail("tls handshake with", err)
		}
		conn = tc
	}
	if err := out.Write(conn); err != nil {
		return fail("send upgrade to", err)
	}
	// Bound the answer, so that a broken upstream cannot stream headers
	// into memory until dial_timeout. Only the bytes br reads count.
	lr := &io.LimitedReader{R: conn, N: maxUpgradeAnswer}
	br := bufio.NewReaderSize(lr, 4096)
	resp, err := http.ReadResponse(br, out)
	if err != nil {
		return fail("read upgrade answer from", err)
	}
	lr.N = math.MaxInt64 // the body of a refusal is bounded where it is copied
	if !stop() {
		return fail("read upgrade answer from", ctx.Err())
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br, resp, nil
}

// hostPort returns u's host with the scheme's default port filled in.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "wss" || u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// writeSwitching writes the upstream's 101 answer to the client, with
// hop-by-hop headers other than the upgrade pair removed.
func writeSwitching(bw *bufio.Writer, resp *http.Response) error {
	h := resp.Header.Clone()
	removeHopHeaders(h)
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	if _, err := bw.WriteString("HTTP/1.1 101 Switching Protocols\r\n"); err != nil {
		return err
	}
	if err := h.Write(bw); err != nil {
		return err
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}
	return bw.Flush()
}

// buffered returns a copy of the bytes waiting in br, or nil.
func buffered(br *bufio.Reader) []byte {
	n := br.Buffered()
	if n == 0 {
		return nil
	}
	b, _ := br.Peek(n)
	return append([]byte(nil), b...)
}

func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		dst[k] = append(dst[k][:0:0], vv...)
	}
}
