//go:build darwin

package supervisor

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// The process layer on macOS (for development outside a
// container). It runs processes in their own groups, kills the group on
// timeout and reaps them, but it is no subreaper: orphans of a process go
// to the system's init, not to vmd, so the sweep after a process finds
// nothing and kills nothing, and a process escaping its group (Chromium)
// can outlive its command. There is no parent-death signal either: a vmd
// killed with SIGKILL leaves its process running. Use Linux (the image) for
// anything but development.

// becomeSubreaper does nothing: only Linux has child subreapers.
func becomeSubreaper() error { return nil }

// spawn forks and execs argv in a new process group with the given stdio.
// Call it through the forker. The caller holds reapMu.
func spawn(bin string, argv, env []string, dir string, p stdio) (int, error) {
	return syscall.ForkExec(bin, argv, &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []uintptr{p[0].theirs.Fd(), p[1].theirs.Fd(), p[2].theirs.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
}

// szomb is the process state of a zombie (p_stat, sys/proc.h).
const szomb = 5

// peekExited finds no child: without subreaping, only the children
// waited for are known, and exited asks about each.
func peekExited() (pid int, children bool) { return 0, false }

// exited reports whether the child pid has exited, leaving a zombie.
func exited(pid int) bool {
	k, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	return err == nil && k.Proc.P_stat == szomb
}

// children is empty: without subreaping, the sweep has nothing to find.
func children() []int { return nil }

// procStat knows no process.
func procStat(int) (state byte, pgrp int, ok bool) { return 0, 0, false }

// markerOf reads no environment: the sweep finds no orphan here.
func markerOf(int) (string, bool) { return "", false }
