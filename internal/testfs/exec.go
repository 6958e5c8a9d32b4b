package testfs

import (
	"os"
	"path/filepath"
	"syscall"
)

// WriteExecutable writes a program for a test to run, as os.WriteFile
// would, with no fork of this process while the file is open for writing.
// A child forked meanwhile (by any goroutine: parallel tests start
// processes all the time) holds the file open for writing until its own
// exec, and an exec of the program in that window fails with "text file
// busy" (ETXTBSY, golang/go#22315). A fork takes syscall.ForkLock for
// writing; holding it for reading keeps forks out, the while of one write.
func WriteExecutable(path string, data []byte, perm os.FileMode) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	return os.WriteFile(path, data, perm)
}

// CopyExecutable copies the program from to a new file to (its directory
// made as needed), mode 0755, as WriteExecutable writes.
func CopyExecutable(from, to string) error {
	b, err := os.ReadFile(from)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(to), 0o755)
	}
	if err == nil {
		err = WriteExecutable(to, b, 0o755)
	}
	return err
}
