package pushapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
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
	*gatewaytest.Env
	api    *Server
	apiURL string
	client *http.Client
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
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close) // after the hub's shutdown, registered below
	return &env{
		Env:    gatewaytest.Start(t, hub),
		api:    api,
		apiURL: apiSrv.URL,
		client: apiSrv.Client(),
	}
}

// connect dials a client ("websocket" or "text") and reads its id into
// the peer's ID.
func (e *env) connect(t *testing.T, transport string) *gatewaytest.Peer {
	t.Helper()
	var p *gatewaytest.Peer
	if transport == "text" {
		p = e.DialText(t)
	} else {
		p = e.DialWS(t)
	}
	p.ReadID("id ")
	return p
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
