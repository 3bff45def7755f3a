// Command wsclient is a small wss:// client for trying wssgate: each line
// typed is sent as a text message, and every message received is printed.
//
//	go run ./examples/wsclient -ca ~/.config/wssgate/internal/root.crt wss://localhost:8443/wss
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	caFile := flag.String("ca", "", "PEM file of a CA to trust (such as wssgate's local root.crt); default: the system's roots")
	origin := flag.String("origin", "", "Origin header to send")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: wsclient [-ca FILE] [-origin URL] wss://host[:port]/path")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *caFile, *origin); err != nil {
		fmt.Fprintln(os.Stderr, "wsclient:", err)
		os.Exit(1)
	}
}

func run(url, caFile, origin string) error {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return err
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("no certificate in %s", caFile)
		}
	}
	d := websocket.Dialer{TLSClientConfig: tc, HandshakeTimeout: 10 * time.Second}
	h := map[string][]string{}
	if origin != "" {
		h["Origin"] = []string{origin}
	}
	c, resp, err := d.Dial(url, h)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}
		return err
	}
	defer c.Close()
	fmt.Fprintf(os.Stderr, "connected to %s; type lines to send, Ctrl-D to close\n", url)

	done := make(chan error, 1)
	go func() {
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				done <- err
				return
			}
			fmt.Printf("< %s\n", msg)
		}
	}()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if err := c.WriteMessage(websocket.TextMessage, in.Bytes()); err != nil {
			return err
		}
	}
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
	select {
	case err := <-done:
		if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			return nil
		}
		return err
	case <-time.After(2 * time.Second):
		return nil
	}
}
