package pushapi

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/internal/bearer"
	"github.com/wssgate/wssgate/internal/testutil"
)

// TestEveryMethod calls every GatewayWorker method over HTTP and checks
// its answer and its effect on real WebSocket and text clients.
func TestEveryMethod(t *testing.T) {
	e := start(t, Options{})
	p1 := e.connect(t, "websocket")
	p2 := e.connect(t, "text")
	p3 := e.connect(t, "websocket")
	id1, id2, id3 := p1.ID, p2.ID, p3.ID
	peers := []*gatewaytest.Peer{p1, p2, p3}
	sorted := func(ids ...string) string {
		slices.Sort(ids)
		return `["` + strings.Join(ids, `","`) + `"]`
	}

	called := make(map[string]bool)
	call := func(method, body, want string) {
		t.Helper()
		called[method] = true
		got := e.call(t, method, body)
		if got.status != http.StatusOK || got.body != normalize(want) {
			t.Fatalf("%s %s: got %d %s, want 200 %s", method, body, got.status, got.body, normalize(want))
		}
	}
	// expect checks that exactly the listed clients got data: a marker
	// sent to all afterwards must be the next message of the others.
	expect := func(data string, want ...*gatewaytest.Peer) {
		t.Helper()
		marker := fmt.Sprintf("marker-%d", time.Now().UnixNano())
		e.Hub.SendToAll([]byte(marker), nil, nil)
		for _, p := range peers {
			got := p.Read()
			if slices.Contains(want, p) {
				if got != data {
					t.Errorf("client %s got %q, want %q", p.ID, got, data)
				}
				got = p.Read()
			}
			if got != marker {
				t.Errorf("client %s got %q, want only the marker", p.ID, got)
			}
		}
	}

	call("sendToAll", `{"data":"all"}`, `{"result":3}`)
	expect("all", p1, p2, p3)
	call("sendToAll", fmt.Sprintf(`{"data":{"type":"x"},"client_ids":[%q,%q]}`, id1, id3), `{"result":2}`)
	expect(`{"type":"x"}`, p1, p3)
	call("sendToAll", fmt.Sprintf(`{"data":"except","exclude":[%q]}`, id2), `{"result":2}`)
	expect("except", p1, p3)
	call("sendToClient", fmt.Sprintf(`{"client_id":%q,"data":"you"}`, id2), `{"ok":true}`)
	expect("you", p2)

	call("joinGroup", fmt.Sprintf(`{"client_id":%q,"group":"room"}`, id1), `{"result":true}`)
	call("joinGroup", fmt.Sprintf(`{"client_id":%q,"groups":["room","lobby"]}`, id2), `{"result":true}`)
	call("joinGroup", fmt.Sprintf(`{"client_id":%q,"group":"lobby"}`, id3), `{"result":true}`)
	call("joinGroup", fmt.Sprintf(`{"client_id":%q,"group":"lobby"}`, id3), `{"result":false}`)
	call("sendToGroup", `{"group":"room","data":"room"}`, `{"result":2}`)
	expect("room", p1, p2)
	call("sendToGroup", fmt.Sprintf(`{"groups":["room","lobby"],"exclude":[%q],"data":"both"}`, id1), `{"result":2}`)
	expect("both", p2, p3)
	call("getAllGroupIdList", ``, `{"result":["lobby","room"]}`)
	call("getClientIdCountByGroup", `{"group":"room"}`, `{"result":2}`)
	call("getClientIdListByGroup", `{"group":"lobby"}`, `{"result":`+sorted(id2, id3)+`}`)
	call("getClientIdListByGroup", `{"group":"nobody"}`, `{"result":[]}`)
	call("leaveGroup", fmt.Sprintf(`{"client_id":%q,"group":"room"}`, id2), `{"result":true}`)
	call("getClientIdListByGroup", `{"group":"room"}`, `{"result":`+sorted(id1)+`}`)

	call("bindUid", fmt.Sprintf(`{"client_id":%q,"uid":"alice"}`, id1), `{"result":true}`)
	call("bindUid", fmt.Sprintf(`{"client_id":%q,"uid":"alice"}`, id3), `{"result":true}`)
	call("bindUid", fmt.Sprintf(`{"client_id":%q,"uid":"bob"}`, id2), `{"result":true}`)
	call("sendToUid", `{"uid":"alice","data":"hi alice"}`, `{"result":2}`)
	expect("hi alice", p1, p3)
	call("sendToUid", `{"uids":["bob"],"data":"hi bob"}`, `{"result":1}`)
	expect("hi bob", p2)
	call("isUidOnline", `{"uid":"alice"}`, `{"result":true}`)
	call("isUidOnline", `{"uid":"carol"}`, `{"result":false}`)
	call("getClientIdByUid", `{"uid":"alice"}`, `{"result":`+sorted(id1, id3)+`}`)
	call("getClientIdByUid", `{"uid":"carol"}`, `{"result":[]}`)
	call("getUidByClientId", fmt.Sprintf(`{"client_id":%q}`, id2), `{"result":"bob"}`)
	call("getAllUidList", ``, `{"result":["alice","bob"]}`)
	call("getAllUidCount", ``, `{"result":2}`)
	call("getUidListByGroup", `{"group":"lobby"}`, `{"result":["alice","bob"]}`)
	call("getUidCountByGroup", `{"group":"lobby"}`, `{"result":2}`)
	call("unbindUid", fmt.Sprintf(`{"client_id":%q,"uid":"alice"}`, id3), `{"result":true}`)
	call("getUidByClientId", fmt.Sprintf(`{"client_id":%q}`, id3), `{"result":null}`)

	call("setSession", fmt.Sprintf(`{"client_id":%q,"session":{"name":"Alice","n":1}}`, id1), `{"ok":true}`)
	call("updateSession", fmt.Sprintf(`{"client_id":%q,"session":{"n":2}}`, id1), `{"ok":true}`)
	call("getSession", fmt.Sprintf(`{"client_id":%q}`, id1), `{"result":{"name":"Alice","n":2}}`)
	call("getSession", fmt.Sprintf(`{"client_id":%q}`, id2), `{"result":{}}`)
	call("getAllClientSessions", ``,
		fmt.Sprintf(`{"result":{%q:{"name":"Alice","n":2},%q:{},%q:{}}}`, id1, id2, id3))
	call("getClientSessionsByGroup", `{"group":"room"}`, fmt.Sprintf(`{"result":{%q:{"name":"Alice","n":2}}}`, id1))

	call("isOnline", fmt.Sprintf(`{"client_id":%q}`, id1), `{"result":true}`)
	call("isOnline", `{"client_id":"7f00000100000000ffff"}`, `{"result":false}`)
	call("getAllClientIdCount", ``, `{"result":3}`)
	call("getAllClientIdList", ``, `{"result":`+sorted(id1, id2, id3)+`}`)
	call("ungroup", `{"group":"lobby"}`, `{"result":2}`)
	call("getAllGroupIdList", `{}`, `{"result":["room"]}`)

	call("closeClient", fmt.Sprintf(`{"client_id":%q,"data":"bye"}`, id3), `{"ok":true}`)
	if got := p3.Read(); got != "bye" {
		t.Errorf("last message = %q, want bye", got)
	}
	if _, err := p3.ReadErr(5 * time.Second); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("after closeClient: %v, want close 1000", err)
	}
	call("destroyClient", fmt.Sprintf(`{"client_id":%q}`, id2), `{"ok":true}`)
	if _, err := p2.ReadErr(5 * time.Second); err == nil {
		t.Errorf("text client still open after destroyClient")
	}

	for _, m := range gateway.Methods() {
		if !called[m] {
			t.Errorf("method %s not exercised over HTTP", m)
		}
	}
	if got := e.api.Stats(); got.Failed != 0 || got.Calls == 0 {
		t.Errorf("Stats = %+v, want calls and no failures", got)
	}
}

