package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/tlsconf"
)

// Example serves a site with a certificate from the internal CA and
// connects to it as a client that trusts the CA's root file.
func Example() {
	dir, err := os.MkdirTemp("", "wssgate-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	cfg := &config.Config{
		TLS:   config.TLS{MinVersion: "1.2"},
		Sites: []config.Site{{Hosts: []string{"localhost"}, TLS: config.SiteTLS{Internal: true}}},
	}
	m, err := tlsconf.New(cfg, tlsconf.Options{InternalDir: dir})
	if err != nil {
		log.Fatal(err)
	}

	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.TLSConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c, err := ln.Accept(); err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()

	// A browser trusts the site once the root file is in its trust store.
	rootPEM, err := os.ReadFile(m.RootCertFile())
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		ServerName: "localhost",
		RootCAs:    roots,
		NextProtos: []string{"http/1.1"}, // as a WebSocket client does
	})
	if err != nil {
		log.Fatal(err)
	}
	st := conn.ConnectionState()
	conn.Close()
	<-done

	fmt.Println("trust:", filepath.Base(m.RootCertFile()))
	fmt.Println("names:", st.PeerCertificates[0].DNSNames)
	fmt.Println("alpn:", st.NegotiatedProtocol)
	// Output:
	// trust: root.crt
	// names: [localhost]
	// alpn: http/1.1
}

// ExampleSiteError maps load failures back to the configuration file's
// lines, as cmd/wssgate does.
func ExampleSiteError() {
	cfg, err := config.Parse("wssgate.yaml", []byte(`
sites:
  - hosts: [chat.example.com]
    tls:
      cert_file: /nonexistent/chat.pem
      key_file: /nonexistent/chat.key
    routes:
      - path: /
        upstreams: ["ws://127.0.0.1:8282"]
`))
	if err != nil {
		log.Fatal(err)
	}
	_, err = tlsconf.New(cfg, tlsconf.Options{})
	for _, e := range config.Errors(err) {
		var se *tlsconf.SiteError
		if errors.As(e, &se) {
			fmt.Printf("%s:%d: %s: missing file: %v\n",
				cfg.Source.File, cfg.Source.Line(se.Path()), se.Path(), errors.Is(se, fs.ErrNotExist))
		}
	}
	// Output:
	// wssgate.yaml:5: sites[0].tls.cert_file: missing file: true
	// wssgate.yaml:6: sites[0].tls.key_file: missing file: true
}
