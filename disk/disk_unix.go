//go:build unix

package disk

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// statfs measures the filesystem path is on. The device number (st_dev of
// path) tells two directories on one filesystem apart from two
// filesystems of the same size.
func statfs(path string) (FS, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return FS{}, fmt.Errorf("stat: %w", err)
	}
	var sf unix.Statfs_t
	if err := unix.Statfs(path, &sf); err != nil {
		return FS{}, fmt.Errorf("statfs: %w", err)
	}
	// Bsize is int64 on linux and uint32 on darwin; Bavail leaves out the
	// blocks reserved for root, which the agent (node) cannot use.
	bsize := uint64(sf.Bsize)
	return FS{Free: uint64(sf.Bavail) * bsize, Size: uint64(sf.Blocks) * bsize, dev: uint64(st.Dev)}, nil
}