func TestAuth(t *testing.T) {
	e := start(t, Options{})
	for _, tc := range []struct {
		name   string
		header string // Authorization; "" sends none
		want   int
	}{
		{"missing", "", http.StatusUnauthorized},
		{"wrong", "Bearer nope", http.StatusUnauthorized},
		{"empty token", "Bearer ", http.StatusUnauthorized},
		{"prefix of secret", "Bearer " + testSecret[:4], http.StatusUnauthorized},
		{"secret plus more", "Bearer " + testSecret + "x", http.StatusUnauthorized},
		{"other scheme", "Basic " + testSecret, http.StatusUnauthorized},
		{"no scheme", testSecret, http.StatusUnauthorized},
		{"right", "Bearer " + testSecret, http.StatusOK},
		{"scheme in lower case", "bearer " + testSecret, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.apiURL+"/api/getAllClientIdCount", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			res, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Errorf("got status %d, want %d", res.StatusCode, tc.want)
			}
			wa := res.Header.Get("WWW-Authenticate")
			if tc.want == http.StatusUnauthorized && !strings.HasPrefix(wa, "Bearer") {
				t.Errorf("got WWW-Authenticate %q, want Bearer", wa)
			}
		})
	}
	if got := e.api.Stats().Unauthorized; got != 7 {
		t.Errorf("Stats().Unauthorized = %d, want 7", got)
	}
}

