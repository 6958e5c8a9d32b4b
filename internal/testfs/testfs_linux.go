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
