// Package leftovers names the temporary directories vmd makes and removes
// those a vmd that died without cleaning up left behind. A container keeps
// its /tmp across restarts: a crash loop must not fill the disk.
package leftovers

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Pattern is the os.MkdirTemp pattern for a directory of this kind owned by
// this process: vmd-KIND-PID-*.
func Pattern(kind string) string {
	return "vmd-" + kind + "-" + strconv.Itoa(os.Getpid()) + "-*"
}

// Sweep removes the directories of this kind in root whose owner is gone: no
// process has its pid; or it is PID 1's and this process is PID 1, for a
// container's vmd that restarts as PID 1 again (call Sweep before making any
// directory). Directories of other live processes are left alone: tests and
// several vmds may share a machine. It returns what it removed.
func Sweep(root, kind string) []string {
	prefix := "vmd-" + kind + "-"
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 {
			continue
		}
		restarted := pid == 1 && os.Getpid() == 1
		if !restarted && syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		path := filepath.Join(root, e.Name())
		if os.RemoveAll(path) == nil {
			removed = append(removed, path)
		}
	}
	return removed
}
