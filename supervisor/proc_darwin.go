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

// peekExited returns the pid of a child waited for that has exited,
// leaving it a zombie, or 0 when none has; and whether any is waited for.
// Only the children in waiters are known: vmd is not their subreaper.
func peekExited(waiters map[int]chan exit) (pid int, children bool) {
	for pid := range waiters {
		if k, err := unix.SysctlKinfoProc("kern.proc.pid", pid); err == nil && k.Proc.P_stat == szomb {
			return pid, true
		}
	}
	return 0, len(waiters) > 0
}

// children is empty: without subreaping, the sweep has nothing to find.
func children() []int { return nil }

// childrenByScan is empty, like children.
func childrenByScan(int) []int { return nil }

// procStat knows no process.
func procStat(int) (ppid int, state byte, ok bool) { return 0, 0, false }
