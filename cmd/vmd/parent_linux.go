package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// followGoRun makes vmd stop (SIGTERM: a drain, like any stop) when it was
// started by `go run` and that go process dies. go run does not pass its
// own death on: an IDE or a script that kills the pid it started would
// otherwise leave vmd serving, holding its port. Only under go: a vmd
// started by a shell that then exits (nohup vmd &) must live on, and as a
// container's PID 1 vmd has no parent to follow.
func followGoRun() {
	ppid := os.Getppid()
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(ppid) + "/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "go" {
		return
	}
	if unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0) != nil {
		return
	}
	// The parent may have died before the request: then it will never
	// fire, and vmd has been handed to another parent already.
	if os.Getppid() != ppid {
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
}
