//go:build !unix

package disk

import "errors"

// statfs is not implemented off unix: Free reports the error, and Check
// fails with it (a guard that cannot measure does not pretend all is well).
func statfs(string) (FS, error) { return FS{}, errors.New("statfs: not supported on this system") }
