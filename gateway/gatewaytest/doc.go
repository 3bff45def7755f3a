// Package gatewaytest is the test kit of package gateway and of the
// packages built on it (pushapi, webhook, chatpage, cmd/wssgate): a hub
// served on loopback ([Env]: WebSocket on an httptest server, the text
// protocol on a listener), a [Recorder] of its events, and [Peer], a test
// client of either transport.
//
// It is for _test.go files only. Like internal/testutil, every helper
// takes a testing.TB, calls t.Helper, fails the test with t.Fatal on
// error and releases what it opened with t.Cleanup. Package gateway's own
// tests that use it are in package gateway_test: package gateway cannot
// import it, since it imports gateway.
package gatewaytest
