//go:build !linux

package testfs

import "testing"

// Immutable skips the test: the immutable flag is set through a Linux
// ioctl (chattr +i), and the tests that need it are about Linux file
// systems.
func Immutable(t testing.TB, dir string) {
	t.Helper()
	t.Skipf("cannot make %s immutable: chattr +i is Linux only", dir)
}

// Tmpfs skips the test: it mounts a tmpfs, which the tests that need it do
// on Linux.
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	t.Skipf("cannot mount a tmpfs of %s: the mount is Linux only", size)
	return ""
}

// MountTmpfs skips the test, as Tmpfs does.
func MountTmpfs(t testing.TB, dir, size string) {
	t.Helper()
	t.Skipf("cannot mount a tmpfs of %s on %s: the mount is Linux only", size, dir)
}
