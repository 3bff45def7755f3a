package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/testutil"
	"github.com/wssgate/wssgate/tlsconf"
)

// TestTLSConfigFields checks the settings every listener gets.
func TestTLSConfigFields(t *testing.T) {
	ca := testutil.NewCA(t, "root")
	site := fileSite(t, ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"a.test"}}), "a.test")
	wantSuites := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
	tests := []struct {
		minVersion  string
		wantVersion uint16
	}{
		{"", tls.VersionTLS12},
		{"1.2", tls.VersionTLS12},
		{"1.3", tls.VersionTLS13},
	}
	for _, tt := range tests {
		t.Run("min_version="+tt.minVersion, func(t *testing.T) {
			m := newManager(t, newConfig(tt.minVersion, site), tlsconf.Options{})
			c := m.TLSConfig()
			if c.MinVersion != tt.wantVersion {
				t.Errorf("MinVersion: got %s, want %s", versionName(c.MinVersion), versionName(tt.wantVersion))
			}
			if got := slices.Sorted(slices.Values(c.CipherSuites)); !slices.Equal(got, slices.Sorted(slices.Values(wantSuites))) {
				t.Errorf("CipherSuites: got %v, want %v", suiteNames(got), suiteNames(wantSuites))
			}
			if want := []string{"h2", "http/1.1"}; !slices.Equal(c.NextProtos, want) {
				t.Errorf("NextProtos: got %q, want %q", c.NextProtos, want)
			}
			// Each call returns the caller's own copy.
			c.NextProtos[0], c.MinVersion = "changed", tls.VersionTLS10
			if c2 := m.TLSConfig(); c2 == c || c2.NextProtos[0] != "h2" || c2.MinVersion != tt.wantVersion {
				t.Errorf("TLSConfig: a change to one result reached the next (%q, %s)", c2.NextProtos, versionName(c2.MinVersion))
			}
		})
	}
}

// TestProtocolVersions proves TLS 1.0 and 1.1 clients are refused, TLS 1.2
// is accepted unless min_version is "1.3", and TLS 1.3 always is.
func TestProtocolVersions(t *testing.T) {
	ca := testutil.NewCA(t, "root")
	site := fileSite(t, ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"a.test"}}), "a.test")
	tests := []struct {
		minVersion string
		client     uint16
		wantOK     bool
	}{
		{"1.2", tls.VersionTLS10, false},
		{"1.2", tls.VersionTLS11, false},
		{"1.2", tls.VersionTLS12, true},
		{"1.2", tls.VersionTLS13, true},
		{"1.3", tls.VersionTLS10, false},
		{"1.3", tls.VersionTLS11, false},
		{"1.3", tls.VersionTLS12, false},
		{"1.3", tls.VersionTLS13, true},
	}
	addrs := map[string]string{}
	for _, mv := range []string{"1.2", "1.3"} {
		addrs[mv] = serve(t, newManager(t, newConfig(mv, site), tlsconf.Options{}).TLSConfig())
	}
	for _, tt := range tests {
		t.Run("min="+tt.minVersion+"/client="+versionName(tt.client), func(t *testing.T) {
			st, err := handshake(t, addrs[tt.minVersion], &tls.Config{
				ServerName: "a.test",
				RootCAs:    ca.Pool(),
				MinVersion: tt.client,
				MaxVersion: tt.client,
			})
			switch {
			case tt.wantOK && err != nil:
				t.Fatalf("handshake: got %v, want success", err)
			case tt.wantOK && st.Version != tt.client:
				t.Errorf("version: got %s, want %s", versionName(st.Version), versionName(tt.client))
			case !tt.wantOK && err == nil:
				t.Fatalf("handshake: got success with %s, want refusal", versionName(st.Version))
			case !tt.wantOK && !strings.Contains(err.Error(), "protocol version not supported"):
				t.Errorf("handshake: got %v, want a protocol version alert", err)
			}
		})
	}
}

