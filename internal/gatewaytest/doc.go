// Package gatewaytest holds helpers for the _test.go files of the
// packages built on gateway (pushapi, webhook, chatpage): a hub served on
// loopback and a test client of either transport.
//
// Like internal/testutil, every helper takes a testing.TB, calls
// t.Helper, fails the test with t.Fatal on error and releases what it
// opened with t.Cleanup. Nothing outside _test.go files may import this
// package. Package gateway's own tests cannot import it (it imports
// gateway), so they keep helpers of their own.
package gatewaytest
