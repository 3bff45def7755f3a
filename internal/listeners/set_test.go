package listeners

import (
	"errors"
	"net"
	"testing"
	"time"
)

func TestID(t *testing.T) {
	tests := []struct{ name, addr, want string }{
		{"https", ":443", ":443"},
		{"admin", "127.0.0.1:9180", "127.0.0.1:9180"},
		{"https", "127.0.0.1:0", "127.0.0.1:0#https"},
		{"admin", "127.0.0.1:0", "127.0.0.1:0#admin"},
	}
	for _, tt := range tests {
		if got := ID(tt.name, tt.addr); got != tt.want {
			t.Errorf("ID(%q, %q) = %q, want %q", tt.name, tt.addr, got, tt.want)
		}
	}
}

func TestSameAddr(t *testing.T) {
	tcp := func(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	tests := []struct {
		bound net.Addr
		addr  string
		want  bool
	}{
		{tcp("0.0.0.0", 443), ":443", true},
		{tcp("::", 443), "0.0.0.0:443", true},
		{tcp("::", 443), "[::]:443", true},
		{tcp("127.0.0.1", 443), ":443", false},
		{tcp("127.0.0.1", 8443), "127.0.0.1:8443", true},
		{tcp("::ffff:127.0.0.1", 8443), "127.0.0.1:8443", true},
		{tcp("127.0.0.1", 8443), "127.0.0.2:8443", false},
		{tcp("127.0.0.1", 8443), "127.0.0.1:8444", false},
		{tcp("127.0.0.1", 8443), "localhost:8443", false}, // names are not resolved
		{&net.UnixAddr{Name: "/x", Net: "unix"}, ":443", false},
	}
	for _, tt := range tests {
		if got := sameAddr(tt.bound, tt.addr); got != tt.want {
			t.Errorf("sameAddr(%v, %q) = %v, want %v", tt.bound, tt.addr, got, tt.want)
		}
	}
}

// acceptOne accepts one connection on l within 5 s.
func acceptOne(t *testing.T, l net.Listener) (net.Conn, error) {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		got <- result{c, err}
	}()
	select {
	case r := <-got:
		return r.c, r.err
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return")
		return nil, nil
	}
}

func dial(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSharedListeners checks that two servers can accept on one socket
// in turn: closing one's listener leaves the socket open for the next,
// and a second Open of the same address returns the same socket.
func TestSharedListeners(t *testing.T) {
	ss := NewSet(Options{})
	defer ss.CloseAll()
	sock, opened, err := ss.Open("https", "127.0.0.1:0")
	if err != nil || !opened {
		t.Fatalf("Open: opened %v, %v; want a new socket", opened, err)
	}
	again, opened, err := ss.Open("https", "127.0.0.1:0")
	if err != nil || opened || again != sock {
		t.Fatalf("second Open: %p opened %v, %v; want the same socket %p", again, opened, err, sock)
	}
	old := sock.Listener()
	dial(t, sock.Addr())
	c, err := acceptOne(t, old)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	next := sock.Listener()
	old.Close()
	if _, err := old.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed listener: %v, want net.ErrClosed", err)
	}
	dial(t, sock.Addr())
	c, err = acceptOne(t, next)
	if err != nil {
		t.Fatalf("the next listener: %v", err)
	}
	c.Close()
	if st := sock.Stats(); st.Total != 2 || st.Active != 0 {
		t.Errorf("stats: %+v, want 2 in total and none active", st)
	}
	if ln := ss.List(); len(ln) != 1 || ln[0].Name != "https" || ln[0].Stats.Total != 2 {
		t.Errorf("List: %+v", ln)
	}
}

// TestKeepAndRemove checks that a reload's Keep closes the sockets it
// does not name (their address is free at once) and Remove closes one.
func TestKeepAndRemove(t *testing.T) {
	ss := NewSet(Options{})
	defer ss.CloseAll()
	a, _, err := ss.Open("https", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := ss.Open("admin", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	la, lb := a.Listener(), b.Listener()
	ss.Keep(map[string]bool{ID("https", "127.0.0.1:0"): true})
	if ss.Lookup("admin", "127.0.0.1:0") != nil {
		t.Error("Keep left the admin socket open")
	}
	if _, err := acceptOne(t, lb); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a dropped socket: %v, want net.ErrClosed", err)
	}
	if _, err := net.Dial("tcp", b.Addr().String()); err == nil {
		t.Error("the dropped address still accepts connections")
	}
	dial(t, a.Addr())
	if _, err := acceptOne(t, la); err != nil {
		t.Errorf("the kept socket: %v", err)
	}
	ss.Remove(a)
	if ss.Addr("https", "127.0.0.1:0") != nil {
		t.Error("Remove left the socket listed")
	}
	if _, err := net.Listen("tcp", a.Addr().String()); err != nil {
		t.Errorf("the removed socket's address is not free: %v", err)
	}
}

// TestActivated checks that a socket passed by systemd serves the
// configured address it is bound to, and that CloseAll closes one no
// address claimed.
func TestActivated(t *testing.T) {
	claimed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unclaimed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ss := NewSet(Options{Source: failingSource{}, Activated: []net.Listener{unclaimed, claimed}})
	sock, _, err := ss.Open("https", claimed.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if sock.ln != claimed {
		t.Fatal("Open opened a socket instead of using the activated one")
	}
	ss.CloseAll()
	if _, err := net.Listen("tcp", unclaimed.Addr().String()); err != nil {
		t.Errorf("CloseAll left the unclaimed activated socket open: %v", err)
	}
	if _, _, err := ss.Open("admin", "127.0.0.1:0"); err == nil {
		t.Error("Open after CloseAll opened a socket")
	}
}
