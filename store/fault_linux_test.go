package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmd-dev/vmd/internal/testfs"
)

// A disk that fills up while commands write: Health says so, and clears
// once there is room, at its next probe, before any command writes again.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	dir := testfs.Tmpfs(t, "256k")
	ballast := filepath.Join(dir, "ballast")
	writeFile(t, ballast, make([]byte, 64<<10))
	// Every Health probes: the test has no time to wait for the interval.
	s, err := Open(context.Background(), filepath.Join(dir, "state"), Options{ProbeEvery: time.Nanosecond})
	if err != nil {
		t.Fatalf("Open on a small tmpfs = %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	rec := create(t, s, "")
	chunk := []byte(`"` + strings.Repeat("x", 8<<10) + `"`)
	var failed error
	for seq := int64(1); seq < 1000 && failed == nil; seq++ {
		_, failed = s.AppendEvent(ctx, rec.ID, Event{seq, "message", chunk})
	}
	if failed == nil {
		t.Fatalf("AppendEvent never failed on a 256k file system")
	}
	if err := s.Health(); err == nil {
		t.Errorf("Health() after %v = nil; want the error", failed)
	}
	if n := s.Stats().WriteErrors; n == 0 {
		t.Errorf("Stats().WriteErrors = %d; want at least 1", n)
	}
	if got, err := s.Get(ctx, rec.ID); err != nil || got.State != Running {
		t.Errorf("Get while the disk is full = %v, %v; want the record readable", got.State, err)
	}

	// Room again: the probe finds the store healthy, then writes work.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(); err != nil {
		t.Errorf("Health() once there is room = %v; want nil", err)
	}
	if err := s.Finish(ctx, rec.ID, End{State: Succeeded, Status: 200, Body: []byte("{}")}); err != nil {
		t.Fatalf("Finish after freeing room = %v", err)
	}
	if err := s.Health(); err != nil {
		t.Errorf("Health() after a good write = %v; want nil", err)
	}
}

// A disk that fills up while nothing writes: the probe finds it, with
// what to do, and finds the room again.
func TestDiskFullWhileIdle(t *testing.T) {
	t.Parallel()
	dir := testfs.Tmpfs(t, "512k")
	s, err := Open(context.Background(), filepath.Join(dir, "state"), Options{ProbeEvery: time.Nanosecond})
	if err != nil {
		t.Fatalf("Open on a small tmpfs = %v", err)
	}
	defer s.Close()
	fill(t, s, 1)
	if err := s.Health(); err != nil {
		t.Fatalf("Health() with room = %v", err)
	}
	ballast := filepath.Join(dir, "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = f.Write(make([]byte, 4096))
	}
	f.Close()
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("filling the tmpfs: %v; want ENOSPC", err)
	}
	if err := s.Health(); err == nil || !strings.Contains(err.Error(), "cannot be written (disk full? read-only?)") ||
		!strings.Contains(err.Error(), "free space") {
		t.Errorf("Health() on a full disk = %v; want it to say the store cannot be written and to free space", err)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(); err != nil {
		t.Errorf("Health() once there is room = %v; want nil", err)
	}
}

// TestReadOnlyFileSystem opens a good store on a file system that became
// read-only: the error names the file and does not call it corrupt (moving
// it aside would lose the records). A running store cannot be caught in the
// act here: Linux refuses to remount read-only while files are open for
// writing, so TestDiskFull covers failures while running.
func TestReadOnlyFileSystem(t *testing.T) {
	t.Parallel()
	dir := testfs.Tmpfs(t, "4m")
	s := open(t, dir)
	fill(t, s, 3)
	s.Close()
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount %s read-only = %v", dir, err)
	}
	defer func() {
		if err := unix.Mount("", dir, "", unix.MS_REMOUNT, ""); err != nil {
			t.Errorf("remount %s read-write = %v", dir, err)
		}
	}()
	s, err := Open(context.Background(), dir, Options{})
	if err == nil {
		s.Close()
		t.Fatalf("Open on a read-only file system = nil; want an error")
	}
	path := filepath.Join(dir, FileName)
	if errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Errorf("Open on a read-only file system = %v; want an error naming %s, not ErrCorrupt", err, path)
	}
	t.Log(err)
}
