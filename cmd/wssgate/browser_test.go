package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wssgate/wssgate/cmd/wssgate/internal/server"
	"github.com/wssgate/wssgate/cmd/wssgate/internal/server/servertest"
	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/internal/browser"
)

// TestChatInChromium is the demo as a user meets it: `wssgate run` with
// the built-in default, the chat page opened in real headless Chromium
// through the edge over https and wss, and a telnet-like client on the
// text port. Each sees the other's message.
func TestChatInChromium(t *testing.T) {
	srv := servertest.Serve(t, defaultOnFreePorts(t), server.Options{})

	// Chromium trusts exactly the certificate the edge serves.
	addr := srv.Addr(config.ListenerHTTPS)
	tc, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	leaf := tc.ConnectionState().PeerCertificates[0]
	tc.Close()

	// The telnet user is there first.
	nc, err := net.Dial("tcp", srv.Addr(config.ListenerGatewayText))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	lines := bufio.NewReader(nc)
	readLine := func() string {
		t.Helper()
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("text client: %v", err)
		}
		return strings.TrimSuffix(l, "\n")
	}
	textID, ok := strings.CutPrefix(readLine(), "Hello ")
	if !ok {
		t.Fatal("the text client was not greeted")
	}

	began := time.Now()
	b := browser.New(t, browser.Options{Trust: []*x509.Certificate{leaf}})
	t.Logf("browser started in %v", time.Since(began))
	_, port, _ := net.SplitHostPort(addr)
	if err := chromedp.Do(b.Context(), chromedp.Navigate("https://localhost:"+port+"/")); err != nil {
		t.Fatalf("open the chat page: %v", err)
	}
	t.Logf("page opened at %v", time.Since(began))
	pageID := waitPage(t, b, "the page's client id", `document.getElementById("me").textContent`, func(s string) bool { return len(s) == 20 })
	waitPage(t, b, "the telnet user in the online list", `[...document.querySelectorAll("#online li")].map(li => li.dataset.id)`,
		func(ids []string) bool { return slices.Contains(ids, textID) })

	t.Logf("page connected at %v", time.Since(began))
	// Browser → telnet.
	if err := chromedp.Do(b.Context(),
		chromedp.SendKeys(chromedp.ID("input"), "hello from chromium"),
		chromedp.Click(chromedp.ID("send")),
	); err != nil {
		t.Fatalf("send from the page: %v", err)
	}
	for want := pageID + " said hello from chromium"; ; {
		if readLine() == want {
			break
		}
	}
	// Telnet → browser.
	nc.Write([]byte("hello from telnet\r\n"))
	waitPage(t, b, "the telnet user's message", `[...document.querySelectorAll("#log li")].map(li => li.textContent)`,
		func(lines []string) bool {
			return slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, textID+" said hello from telnet") })
		})
	t.Logf("messages crossed at %v", time.Since(began))
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

// waitPage evaluates expr in the page until ok accepts its value.
// (chromedp.Poll builds its predicate with new Function, which the
// page's Content-Security-Policy forbids.)
func waitPage[T any](t *testing.T, b *browser.Browser, what, expr string, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := chromedp.Run(b.Context(), chromedp.Evaluate[T](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; %s = %v; console errors: %q", what, expr, v, b.ConsoleErrors())
		}
		time.Sleep(25 * time.Millisecond)
	}
}
