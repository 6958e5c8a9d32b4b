package images

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/testfs"
)

func TestCheckWritable(t *testing.T) {
	s := open(t, time.Hour)
	if err := s.CheckWritable(); err != nil {
		t.Fatalf("CheckWritable() = %v; want nil", err)
	}
	// The probe file is gone and was never taken for an image.
	if left, _ := os.ReadDir(s.Dir()); len(left) != 0 {
		t.Errorf("files left after CheckWritable: %v", left)
	}

	t.Run("read-only", func(t *testing.T) {
		testfs.Immutable(t, s.Dir())
		if err := s.CheckWritable(); err == nil || !strings.Contains(err.Error(), "is not writable") {
			t.Errorf("CheckWritable() on an immutable directory = %v; want not writable", err)
		}
	})
	t.Run("gone", func(t *testing.T) {
		// Moving the parent away is nothing the watcher sees, so the store
		// does not recreate the directory: it is simply not there.
		parent := filepath.Dir(s.Dir())
		if err := os.Rename(parent, parent+".gone"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Rename(parent+".gone", parent) })
		if err := s.CheckWritable(); err == nil || !strings.Contains(err.Error(), "no such file or directory") {
			t.Errorf("CheckWritable() without the directory = %v; want no such file or directory", err)
		}
	})
}

func TestStats(t *testing.T) {
	s := open(t, time.Hour)
	rec := s.Begin(nil)
	write(t, s, "a.png")
	write(t, s, "b.jpg")
	write(t, s, "notes.txt")
	if got := rec.End(); len(got) != 2 {
		t.Fatalf("End() = %v; want 2 images", got)
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, n := range []string{"a.png", "b.jpg", "notes.txt"} {
		os.Chtimes(filepath.Join(s.Dir(), n), old, old)
	}
	s.clean(time.Now())
	if got := s.Stats(); got != (Stats{Written: 2, Cleaned: 2}) {
		t.Errorf("Stats() = %+v; want 2 written, 2 cleaned", got)
	}
}
