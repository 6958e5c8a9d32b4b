package images

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/internal/testfs"
)

func TestCheckWritable(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

// A directory vmd cannot create or write fails Open, naming the setting
// and the fix: a vmd started over it would lose every screenshot.
func TestOpenRefusesUnwritable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		dir   func(t *testing.T) string
		cause string
	}{
		{"cannot be created", func(t *testing.T) string {
			file := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(file, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(file, "images")
		}, "cannot be created"},
		{"not writable", func(t *testing.T) string {
			dir := t.TempDir()
			if os.Geteuid() == 0 {
				testfs.Immutable(t, dir) // mode bits do not stop root
			} else if err := os.Chmod(dir, 0o555); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "is not writable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir(t)
			s, err := Open(dir, time.Hour, hclog.NewNullLogger())
			if err == nil {
				s.Stop()
				s.Run()
				t.Fatalf("Open(%s) = nil error; want one", dir)
			}
			for _, want := range []string{"images_dir", tt.cause, "set IMAGES_DIR"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Open(%s) = %v; want it to say %q", dir, err, want)
				}
			}
		})
	}
}

// Without a directory (state_dir ":memory:"), Open makes one of the
// store's own under TMPDIR, private to it, and Run removes it when it
// returns. TMPDIR is process-wide: not parallel.
func TestOpenOwnDirectory(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	s, err := Open("", time.Hour, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.Dir())
	if err != nil || !strings.HasPrefix(s.Dir(), filepath.Join(tmp, "vmd-images-")) || fi.Mode().Perm() != 0o700 {
		t.Fatalf("Dir() = %s (%v, %v); want a directory vmd-images-* of mode 0700 under TMPDIR %s", s.Dir(), fi.Mode(), err, tmp)
	}
	s.Stop()
	if err := s.Run(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("TMPDIR holds %v after Run returned; want nothing", left)
	}
}
