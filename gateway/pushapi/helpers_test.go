package pushapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/internal/testutil"
)

const testSecret = "s3cret-token"

// greeter tells each new client its id ("id <client_id>"), so that a
// test client learns it from its first message.
type greeter struct {
	gateway.NopHandler
	hub *gateway.Hub
}

func (g *greeter) OnConnect(ci gateway.ClientInfo) {
	g.hub.SendToClient(ci.ID, []byte("id "+ci.ID))
}

// env is a hub with a WebSocket endpoint, a text listener and the push
// API in front of it, all on loopback.
type env struct {
	hub      *gateway.Hub
	api      *Server
	apiURL   string
	client   *http.Client
	wsURL    string
	textAddr string
}

func start(t *testing.T, opts Options) *env {
	t.Helper()
	g := &greeter{}
	hub := gateway.New(gateway.Options{Handler: g, Logger: testutil.Logger(t)})
	g.hub = hub
	if opts.Secret == "" {
		opts.Secret = testSecret
	}
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(t)
	}
	api, err := New(hub, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ws := httptest.NewServer(hub.WebSocketHandler(nil))
	apiSrv := httptest.NewServer(api)
	ln := testutil.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); hub.ServeText(ctx, ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := hub.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		cancel()
		wg.Wait()
		ws.Close()
		apiSrv.Close()
	})
	return &env{
		hub:      hub,
		api:      api,
		apiURL:   apiSrv.URL,
		client:   apiSrv.Client(),
		wsURL:    "ws" + strings.TrimPrefix(ws.URL, "http"),
		textAddr: ln.Addr().String(),
	}
}

// peer is a test client of either transport.
type peer struct {
	t  *testing.T
	id string
	ws *websocket.Conn
	nc net.Conn
	br *bufio.Reader
}

// connect dials a client ("websocket" or "text") and reads its id.
func (e *env) connect(t *testing.T, transport string) *peer {
	t.Helper()
	p := &peer{t: t}
	if transport == "text" {
		nc, err := net.Dial("tcp", e.textAddr)
		if err != nil {
			t.Fatalf("dial text: %v", err)
		}
		p.nc, p.br = nc, bufio.NewReader(nc)
		t.Cleanup(func() { nc.Close() })
	} else {
		ws, _, err := websocket.DefaultDialer.Dial(e.wsURL+"/wss", nil)
		if err != nil {
			t.Fatalf("dial websocket: %v", err)
		}
		p.ws = ws
		t.Cleanup(func() { ws.Close() })
	}
	hello := p.read()
	id, ok := strings.CutPrefix(hello, "id ")
	if !ok {
		t.Fatalf("first message = %q, want \"id <client_id>\"", hello)
	}
	p.id = id
	return p
}

func (p *peer) read() string {
	p.t.Helper()
	s, err := p.readErr(5 * time.Second)
	if err != nil {
		p.t.Fatalf("client %s: read: %v", p.id, err)
	}
	return s
}

func (p *peer) readErr(wait time.Duration) (string, error) {
	if p.ws != nil {
		p.ws.SetReadDeadline(time.Now().Add(wait))
		_, b, err := p.ws.ReadMessage()
		return string(b), err
	}
	p.nc.SetReadDeadline(time.Now().Add(wait))
	s, err := p.br.ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

// response is a push API answer.
type response struct {
	status int
	header http.Header
	body   string // normalized JSON (keys sorted), or the raw body if not JSON
}

// post sends a request to the push API. token "" sends no
// Authorization header; contentType "" sends none.
func (e *env) post(t *testing.T, method, path, token, contentType, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.apiURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: normalize(string(b))}
}

// call posts body to /api/<method> with the right token and JSON type.
func (e *env) call(t *testing.T, method, body string) response {
	t.Helper()
	return e.post(t, http.MethodPost, "/api/"+method, testSecret, "application/json", body)
}

// normalize re-encodes JSON so that equal values compare equal as
// strings; anything else is returned as it is.
func normalize(s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}
