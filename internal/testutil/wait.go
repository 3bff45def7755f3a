package testutil

import (
	"testing"
	"time"
)

// WaitFor polls cond every 10ms until it holds, and fails the test if it
// does not within 5s: for state that settles after a network event, not
// for timing the code under test. what names the state in the failure.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