// TestCipherSuites proves a TLS 1.2 client gets each ECDHE+AEAD suite with
// a matching key, and is refused when it offers only a CBC, 3DES or RSA
// key exchange suite, which a permissive server does accept from the same
// client.
func TestCipherSuites(t *testing.T) {
	ca := testutil.NewCA(t, "root")
	ecLeaf := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"ecdsa.test"}})
	rsaLeaf := ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"rsa.test"}, Key: "rsa"})
	m := newManager(t, newConfig("1.2", fileSite(t, ecLeaf, "ecdsa.test"), fileSite(t, rsaLeaf, "rsa.test")), tlsconf.Options{})
	addr := serve(t, m.TLSConfig())

	weak := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
		tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	}
	permissive := serve(t, &tls.Config{
		Certificates: []tls.Certificate{ecLeaf.Cert, rsaLeaf.Cert},
		CipherSuites: weak,
	})

	tests := []struct {
		host   string
		suite  uint16
		wantOK bool
	}{
		{"ecdsa.test", tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
		{"ecdsa.test", tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, true},
		{"ecdsa.test", tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true},
		{"rsa.test", tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, true},
		{"rsa.test", tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, true},
		{"rsa.test", tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, true},
		{"ecdsa.test", tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
		{"rsa.test", tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, false},
		{"rsa.test", tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, false},
		{"rsa.test", tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, false},
		{"rsa.test", tls.TLS_RSA_WITH_AES_128_GCM_SHA256, false},
		{"rsa.test", tls.TLS_RSA_WITH_AES_256_CBC_SHA, false},
	}
	for _, tt := range tests {
		t.Run(tls.CipherSuiteName(tt.suite), func(t *testing.T) {
			client := &tls.Config{
				ServerName:   tt.host,
				RootCAs:      ca.Pool(),
				MaxVersion:   tls.VersionTLS12,
				CipherSuites: []uint16{tt.suite},
			}
			st, err := handshake(t, addr, client)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("handshake: got %v, want success", err)
				}
				if st.CipherSuite != tt.suite {
					t.Errorf("cipher suite: got %s, want %s", tls.CipherSuiteName(st.CipherSuite), tls.CipherSuiteName(tt.suite))
				}
				return
			}
			if err == nil {
				t.Fatalf("handshake: got success with %s, want refusal", tls.CipherSuiteName(st.CipherSuite))
			}
			if !strings.Contains(err.Error(), "handshake failure") {
				t.Errorf("handshake: got %v, want a handshake failure alert", err)
			}
			if _, err := handshake(t, permissive, client); err != nil {
				t.Errorf("control: a permissive server refused the same client: %v", err)
			}
		})
	}
}

// TestALPN proves "h2" and "http/1.1" are offered, h2 preferred.
func TestALPN(t *testing.T) {
	ca := testutil.NewCA(t, "root")
	m := newManager(t, newConfig("1.2", fileSite(t, ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"a.test"}}), "a.test")), tlsconf.Options{})
	addr := serve(t, m.TLSConfig())
	tests := []struct {
		name   string
		client []string
		want   string
	}{
		{"browser", []string{"h2", "http/1.1"}, "h2"},
		{"websocket client", []string{"http/1.1"}, "http/1.1"},
		{"client prefers http/1.1", []string{"http/1.1", "h2"}, "h2"},
		{"no ALPN", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := handshake(t, addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool(), NextProtos: tt.client})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if st.NegotiatedProtocol != tt.want {
				t.Errorf("negotiated protocol: got %q, want %q", st.NegotiatedProtocol, tt.want)
			}
		})
	}
}

