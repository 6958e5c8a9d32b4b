// Package vmdtest is the one test harness of vmd: a stack built by the
// constructor main uses (Start), a vmd process (StartProcess), a poll with a
// deadline (Eventually), a log buffer, and process-tree and zombie counts
// read from /proc.
package vmdtest

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vmd-dev/vmd/internal/testbin"
)

// patience bounds every wait of the harness: far longer than anything takes
// on a loaded machine, so that only a real hang fails a test.
const patience = 30 * time.Second

// Eventually polls cond until it holds; past the harness's patience it
// fails the test, saying what it waited for. Call it from the test's
// goroutine only.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	pause := 100 * time.Microsecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, patience)
		}
		time.Sleep(pause) // polling, not synchronising: cond decides
		pause = min(2*pause, 10*time.Millisecond)
	}
}

// Within waits for ch to be closed or to deliver, past the harness's
// patience failing the test, saying what it waited for.
func Within[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-timeAfterPatience():
		t.Fatalf("%s: not within %s", what, patience)
		var zero T
		return zero
	}
}

func timeAfterPatience() <-chan time.Time { return time.After(patience) }

// Main is a TestMain: it builds the programs of pkgs (see testbin.Main)
// and runs the tests under goleak, allowing for the goroutines fasthttp
// keeps after a server or client has stopped.
func Main(m *testing.M, pkgs []string, paths []*string) {
	testbin.Main(m, pkgs, paths,
		// fasthttp's idle cleaners sleep before they look at their stop
		// channel: they end within seconds of a stopped server or client.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*Client).mCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		// fasthttp keeps one goroutine for the whole process to update the Date header.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
}
