// Package vmdtest is the one test harness of vmd: a stack built by the
// constructor main uses (Start), a vmd process (StartProcess), a poll with
// a deadline (Eventually, from internal/poll), a log buffer, and
// process-tree and zombie counts read from /proc.
package vmdtest

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/vmd-dev/vmd/internal/poll"
	"github.com/vmd-dev/vmd/internal/testbin"
)

// Eventually polls cond until it holds, failing the test past the
// harness's patience: see poll.Eventually, which it forwards to.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Eventually(t, what, cond)
}

// Within waits for ch to be closed or to deliver, failing the test past
// the harness's patience: see poll.Within, which it forwards to.
func Within[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	return poll.Within(t, what, ch)
}

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
