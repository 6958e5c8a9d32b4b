//go:build linux || darwin

package supervisor

import "syscall"

// reapPid collects the status of a child known to have exited.
func reapPid(pid int) (syscall.WaitStatus, *syscall.Rusage, bool) {
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	for {
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, &ru)
		if err == syscall.EINTR {
			continue
		}
		return ws, &ru, err == nil && got == pid
	}
}

// killTree sends SIGKILL to a child of vmd that has not been reaped, and to
// its whole process group when it leads one (Chromium's zygotes and
// renderers stay in the group of the browser's main process).
func killTree(pid int) {
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
