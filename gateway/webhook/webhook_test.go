package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wssgate/wssgate/gateway"
	"github.com/wssgate/wssgate/gateway/gatewaytest"
	"github.com/wssgate/wssgate/internal/testutil"
)

// TestEventsInOrderPerClient has three clients (two WebSocket, one
// text) send 50 messages each at the same time, then leave; the app,
// which checks every signature, must see each client's events in order:
// connect, websocket_connect (WebSocket only), its 50 messages, close.
func TestEventsInOrderPerClient(t *testing.T) {
	a := newApp(t, nil)
	e := start(t, a.srv.URL, Options{})
	transports := []string{"websocket", "text", "websocket"}
	peers := make([]*gatewaytest.Peer, len(transports))
	for i, tr := range transports {
		peers[i] = e.dial(t, tr)
	}
	const n = 50
	before := time.Now().Unix()
	var wg sync.WaitGroup
	for k, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if err := p.SendErr(fmt.Sprintf("c%d-m%d", k, i)); err != nil {
					t.Errorf("client %d: send: %v", k, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	a.waitFor("all messages", func(evs []Event) bool { return count(evs, EventMessage) == n*len(peers) })
	for _, p := range peers {
		p.Close()
	}
	evs := a.waitFor("all closes", func(evs []Event) bool { return count(evs, EventClose) == len(peers) })

	byClient := make(map[string][]Event)
	for _, ev := range evs {
		byClient[ev.ClientID] = append(byClient[ev.ClientID], ev)
	}
	if len(byClient) != len(peers) {
		t.Fatalf("events for %d client ids, want %d", len(byClient), len(peers))
	}
	seen := make(map[int]bool)
	for id, evs := range byClient {
		var names []string
		var k = -1
		for _, ev := range evs {
			names = append(names, ev.Event)
			if ev.Transport == "" || ev.IP != "127.0.0.1" || ev.Port == 0 || ev.Time < before || ev.Time > time.Now().Unix() {
				t.Errorf("client %s: event %+v lacks transport, address or a plausible time", id, ev)
			}
			if ev.Event == EventWebSocketConnect && (ev.Path != "/wss" || ev.Query.Get("token") != "t1" ||
				ev.Cookies["laravel_session"] != "abc" || ev.Header.Get("X-App") != "demo") {
				t.Errorf("client %s: websocket_connect = %+v, want the upgrade request's path, query, cookies and header", id, ev)
			}
			if ev.Event == EventMessage && k < 0 && ev.Data != nil {
				fmt.Sscanf(*ev.Data, "c%d-", &k)
			}
		}
		if k < 0 || k >= len(peers) || seen[k] {
			t.Fatalf("client %s: cannot tell which test client it is (k=%d)", id, k)
		}
		seen[k] = true
		want := []string{EventConnect}
		if transports[k] == "websocket" {
			want = append(want, EventWebSocketConnect)
		}
		for range n {
			want = append(want, EventMessage)
		}
		want = append(want, EventClose)
		if !reflect.DeepEqual(names, want) {
			t.Errorf("client %d (%s): got events %v, want %v", k, transports[k], names, want)
			continue
		}
		for i, ev := range evs[len(want)-n-1 : len(want)-1] {
			if got, w := *ev.Data, fmt.Sprintf("c%d-m%d", k, i); got != w {
				t.Errorf("client %d: message %d = %q, want %q", k, i, got, w)
			}
		}
	}
	// The app records an event before its answer reaches the handler.
	for deadline := time.Now().Add(5 * time.Second); e.wh.Stats().Delivered < int64(len(evs)) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if st := e.wh.Stats(); st.Delivered != int64(len(evs)) || st.Dropped != 0 {
		t.Errorf("Stats = %+v, want %d delivered, none dropped", st, len(evs))
	}
}

// TestEventBodies pins the JSON of each event with a fixed clock.
func TestEventBodies(t *testing.T) {
	a := newApp(t, nil)
	h := newHandler(t, a.srv.URL, Options{})
	h.now = func() time.Time { return time.Unix(1767225600, 0) }
	ci := gateway.ClientInfo{ID: "7f0000010b5600000001", Addr: netip.MustParseAddrPort("203.0.113.7:51234"), Transport: "websocket"}
	h.OnConnect(ci)
	h.OnWebSocketConnect(ci, &gateway.WebSocketRequest{
		Path: "/wss", Header: http.Header{"X-App": {"demo"}}, Query: map[string][]string{"t": {"1"}}, Cookies: map[string]string{"s": "x"},
	})
	h.OnMessage(ci, []byte("hello"))
	h.OnMessage(ci, []byte(""))
	h.OnMessage(ci, []byte{0xff, 0x00})
	closing := ci
	closing.UID, closing.Session = "42", gateway.Session{"name": "Alice"}
	h.OnClose(closing)

	const head = `{"event":"%s","client_id":"7f0000010b5600000001","ip":"203.0.113.7","port":51234,"transport":"websocket","time":1767225600%s}`
	want := []string{
		fmt.Sprintf(head, "connect", ""),
		fmt.Sprintf(head, "websocket_connect", `,"path":"/wss","header":{"X-App":["demo"]},"query":{"t":["1"]},"cookies":{"s":"x"}`),
		fmt.Sprintf(head, "message", `,"data":"hello"`),
		fmt.Sprintf(head, "message", `,"data":""`),
		fmt.Sprintf(head, "message", `,"data_base64":"/wA="`),
		fmt.Sprintf(head, "close", `,"uid":"42","session":{"name":"Alice"}`),
	}
	_, got := a.received()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got bodies\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSign(t *testing.T) {
	// RFC 4231-style check with a well-known HMAC-SHA256 vector.
	got := Sign([]byte("key"), []byte("The quick brown fox jumps over the lazy dog"))
	want := "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

// TestRetries checks which failures are retried, how often, and that
// every attempt carries the same body.
func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name         string
		retries      int
		statuses     []int // answers in turn; the last repeats
		wantAttempts int
		wantDropped  int64
	}{
		{"500 then success", 3, []int{500, 502, 200}, 3, 0},
		{"always 503 gives up", 2, []int{503}, 3, 1},
		{"400 not retried", 3, []int{400}, 1, 1},
		{"404 not retried", 3, []int{404}, 1, 1},
		{"redirect not followed", 3, []int{302}, 1, 1},
		{"negative retries: one attempt", -1, []int{500}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			a := newApp(t, func(Event) (int, string) {
				i := int(n.Add(1)) - 1
				st := tc.statuses[min(i, len(tc.statuses)-1)]
				return st, ""
			})
			h := newHandler(t, a.srv.URL, Options{Retries: tc.retries})
			h.OnMessage(gateway.ClientInfo{ID: "7f0000010b5600000001", Transport: "text"}, []byte("x"))
			_, bodies := a.received()
			if len(bodies) != tc.wantAttempts {
				t.Fatalf("got %d attempts, want %d", len(bodies), tc.wantAttempts)
			}
			for _, b := range bodies[1:] {
				if b != bodies[0] {
					t.Errorf("retry body %s differs from first %s", b, bodies[0])
				}
			}
			st := h.Stats()
			if st.Dropped != tc.wantDropped || st.Retries != int64(tc.wantAttempts-1) || st.Delivered != 1-tc.wantDropped {
				t.Errorf("Stats = %+v, want %d dropped, %d retries", st, tc.wantDropped, tc.wantAttempts-1)
			}
		})
	}

	t.Run("network error retried", func(t *testing.T) {
		ln := testutil.Listen(t)
		url := "http://" + ln.Addr().String()
		ln.Close() // nothing listens there now
		h := newHandler(t, url, Options{Retries: 2})
		h.OnConnect(gateway.ClientInfo{ID: "7f0000010b5600000001", Transport: "text"})
		if st := h.Stats(); st.Retries != 2 || st.Dropped != 1 {
			t.Errorf("Stats = %+v, want 2 retries, 1 dropped", st)
		}
	})
}

// silentApp is an app that never answers; it counts the requests.
func silentApp(t *testing.T) (url string, attempts *atomic.Int32) {
	release := make(chan struct{})
	attempts = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv.URL, attempts
}

// TestTimeoutBounded has an app that never answers: each attempt ends
// after Timeout and the event is dropped after Retries+1 attempts.
func TestTimeoutBounded(t *testing.T) {
	url, attempts := silentApp(t)
	const timeout = 100 * time.Millisecond
	h := newHandler(t, url, Options{Timeout: timeout, Retries: 2})
	start := time.Now()
	h.OnMessage(gateway.ClientInfo{ID: "7f0000010b5600000001", Transport: "text"}, []byte("x"))
	took := time.Since(start)
	if got := attempts.Load(); got != 3 {
		t.Errorf("got %d attempts, want 3", got)
	}
	if took < 3*timeout || took > 3*timeout+time.Second {
		t.Errorf("delivery took %v, want about %v", took, 3*timeout)
	}
	if st := h.Stats(); st.Dropped != 1 {
		t.Errorf("Stats = %+v, want 1 dropped", st)
	}
}

// TestCloseEndsDelivery: Close ends a delivery waiting on the app and
// drops later events at once.
func TestCloseEndsDelivery(t *testing.T) {
	url, attempts := silentApp(t)
	h := newHandler(t, url, Options{Timeout: time.Minute})
	ci := gateway.ClientInfo{ID: "7f0000010b5600000001", Transport: "text"}
	done := make(chan struct{})
	go func() { defer close(done); h.OnMessage(ci, []byte("x")) }()
	for attempts.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	h.Close()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("delivery still running 2s after Close")
	}
	h.OnClose(ci)
	if got := attempts.Load(); got != 1 {
		t.Errorf("got %d attempts, want 1 (none after Close)", got)
	}
	if st := h.Stats(); st.Dropped != 2 {
		t.Errorf("Stats = %+v, want 2 dropped", st)
	}
}

