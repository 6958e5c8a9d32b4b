// Package testfs makes file system states for tests that root cannot get
// past with permission bits alone.
package testfs

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// immutableFlag is FS_IMMUTABLE_FL (chattr +i), absent from x/sys/unix.
const immutableFlag = 0x10

// Immutable makes dir immutable (chattr +i) until the test ends: nothing,
// not even root, can create or remove a file in it. Permission bits would
// not stop root, which the tests run as. Tests skip on file systems without
// the flag (tmpfs, overlayfs on some kernels) or without CAP_LINUX_IMMUTABLE.
// It uses ioctl rather than running chattr: a test that runs a supervisor
// must not start processes of its own.
func Immutable(t testing.TB, dir string) {
	t.Helper()
	set := func(on bool) error {
		f, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer f.Close()
		flags, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS)
		if err != nil {
			return err
		}
		if on {
			flags |= immutableFlag
		} else {
			flags &^= immutableFlag
		}
		return unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, flags)
	}
	if err := set(true); err != nil {
		t.Skipf("cannot make %s immutable: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := set(false); err != nil {
			t.Errorf("cannot make %s mutable again: %v", dir, err)
		}
	})
}

// Tmpfs mounts a tmpfs of size (mount's size=, like "8m" or "256k") on a
// new directory, unmounted when the test ends, and returns the directory: a
// small file system to fill up.
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	MountTmpfs(t, dir, size)
	return dir
}

// MountTmpfs mounts a tmpfs of size on dir until the test ends. Mounting
// needs root: a normal user's test skips, saying so; root's fails if the
// mount does (CI runs as root, so a disk-full test cannot pass there
// without having run).
func MountTmpfs(t testing.TB, dir, size string) {
	t.Helper()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("mounting a tmpfs needs root: %v", err)
		}
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}
