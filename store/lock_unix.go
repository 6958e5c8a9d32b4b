//go:build unix

package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockDir takes the state directory's lock: an exclusive flock(2) on
// LockName in dir, held until the file is closed, with this process's pid
// written in it for the error another vmd then gets. flock belongs to the
// open file description, so a second Open in this same process is refused
// too, and the lock goes with the process however it ends: a vmd killed
// outright leaves no stale lock behind. Go opens files close-on-exec, so
// the CLIs vmd starts never hold it past their exec (see dirLock.Close).
func lockDir(dir string) (io.Closer, error) {
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	writable := err == nil
	if err != nil {
		// A read-only file system (or file) still takes a lock through a
		// read-only descriptor: the store's own open then says what is
		// wrong with the database, which matters more.
		var rerr error
		if f, rerr = os.Open(path); rerr != nil {
			return nil, fmt.Errorf("state_dir %s: cannot open its lock file, make state_dir writable by vmd: %w", dir, err)
		}
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case errors.Is(err, unix.EWOULDBLOCK):
		holder := readHolder(f)
		f.Close()
		return nil, fmt.Errorf("state_dir %s is in use by another vmd (pid %s): stop it, or give this one "+
			"another state_dir (STATE_DIR): %s %w", dir, holder, path, ErrInUse)
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("state_dir %s: cannot lock %s (is state_dir on a file system without flock, "+
			"such as some network ones? put it on a local disk): %w", dir, path, err)
	}
	if writable {
		// Best effort: the pid only makes another vmd's error clearer, and
		// a full disk must not stop this one starting.
		_ = f.Truncate(0)
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return dirLock{f}, nil
}

// dirLock is a held state directory lock.
type dirLock struct{ f *os.File }

// Close unlocks, then closes the file. Closing alone would not let go at
// once: a child forked beside the store, not yet at its exec, holds the
// same open file, and with it the lock, until the exec closes it.
func (l dirLock) Close() error {
	err := unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	return errors.Join(err, l.f.Close())
}

// readHolder is the pid the lock's holder wrote, or "unknown" (it may not
// have written it yet, or could not).
func readHolder(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid := strings.TrimSpace(string(b[:n]))
	if _, err := strconv.Atoi(pid); err != nil {
		return "unknown"
	}
	return pid
}