// TestActions has the app answer messages with actions and checks their
// effects on real clients and on the hub.
func TestActions(t *testing.T) {
	a := newApp(t, func(ev Event) (int, string) {
		var actions []map[string]any
		switch ev.Event {
		case EventConnect:
			actions = append(actions, map[string]any{"method": "reply", "data": "welcome"})
		case EventClose:
			actions = append(actions,
				map[string]any{"method": "reply", "data": "too late"}, // the client is gone
				map[string]any{"method": "sendToGroup", "group": "g", "data": "left " + ev.ClientID})
		case EventMessage:
			cmd, arg, _ := strings.Cut(*ev.Data, " ")
			switch cmd {
			case "whoami":
				actions = append(actions, map[string]any{"method": "reply", "data": ev.ClientID})
			case "join":
				actions = append(actions,
					map[string]any{"method": "joinGroup", "group": arg},
					map[string]any{"method": "sendToGroup", "group": arg, "data": map[string]string{"joined": ev.ClientID}})
			case "bind":
				actions = append(actions, map[string]any{"method": "bindUid", "uid": arg})
			case "session":
				actions = append(actions, map[string]any{"method": "setSession", "session": map[string]string{"k": arg}})
			case "bad":
				actions = append(actions,
					map[string]any{"method": "nope"},
					map[string]any{"method": "sendToAll", "grp": "x"},
					map[string]any{"method": "reply"},
					map[string]any{"method": "sendToClient", "client_id": "7f00000100000000ffff", "data": "x"},
					map[string]any{"method": "reply", "data": "after bad"})
			case "text":
				return 200, "OK" // not JSON: no actions
			}
		}
		if actions == nil {
			return 204, ""
		}
		b, _ := json.Marshal(map[string]any{"actions": actions})
		return 200, string(b)
	})
	e := start(t, a.srv.URL, Options{})

	pa := e.dial(t, "websocket")
	if got := pa.Read(); got != "welcome" {
		t.Fatalf("on connect got %q, want welcome", got)
	}
	pa.Send("whoami")
	idA := pa.Read()
	pb := e.dial(t, "text")
	if got := pb.Read(); got != "welcome" {
		t.Fatalf("on connect got %q, want welcome", got)
	}
	pb.Send("whoami")
	idB := pb.Read()

	pa.Send("join g")
	if got, want := pa.Read(), fmt.Sprintf(`{"joined":%q}`, idA); got != want {
		t.Errorf("A got %q, want %q", got, want)
	}
	pb.Send("join g")
	for name, p := range map[string]*gatewaytest.Peer{"A": pa, "B": pb} {
		if got, want := p.Read(), fmt.Sprintf(`{"joined":%q}`, idB); got != want {
			t.Errorf("%s got %q, want %q", name, got, want)
		}
	}
	if got := e.Hub.GetClientIDListByGroup("g"); len(got) != 2 {
		t.Errorf("group g = %v, want A and B", got)
	}

	pa.Send("bind alice")
	pa.Send("session v1")
	pa.Send("text")
	pa.Send("bad")
	if got := pa.Read(); got != "after bad" {
		t.Errorf("after the bad actions A got %q, want %q", got, "after bad")
	}
	if uid, err := e.Hub.GetUIDByClientID(idA); uid != "alice" || err != nil {
		t.Errorf("GetUIDByClientID(A) = %q, %v; want alice", uid, err)
	}
	// The message events after bindUid and setSession carry them.
	evs, _ := a.received()
	last := evs[len(evs)-1]
	if last.Event != EventMessage || *last.Data != "bad" || last.UID != "alice" || last.Session["k"] != "v1" {
		t.Errorf("last event = %+v, want message \"bad\" with uid alice and session k=v1", last)
	}

	pb.Close()
	if got, want := pa.Read(), "left "+idB; got != want {
		t.Errorf("A got %q, want %q", got, want)
	}
	st := e.wh.Stats()
	// Failed: nope, grp, reply without data, unknown client, reply to the gone B.
	if st.ActionErrors != 5 {
		t.Errorf("Stats = %+v, want 5 action errors", st)
	}
}

