// Package poll waits in tests without synchronising on sleeps: Eventually
// (and Until) polls a condition, Within waits for a channel, each bounded by one
// patience and failing the test, saying what it waited for, past it.
//
// It imports only the standard library, so that any package's tests can
// use it; internal/vmdtest, the harness that starts whole stacks, forwards
// to it.
package poll

import (
	"testing"
	"time"
)

// Patience bounds every wait: far longer than anything takes on a loaded
// machine, so that only a real hang fails a test.
const Patience = 30 * time.Second

// Eventually polls cond until it holds; past Patience it fails the test,
// saying what it waited for. Call it from the test's goroutine only: it
// may call t.Fatalf.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Until(cond) {
		t.Fatalf("%s: not within %s", what, Patience)
	}
}

// Until polls cond until it holds, for Patience at most, and reports
// whether it held: for a caller that says more than Eventually would
// when it does not.
func Until(cond func() bool) bool {
	deadline := time.Now().Add(Patience)
	pause := 100 * time.Microsecond
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause) // polling, not synchronising: cond decides
		pause = min(2*pause, 10*time.Millisecond)
	}
	return true
}

// Within waits for ch to be closed or to deliver and returns what came;
// past Patience it fails the test, saying what it waited for. Call it
// from the test's goroutine only.
func Within[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	timer := time.NewTimer(Patience)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("%s: not within %s", what, Patience)
		var zero T
		return zero
	}
}