// TestKeysAndFullChain proves ECDSA, RSA and Ed25519 keys work in TLS 1.2
// and 1.3 and that the whole chain in cert_file is sent: a client that
// trusts only the root sees leaf + intermediate and verifies them. A
// cert_file holding only the leaf fails the same client.
func TestKeysAndFullChain(t *testing.T) {
	root := testutil.NewCA(t, "root")
	inter := root.Intermediate(t, "intermediate")
	ecLeaf := inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"ecdsa.test"}})
	rsaLeaf := inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"rsa.test"}, Key: "rsa"})
	edLeaf := inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"ed25519.test"}, Key: "ed25519"})
	weakLeaf := inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"rsa1024.test"}, Key: "rsa1024"})
	bare := inter.Leaf(t, testutil.LeafOptions{Hosts: []string{"bare.test"}})
	bare.CertPEM = bare.CertPEM[:pemEnd(bare.CertPEM)] // the leaf alone

	m := newManager(t, newConfig("1.2",
		fileSite(t, ecLeaf, "ecdsa.test"),
		fileSite(t, rsaLeaf, "rsa.test"),
		fileSite(t, edLeaf, "ed25519.test"),
		fileSite(t, weakLeaf, "rsa1024.test"),
		fileSite(t, bare, "bare.test"),
	), tlsconf.Options{})
	addr := serve(t, m.TLSConfig())

	tests := []struct {
		host    string
		leaf    *testutil.Leaf
		algo    x509.PublicKeyAlgorithm
		wantErr bool // unknown authority: the intermediate is missing
	}{
		{"ecdsa.test", ecLeaf, x509.ECDSA, false},
		{"rsa.test", rsaLeaf, x509.RSA, false},
		{"ed25519.test", edLeaf, x509.Ed25519, false},
		{"rsa1024.test", weakLeaf, x509.RSA, false},
		{"bare.test", bare, x509.ECDSA, true},
	}
	for _, tt := range tests {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(tt.host+"/"+versionName(v), func(t *testing.T) {
				st, err := handshake(t, addr, &tls.Config{ServerName: tt.host, RootCAs: root.Pool(), MinVersion: v, MaxVersion: v})
				if tt.wantErr {
					var ua x509.UnknownAuthorityError
					if !errors.As(err, &ua) {
						t.Fatalf("handshake: got %v, want x509.UnknownAuthorityError", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("handshake: got %v, want success", err)
				}
				if got := len(st.PeerCertificates); got != 2 {
					t.Fatalf("peer sent %d certificates, want 2 (leaf + intermediate)", got)
				}
				if !st.PeerCertificates[0].Equal(tt.leaf.X509) {
					t.Errorf("certificate 0: got %q, want the leaf", st.PeerCertificates[0].Subject)
				}
				if !st.PeerCertificates[1].Equal(inter.X509) {
					t.Errorf("certificate 1: got %q, want the intermediate", st.PeerCertificates[1].Subject)
				}
				if got := st.PeerCertificates[0].PublicKeyAlgorithm; got != tt.algo {
					t.Errorf("key algorithm: got %v, want %v", got, tt.algo)
				}
				if n := len(st.VerifiedChains); n == 0 || !st.VerifiedChains[0][len(st.VerifiedChains[0])-1].Equal(root.X509) {
					t.Errorf("verified chains %d, want one ending at the root", n)
				}
			})
		}
	}
}

// pemEnd returns the length of the first PEM block in data.
func pemEnd(data []byte) int {
	const end = "-----END CERTIFICATE-----\n"
	return strings.Index(string(data), end) + len(end)
}

