//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64)

package supervisor

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The Linux side of the process layer: subreaping, forking with a
// parent-death signal, peeking at exited children without reaping them, and
// listing children from /proc. See reap.go for the locking they rely on.

// becomeSubreaper makes orphaned descendants of vmd come to vmd instead of
// the system's init, so they can be killed and reaped. As PID 1 this is what
// already happens; under another init (Fly.io runs its own) it is needed.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// spawn forks and execs argv in a new process group with the given stdio.
// Call it through the forker. The caller holds reapMu.
func spawn(bin string, argv, env []string, dir string, p stdio) (int, error) {
	return syscall.ForkExec(bin, argv, &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []uintptr{p[0].theirs.Fd(), p[1].theirs.Fd(), p[2].theirs.Fd()},
		Sys: &syscall.SysProcAttr{
			// Its own group, so one kill(-pgid) reaches everything it
			// starts that does not start a session of its own.
			Setpgid: true,
			// Dies with vmd, even when vmd is SIGKILLed or crashes.
			Pdeathsig: syscall.SIGKILL,
		},
	})
}

// exitedInfo is the start of the kernel's siginfo_t as waitid fills it for a
// child, on 64-bit Linux: three ints, padding, then si_pid in the union,
// which is 8-byte aligned. unix.Siginfo hides the union.
type exitedInfo struct {
	Signo int32
	Errno int32
	Code  int32
	_     int32
	Pid   int32
	_     [108]byte
}

// exitedInfo must be exactly as large as siginfo_t: waitid writes all of it.
var (
	_ [unsafe.Sizeof(unix.Siginfo{}) - unsafe.Sizeof(exitedInfo{})]struct{}
	_ [unsafe.Sizeof(exitedInfo{}) - unsafe.Sizeof(unix.Siginfo{})]struct{}
)

// peekExited returns the pid of a child that has exited, leaving it a zombie
// (WNOWAIT), or 0 when none has; and whether the process has any child at
// all. Any child counts, not only those waited for: orphans come to vmd too.
func peekExited() (pid int, children bool) {
	return waitPeek(unix.P_ALL, 0)
}

// exited reports whether the child pid has exited, leaving it a zombie.
func exited(pid int) bool {
	got, _ := waitPeek(unix.P_PID, pid)
	return got != 0
}

func waitPeek(idtype, id int) (pid int, children bool) {
	var info exitedInfo
	for {
		err := unix.Waitid(idtype, id, (*unix.Siginfo)(unsafe.Pointer(&info)), unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ECHILD:
			return 0, false
		case err != nil || info.Signo == 0:
			return 0, true
		}
		return int(info.Pid), true
	}
}

// markerOf reads the marker a process inherited (markerEnv in its
// environment as it was started); ok is false when the environment cannot
// be read (the process is gone, or not vmd's to read).
func markerOf(pid int) (marker string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return "", false
	}
	for kv := range bytes.SplitSeq(b, []byte{0}) {
		if v, found := bytes.CutPrefix(kv, []byte(markerEnv+"=")); found {
			return string(v), true
		}
	}
	return "", true
}

// children lists vmd's direct children, zombies included, from every
// process's parent in /proc. Not from /proc/self/task/*/children: those
// lists are per thread, and an orphan handed to a subreaper's thread while
// the lists are read (threads come and go in a Go process) is missed; the
// kernel says as much of them.
func children() []int { return childrenByScan(os.Getpid()) }

// childrenByScan finds the children of parent by reading every process's
// stat: slower, for kernels without /proc/<pid>/task/<tid>/children.
func childrenByScan(parent int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := statIDs(pid); ok && ppid == parent {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat reads a process's state letter and process group from
// /proc/<pid>/stat. The command name may hold spaces and parentheses, so
// the fields are counted from the last ')'.
func procStat(pid int) (state byte, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:])) // state ppid pgrp ...
	if len(f) < 3 {
		return 0, 0, false
	}
	pgrp, err = strconv.Atoi(f[2])
	return f[0][0], pgrp, err == nil
}
