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
