// Package gatewaytest holds helpers for the _test.go files of the
// packages built on gateway (pushapi, webhook, chatpage): a hub served on
// loopback (the test client is testutil.Peer).
//
// Like internal/testutil, every helper takes a testing.TB, calls
// t.Helper, fails the test with t.Fatal on error and releases what it
// opened with t.Cleanup. Nothing outside _test.go files may import this
// package. Package gateway's own tests cannot import it (it imports
// gateway), so they keep their own hub setup; the test client, Peer, is
// in internal/testutil, which all of them use.
package gatewaytest
