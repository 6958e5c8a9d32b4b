package main

import (
	"os"
	"os/signal"
	"syscall"
)

// survivePipes keeps vmd alive when its log output is a pipe whose reader
// has gone (a log shipper restarted, `vmd 2>&1 | tee` interrupted). Go's
// runtime kills a program with SIGPIPE on a write to a broken pipe on fd 1
// or 2 unless it has called Notify for SIGPIPE; then the write fails with
// EPIPE, the log line is lost, and vmd goes on and drains as usual.
//
// Not signal.Ignore: an ignored signal stays ignored across exec, so the
// CLI and every shell command the agent runs would start with SIGPIPE
// ignored (`yes | head` would then print errors instead of ending quietly).
// A caught signal is reset to its default in the child.
//
// The channel is never read: the runtime drops a signal that does not fit.
func survivePipes() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
}
