package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// fakeVersion is the CLI's version line.
const fakeVersion = "1.0.0-fake (Claude Code)"

// version answers `fakeclaude --version`. FAKECLAUDE_VERSION in the
// environment picks how:
//
//	(unset)      print the version line and exit 0
//	fail         print "version: broken" to stderr and exit 1
//	hang         ignore SIGTERM and never answer
//	slow DUR     wait DUR (Go duration), then answer
//	empty        print nothing and exit 0
//
// With FAKECLAUDE_VERSION_LOG set to a file, each run appends a line to it,
// so that tests can count runs.
func version() {
	if f := os.Getenv("FAKECLAUDE_VERSION_LOG"); f != "" {
		if w, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			fmt.Fprintln(w, os.Getpid())
			w.Close()
		}
	}
	how, arg, _ := strings.Cut(os.Getenv("FAKECLAUDE_VERSION"), " ")
	switch how {
	case "fail":
		fmt.Fprintln(os.Stderr, "version: broken")
		os.Exit(1)
	case "hang":
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
		time.Sleep(time.Hour)
	case "slow":
		d, _ := time.ParseDuration(arg)
		time.Sleep(d)
	case "empty":
		return
	}
	fmt.Println(fakeVersion)
}