// TestTokenCompareOnDigests checks that the server keeps only the
// secret's SHA-256 digest (so every comparison is of 32 bytes against
// 32 bytes, whatever the token's length) and compares against it.
func TestTokenCompareOnDigests(t *testing.T) {
	s, err := New(gateway.New(gateway.Options{}), Options{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if s.secret != bearer.New(testSecret) {
		t.Errorf("the server's token is not the secret's digest")
	}
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.String && f.String() == testSecret {
			t.Errorf("Server keeps the secret in field %s", v.Type().Field(i).Name)
		}
	}
	for _, tc := range []struct {
		token string
		want  bool
	}{
		{testSecret, true},
		{"", false},
		{testSecret[:len(testSecret)-1], false},
		{testSecret + testSecret, false},
		{strings.Repeat("x", len(testSecret)), false},
	} {
		if got := s.secret.Matches(tc.token); got != tc.want {
			t.Errorf("Matches(%q) = %v, want %v", tc.token, got, tc.want)
		}
	}
}

func TestErrors(t *testing.T) {
	e := start(t, Options{MaxBodyBytes: 256})
	p := e.connect(t, "text")
	missing := "7f00000100000000ffff"
	for _, tc := range []struct {
		name, method, path, ctype, body string
		want                            int
		wantMsg                         string // in "error"
	}{
		{"bad JSON", "POST", "/api/sendToAll", "application/json", `{"data":`, 400, "bad JSON"},
		{"not an object", "POST", "/api/sendToAll", "application/json", `["x"]`, 400, "bad JSON"},
		{"trailing data", "POST", "/api/sendToAll", "application/json", `{"data":"x"} {}`, 400, "data after the object"},
		{"unknown field", "POST", "/api/sendToGroup", "application/json", `{"grup":"g","data":"x"}`, 400, `unknown field \"grup\"`},
		{"missing client_id", "POST", "/api/sendToClient", "application/json", `{"data":"x"}`, 400, "client_id is required"},
		{"missing group", "POST", "/api/joinGroup", "application/json", fmt.Sprintf(`{"client_id":%q}`, p.ID), 400, "group or groups is required"},
		{"missing uid", "POST", "/api/bindUid", "application/json", fmt.Sprintf(`{"client_id":%q}`, p.ID), 400, "uid is required"},
		{"missing data", "POST", "/api/sendToAll", "application/json", `{}`, 400, "data is required"},
		{"null data", "POST", "/api/sendToUid", "application/json", `{"uid":"u","data":null}`, 400, "data is required"},
		{"missing session", "POST", "/api/setSession", "application/json", fmt.Sprintf(`{"client_id":%q}`, p.ID), 400, "session is required"},
		{"method mismatch", "POST", "/api/sendToAll", "application/json", `{"method":"ungroup","data":"x"}`, 400, "does not match"},
		{"unknown client", "POST", "/api/sendToClient", "application/json", fmt.Sprintf(`{"client_id":%q,"data":"x"}`, missing), 404, missing},
		{"unknown client for getSession", "POST", "/api/getSession", "", fmt.Sprintf(`{"client_id":%q}`, missing), 404, "not found"},
		{"unknown method", "POST", "/api/sendToMars", "application/json", `{}`, 404, `unknown method \"sendToMars\"`},
		{"not under /api/", "POST", "/other", "application/json", `{}`, 404, "not found"},
		{"GET", "GET", "/api/getAllClientIdCount", "", ``, 405, "use POST"},
		{"too large", "POST", "/api/sendToAll", "application/json", `{"data":"` + strings.Repeat("x", 300) + `"}`, 413, "larger than 256"},
		{"form content type", "POST", "/api/sendToAll", "application/x-www-form-urlencoded", `{"data":"x"}`, 415, "not application/json"},
		{"text content type", "POST", "/api/sendToAll", "text/plain", `{"data":"x"}`, 415, "not application/json"},
		{"JSON with charset", "POST", "/api/getAllClientIdCount", "application/json; charset=utf-8", `{}`, 200, ""},
		{"no content type", "POST", "/api/getAllClientIdCount", "", `{}`, 200, ""},
		{"empty body", "POST", "/api/getAllClientIdCount", "application/json", ``, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.post(t, tc.method, tc.path, testSecret, tc.ctype, tc.body)
			if got.status != tc.want {
				t.Errorf("got status %d (%s), want %d", got.status, got.body, tc.want)
			}
			if tc.wantMsg != "" && (!strings.Contains(got.body, `"error":"`) || !strings.Contains(got.body, tc.wantMsg)) {
				t.Errorf("got body %s, want an error containing %s", got.body, tc.wantMsg)
			}
			if ct := got.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("got Content-Type %q, want application/json", ct)
			}
			if tc.want == 405 && got.header.Get("Allow") != "POST" {
				t.Errorf("got Allow %q, want POST", got.header.Get("Allow"))
			}
		})
	}
	// None of the refused sends reached the client.
	e.Hub.SendToAll([]byte("marker"), nil, nil)
	if got := p.Read(); got != "marker" {
		t.Errorf("client got %q, want only the marker", got)
	}
}

