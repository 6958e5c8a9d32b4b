// Package leftovers makes the temporary directories vmd uses, each locked
// for as long as it is in use, and removes those a vmd that died without
// cleaning up left behind: a container keeps its /tmp across restarts, and a
// crash loop must not fill the disk.
//
// Liveness is an flock on the directory itself, held by the process using
// it: the kernel drops it when that process dies, whatever its PID
// namespace, so vmds (and tests) sharing a /tmp or /dev/shm never remove
// each other's directories.
package leftovers

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// MinAge keeps Sweep away from a directory so new that its maker may not
// have locked it yet. Sweep again after MinAge to catch what was too young.
const MinAge = time.Minute

// Dir is a directory of vmd's, locked while it exists.
type Dir struct {
	// Path is where it is.
	Path string
	lock *os.File
}

// Make creates and locks a new directory vmd-KIND-* in root.
func Make(root, kind string) (*Dir, error) {
	path, err := os.MkdirTemp(root, "vmd-"+kind+"-*")
	if err != nil {
		return nil, err
	}
	lock, err := os.Open(path)
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != nil {
			lock.Close()
		}
	}
	if err != nil {
		removeAll(path)
		return nil, err
	}
	return &Dir{Path: path, lock: lock}, nil
}

// Remove deletes the directory and everything in it, whatever modes were
// left inside, then lets go of it.
func (d *Dir) Remove() error {
	err := removeAll(d.Path)
	d.lock.Close()
	return err
}

// Sweep removes the directories vmd-KIND-* in root that no live process
// holds and that are older than a minute, and returns them.
func Sweep(root, kind string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "vmd-"+kind+"-") {
			continue
		}
		if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < MinAge {
			continue
		}
		path := filepath.Join(root, e.Name())
		if removeUnlocked(path) {
			removed = append(removed, path)
		}
	}
	return removed
}

func removeUnlocked(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false // in use, or no locks here: leave it
	}
	return removeAll(path) == nil
}

// removeAll is os.RemoveAll for a tree a command may have left in any
// state: a directory it made unwritable (chmod 500) or unreadable (000)
// stops os.RemoveAll for ever when vmd is not root. The first try is
// os.RemoveAll alone; if that fails, every directory is given u+rwx, top
// down, and it tries again.
func removeAll(path string) error {
	if os.RemoveAll(path) == nil {
		return nil
	}
	werr := makeWritable(path)
	if err := os.RemoveAll(path); err != nil {
		return errors.Join(err, werr)
	}
	return nil
}

// makeWritable gives the owner rwx on path and every directory below it,
// never following a symbolic link: the walk goes through an os.Root, so a
// link (or a directory swapped for one meanwhile) cannot lead it to chmod
// anything outside path. Files keep their modes; removing them needs only
// their directory writable.
func makeWritable(path string) error {
	info, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return nil // a file or a link: os.RemoveAll's failure was something else
	}
	// The top is chmod-ed by name: os.OpenRoot must be able to read it.
	if err := os.Chmod(path, info.Mode().Perm()|0o700); err != nil {
		return err
	}
	root, err := os.OpenRoot(path)
	if err != nil {
		return err
	}
	defer root.Close()
	var errs []error
	fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil // not readable even now: go on with the rest
		}
		if !d.IsDir() || name == "." {
			return nil
		}
		// WalkDir calls this before reading the directory, so the chmod
		// lets it in.
		info, err := d.Info()
		if err == nil && info.Mode().Perm()&0o700 != 0o700 {
			err = root.Chmod(name, info.Mode().Perm()|0o700)
		}
		if err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	return errors.Join(errs...)
}
