//go:build !linux

package supervisor

import "errors"

// TreeIO is Linux only (it reads /proc/<pid>/io); elsewhere the stall
// watchdog goes by the CLI's events alone.
func TreeIO(pid int) (total uint64, procs int, err error) {
	return 0, 0, errors.ErrUnsupported
}

// ProcIO is Linux only, as TreeIO.
func ProcIO(pid int) (uint64, error) {
	return 0, errors.ErrUnsupported
}