// TestSNI proves the site is picked by SNI: exact names in any case, one
// label under a wildcard, and the first site for no SNI or an unknown
// name. The server records the SNI it received, to show what each case
// puts on the wire.
func TestSNI(t *testing.T) {
	ca := testutil.NewCA(t, "root")
	leaves := make([]*testutil.Leaf, 4)
	hosts := [][]string{
		{"default.test"},
		{"chat.example.com", "Chat2.Example.COM"},
		{"*.ws.example.com"},
		{"ws.example.com"},
	}
	var sites []config.Site
	for i, h := range hosts {
		leaves[i] = ca.Leaf(t, testutil.LeafOptions{Hosts: h})
		sites = append(sites, fileSite(t, leaves[i], h...))
	}
	m := newManager(t, newConfig("1.2", sites...), tlsconf.Options{})

	var (
		mu      sync.Mutex
		lastSNI string
	)
	cfg := m.TLSConfig()
	get := cfg.GetCertificate
	cfg.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		mu.Lock()
		lastSNI = h.ServerName
		mu.Unlock()
		return get(h)
	}
	addr := serve(t, cfg)

	tests := []struct {
		name       string
		serverName string // client's ServerName; "" sends no SNI
		wantSNI    string // what the server received
		wantSite   int
	}{
		{"no SNI", "", "", 0},
		{"unknown name", "unknown.test", "unknown.test", 0},
		{"exact", "chat.example.com", "chat.example.com", 1},
		{"exact, second host", "chat2.example.com", "chat2.example.com", 1},
		{"upper case", "CHAT.Example.com", "CHAT.Example.com", 1},
		{"trailing dot", "chat.example.com.", "chat.example.com", 1},
		{"wildcard, one label", "a.ws.example.com", "a.ws.example.com", 2},
		{"wildcard base is its own site", "ws.example.com", "ws.example.com", 3},
		{"wildcard, two labels", "a.b.ws.example.com", "a.b.ws.example.com", 0},
		{"parent of exact", "example.com", "example.com", 0},
		{"IP address (clients send no SNI)", "127.0.0.1", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := handshake(t, addr, &tls.Config{ServerName: tt.serverName, InsecureSkipVerify: true})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			mu.Lock()
			gotSNI := lastSNI
			mu.Unlock()
			if gotSNI != tt.wantSNI {
				t.Errorf("server received SNI %q, want %q", gotSNI, tt.wantSNI)
			}
			if got := siteOf(st.PeerCertificates[0], leaves); got != tt.wantSite {
				t.Errorf("got the certificate of site %d, want site %d", got, tt.wantSite)
			}
		})
	}
}

// TestGetCertificateNames calls GetCertificate directly with names a
// crypto/tls client would normalize before sending: the server must
// handle them too.
func TestGetCertificateNames(t *testing.T) {
	ca := testutil.NewCA(t, "root")
	leaves := []*testutil.Leaf{
		ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"default.test"}}),
		ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"chat.example.com"}}),
		ca.Leaf(t, testutil.LeafOptions{Hosts: []string{"*.example.org"}}),
	}
	m := newManager(t, newConfig("1.2",
		fileSite(t, leaves[0], "default.test"),
		fileSite(t, leaves[1], "CHAT.example.com."),
		fileSite(t, leaves[2], "*.Example.ORG"),
	), tlsconf.Options{})
	get := m.TLSConfig().GetCertificate
	tests := []struct {
		name string
		want int
	}{
		{"chat.example.com.", 1},
		{"Chat.Example.Com", 1},
		{"chat.example.com", 1},
		{"a.example.org.", 2},
		{"A.EXAMPLE.ORG", 2},
		{".example.org", 0},
		{"example.org", 0},
		{"a..example.org", 0},
		{".", 0},
		{"", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := get(&tls.ClientHelloInfo{ServerName: tt.name})
			if err != nil {
				t.Fatalf("GetCertificate: %v", err)
			}
			if got := siteOf(c.Leaf, leaves); got != tt.want {
				t.Errorf("got the certificate of site %d, want site %d", got, tt.want)
			}
		})
	}
}

// siteOf returns the index of the leaf equal to c, or -1.
func siteOf(c *x509.Certificate, leaves []*testutil.Leaf) int {
	return slices.IndexFunc(leaves, func(l *testutil.Leaf) bool { return l.X509.Equal(c) })
}

func suiteNames(ids []uint16) []string {
	var out []string
	for _, id := range ids {
		out = append(out, tls.CipherSuiteName(id))
	}
	return out
}
