// Package testutil holds helpers for wssgate's _test.go files: a test PKI
// (roots, intermediates and leaf certificates in memory and on disk), a
// logger that writes through testing.TB, loopback listeners, a WebSocket
// echo backend and pebble (the test ACME CA). The gateway's test kit,
// with its test client, is gateway/gatewaytest.
//
// Every helper takes a testing.TB, calls t.Helper, fails the test with
// t.Fatal on error and releases what it opened with t.Cleanup, so tests
// stay short. The package imports nothing from the project, and nothing
// outside _test.go files may import it.
package testutil
