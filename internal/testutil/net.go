package testutil

import (
	"net"
	"testing"
)

// Listen returns a TCP listener on 127.0.0.1 with a port chosen by the
// kernel. It is closed when the test ends.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil: listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// FreeAddr returns a "127.0.0.1:port" address that was free a moment ago,
// for code that insists on listening itself. Another process may take the
// port before the caller does; prefer [Listen] when a listener can be
// passed in.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil: listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("testutil: close %s: %v", addr, err)
	}
	return addr
}