// TestActionsWithoutHub: without SetHub events are delivered and the
// actions dropped, without a panic.
func TestActionsWithoutHub(t *testing.T) {
	a := newApp(t, func(Event) (int, string) { return 200, `{"actions":[{"method":"reply","data":"x"}]}` })
	h := newHandler(t, a.srv.URL, Options{})
	h.OnConnect(gateway.ClientInfo{ID: "7f0000010b5600000001", Transport: "text"})
	if st := h.Stats(); st.Delivered != 1 || st.ActionErrors != 1 {
		t.Errorf("Stats = %+v, want 1 delivered, 1 action error", st)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"ok", Options{URL: "http://127.0.0.1:8000/events", Secret: "s"}, ""},
		{"no url", Options{Secret: "s"}, "url is required"},
		{"relative url", Options{URL: "/events", Secret: "s"}, "absolute http or https"},
		{"ftp url", Options{URL: "ftp://host/events", Secret: "s"}, "absolute http or https"},
		{"no secret", Options{URL: "http://h/e"}, "secret is required"},
		{"secret with newline", Options{URL: "http://h/e", Secret: "s\n"}, "white space"},
		{"negative timeout", Options{URL: "http://h/e", Secret: "s", Timeout: -1}, "timeout is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("got error %v, want %q", err, tc.wantErr)
			}
		})
	}
	h, err := New(Options{URL: "http://h/e", Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.timeout != DefaultTimeout || h.retries != DefaultRetries || h.client == http.DefaultClient || h.client.Timeout != 0 && h.client.Timeout < h.timeout {
		t.Errorf("defaults: timeout %v, retries %d, default client %v", h.timeout, h.retries, h.client == http.DefaultClient)
	}
}
