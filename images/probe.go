package images

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
)

// probeSeq tells apart the probe files of concurrent checks.
var probeSeq atomic.Uint64

// CheckWritable creates a file in the directory and removes it: what a
// command's screenshots need. The file is hidden (a dot name), so it is
// never taken for an image, listed or served.
func (s *Store) CheckWritable() error {
	name := filepath.Join(s.dir, ".vmd-probe-"+strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(probeSeq.Add(1), 10))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("images_dir %q is not writable: %w", s.dir, err)
	}
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("images_dir %q: cannot remove a file: %w", s.dir, err)
	}
	return nil
}
