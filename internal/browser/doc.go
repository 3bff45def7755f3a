// Package browser runs a real headless Chromium for tests and drives it
// with chromedp.
//
// [New] starts a fresh browser for one test, with its own profile under
// t.TempDir, and ends it (every process of it) when the test ends:
//
//	b := browser.New(t, browser.Options{Trust: []*x509.Certificate{srv.Certificate()}})
//	err := chromedp.Do(b.Context(), chromedp.Navigate(srv.URL))
//	...
//	if errs := b.ConsoleErrors(); len(errs) > 0 {
//		t.Errorf("console errors: %q", errs)
//	}
//
// Without a Chromium binary, New skips the test, or fails it when the
// environment has CI=true, so that CI cannot pass by skipping.
//
// The browser trusts a test server's certificate by its public key
// ([Options.Trust], Chromium's --ignore-certificate-errors-spki-list),
// never by ignoring certificate errors wholesale: a page or WebSocket
// on a certificate with any other key still fails. Names the
// certificate holds can be mapped to loopback with
// [Options.HostResolverRules].
//
// The package is test support: import it from _test.go files only.
package browser
