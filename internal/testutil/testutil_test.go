package testutil

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLeafChainVerifiesWithRootOnly(t *testing.T) {
	root := NewCA(t, "test root")
	inter := root.Intermediate(t, "test intermediate")
	tests := []struct {
		name      string
		ca        *CA
		wantChain int // certificates in Leaf.CertPEM
	}{
		{"from root", root, 1},
		{"from intermediate", inter, 2},
		{"from second intermediate", inter.Intermediate(t, "test intermediate 2"), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf := tt.ca.Leaf(t, LeafOptions{Hosts: []string{"chat.example.com", "127.0.0.1"}})
			if got := countPEM(t, leaf.CertPEM); got != tt.wantChain {
				t.Errorf("CertPEM holds %d certificates, want %d", got, tt.wantChain)
			}
			if got := len(leaf.Cert.Certificate); got != tt.wantChain {
				t.Errorf("Cert.Certificate holds %d certificates, want %d", got, tt.wantChain)
			}
			inters := x509.NewCertPool()
			for _, der := range leaf.Cert.Certificate[1:] {
				c, err := x509.ParseCertificate(der)
				if err != nil {
					t.Fatal(err)
				}
				inters.AddCert(c)
			}
			for _, host := range []string{"chat.example.com", "127.0.0.1"} {
				_, err := leaf.X509.Verify(x509.VerifyOptions{DNSName: host, Roots: tt.ca.Pool(), Intermediates: inters})
				if err != nil {
					t.Errorf("verify for %s: got %v, want nil", host, err)
				}
			}
			if !bytes.Equal(tt.ca.Root().CertPEM(), root.CertPEM()) {
				t.Errorf("Root() is not the root CA")
			}
		})
	}
}

func TestLeafKeys(t *testing.T) {
	ca := NewCA(t, "test root")
	tests := []struct {
		key     string
		check   func(any) bool
		wantRSA int // RSA modulus bits; 0 for other keys
	}{
		{"", func(k any) bool { _, ok := k.(*ecdsa.PrivateKey); return ok }, 0},
		{"ecdsa", func(k any) bool { _, ok := k.(*ecdsa.PrivateKey); return ok }, 0},
		{"rsa", func(k any) bool { _, ok := k.(*rsa.PrivateKey); return ok }, 2048},
		{"rsa1024", func(k any) bool { _, ok := k.(*rsa.PrivateKey); return ok }, 1024},
		{"ed25519", func(k any) bool { _, ok := k.(ed25519.PrivateKey); return ok }, 0},
	}
	for _, tt := range tests {
		t.Run("key="+tt.key, func(t *testing.T) {
			leaf := ca.Leaf(t, LeafOptions{Hosts: []string{"a.test"}, Key: tt.key})
			if !tt.check(leaf.Cert.PrivateKey) {
				t.Errorf("got key %T, want %q", leaf.Cert.PrivateKey, tt.key)
			}
			if k, ok := leaf.Cert.PrivateKey.(*rsa.PrivateKey); ok && k.N.BitLen() != tt.wantRSA {
				t.Errorf("got %d-bit RSA key, want %d", k.N.BitLen(), tt.wantRSA)
			}
			if _, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM); err != nil {
				t.Errorf("X509KeyPair: got %v, want nil", err)
			}
		})
	}
}

func TestLeafValidity(t *testing.T) {
	ca := NewCA(t, "test root")
	nb, na := time.Now().Add(-48*time.Hour).Truncate(time.Second), time.Now().Add(-24*time.Hour).Truncate(time.Second)
	leaf := ca.Leaf(t, LeafOptions{NotBefore: nb, NotAfter: na})
	if !leaf.X509.NotBefore.Equal(nb) || !leaf.X509.NotAfter.Equal(na) {
		t.Errorf("got validity %v..%v, want %v..%v", leaf.X509.NotBefore, leaf.X509.NotAfter, nb, na)
	}
	def := ca.Leaf(t, LeafOptions{})
	if now := time.Now(); !def.X509.NotBefore.Before(now) || def.X509.NotAfter.Before(now.Add(23*time.Hour)) {
		t.Errorf("default validity %v..%v does not span now-1h..now+24h", def.X509.NotBefore, def.X509.NotAfter)
	}
}

func TestWriteFiles(t *testing.T) {
	ca := NewCA(t, "test root").Intermediate(t, "test intermediate")
	dir := t.TempDir()
	a := ca.Leaf(t, LeafOptions{Hosts: []string{"*.example.com"}})
	b := ca.Leaf(t, LeafOptions{Hosts: []string{"*.example.com"}})
	certA, keyA := a.WriteFiles(t, dir)
	certB, keyB := b.WriteFiles(t, dir)
	if certA == certB || keyA == keyB {
		t.Fatalf("two leaves got the same files: %s %s", certA, keyA)
	}
	for _, f := range []string{certA, keyA} {
		if filepath.Dir(f) != dir {
			t.Errorf("got %s, want a file in %s", f, dir)
		}
	}
	if fi, err := os.Stat(keyA); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: got %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	cert, err := tls.LoadX509KeyPair(certA, keyA)
	if err != nil {
		t.Fatalf("LoadX509KeyPair: got %v, want nil", err)
	}
	if got := len(cert.Certificate); got != 2 {
		t.Errorf("loaded chain has %d certificates, want 2", got)
	}
}

func TestLogger(t *testing.T) {
	log := Logger(t)
	if !log.Enabled(t.Context(), slog.LevelDebug) {
		t.Errorf("debug level disabled, want enabled")
	}
	log.Debug("visible with -v", "k", "v")
}

func TestListenAndFreeAddr(t *testing.T) {
	ln := Listen(t)
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); host != "127.0.0.1" {
		t.Errorf("Listen: got host %s, want 127.0.0.1", host)
	}
	addr := FreeAddr(t)
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on FreeAddr %s: got %v, want nil", addr, err)
	}
	ln2.Close()
}

func countPEM(t *testing.T, data []byte) int {
	t.Helper()
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return n
		}
		if b.Type != "CERTIFICATE" {
			t.Fatalf("unexpected PEM block %q", b.Type)
		}
		n++
	}
}

func TestStartRedis(t *testing.T) {
	r := StartRedis(t)
	if got, err := r.Do("SET", "k", "v"); err != nil || got != "OK" {
		t.Fatalf("SET = %q, %v; want OK", got, err)
	}
	if got, _ := r.Do("GET", "k"); got != "v" {
		t.Fatalf("GET = %q, want v", got)
	}
	pid := r.PID()
	r.Restart()
	if r.PID() == pid || r.PID() == 0 {
		t.Fatalf("PID after restart = %d, was %d", r.PID(), pid)
	}
	if got, _ := r.Do("EXISTS", "k"); got != "0" {
		t.Fatalf("EXISTS after restart = %q, want 0 (no persistence)", got)
	}
	r.Stop()
	if err := redisPing(r.Addr); err == nil {
		t.Fatal("PING answered after Stop")
	}
}
