//go:build unix

package store

import (
	"context"
	"os"
	"os/exec"
	"testing"
)

// A closed store lets go of its lock at once, even while a process started
// beside it still holds the lock's open file: between fork and exec, any
// child of the process does (close-on-exec closes it only at exec), and
// flock belongs to the open file, not to a descriptor. Here the child holds
// it for good, passed on purpose, standing in for that window.
func TestCloseUnlocksWhileAChildHoldsTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, ok := s.lock.(dirLock)
	if !ok {
		t.Fatalf("the store's lock is a %T", s.lock)
	}
	child := exec.Command("sleep", "60")
	child.ExtraFiles = []*os.File{l.f}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close, a child holding the old lock's file = %v; want the lock free", err)
	}
	again.Close()
}