func TestBatch(t *testing.T) {
	e := start(t, Options{})
	p1 := e.connect(t, "websocket")
	p2 := e.connect(t, "text")
	body := fmt.Sprintf(`{"calls":[
		{"method":"joinGroup","client_id":%q,"group":"g"},
		{"method":"sendToClient","client_id":"7f00000100000000ffff","data":"lost"},
		{"method":"sendToGroup","group":"g","data":"to g"},
		{"method":"nope"},
		{"data":"no method"},
		{"method":"sendToAll","dta":"typo"},
		{"method":"getClientIdListByGroup","group":"g"},
		{"method":"sendToAll","data":{"n":1}}
	]}`, p2.ID)
	got := e.call(t, "batch", body)
	want := normalize(fmt.Sprintf(`{"results":[
		{"result":true},
		{"error":"client \"7f00000100000000ffff\" not found: gateway: client not found","status":404},
		{"result":1},
		{"error":"unknown method \"nope\"","status":404},
		{"error":"method is required","status":400},
		{"error":"bad JSON: json: unknown field \"dta\"","status":400},
		{"result":[%q]},
		{"result":2}
	]}`, p2.ID))
	if got.status != http.StatusOK || got.body != want {
		t.Fatalf("batch: got %d %s\nwant 200 %s", got.status, got.body, want)
	}
	// The calls ran in order: p2 got "to g" before the broadcast.
	if m := p2.Read(); m != "to g" {
		t.Errorf("client in g got %q, want %q", m, "to g")
	}
	for _, p := range []*gatewaytest.Peer{p1, p2} {
		if m := p.Read(); m != `{"n":1}` {
			t.Errorf("client %s got %q, want %q", p.ID, m, `{"n":1}`)
		}
	}
	if st := e.api.Stats(); st.Calls != 8 || st.Failed != 4 {
		t.Errorf("Stats = %+v, want 8 calls, 4 failed", st)
	}

	for _, tc := range []struct {
		name, body, wantMsg string
	}{
		{"no calls", `{}`, "calls is required"},
		{"bad JSON", `{"calls":[`, "bad JSON"},
		{"calls not a list", `{"calls":{}}`, "bad JSON"},
		{"too many", `{"calls":[` + strings.Repeat(`{"method":"getAllClientIdCount"},`, maxBatch) + `{}]}`, "more than 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.call(t, "batch", tc.body)
			if got.status != http.StatusBadRequest || !strings.Contains(got.body, tc.wantMsg) {
				t.Errorf("got %d %s, want 400 with %q", got.status, got.body, tc.wantMsg)
			}
		})
	}
	if got := e.call(t, "batch", `{"calls":[]}`); got.status != 200 || got.body != `{"results":[]}` {
		t.Errorf("empty batch: got %d %s, want 200 {\"results\":[]}", got.status, got.body)
	}
}

func TestNewValidates(t *testing.T) {
	hub := gateway.New(gateway.Options{})
	for _, tc := range []struct {
		name    string
		hub     *gateway.Hub
		opts    Options
		wantErr string
	}{
		{"ok", hub, Options{Secret: "x"}, ""},
		{"no secret", hub, Options{}, "secret is required"},
		{"secret with newline", hub, Options{Secret: "abc\n"}, "white space"},
		{"negative max", hub, Options{Secret: "x", MaxBodyBytes: -1}, "negative"},
		{"nil hub", nil, Options{Secret: "x"}, "hub is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.hub, tc.opts)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("got error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestServe(t *testing.T) {
	hub := gateway.New(gateway.Options{})
	s, err := New(hub, Options{Secret: testSecret, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln := testutil.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	e := &env{apiURL: "http://" + ln.Addr().String(), client: &http.Client{Timeout: 5 * time.Second}}
	if got := e.call(t, "getAllClientIdCount", ""); got.status != 200 || got.body != `{"result":0}` {
		t.Errorf("got %d %s, want 200 {\"result\":0}", got.status, got.body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after ctx ended")
	}
}
