package images

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
	"github.com/vmd-dev/vmd/internal/testfs"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// open runs a store over a fresh directory until the test ends.
func open(t *testing.T, ttl time.Duration) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "images"), ttl, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run() }()
	// Run's first expiry pass is over once the watcher answers.
	if !s.barrier() {
		t.Fatal("watcher not running")
	}
	t.Cleanup(func() {
		s.Stop()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return s
}

func write(t *testing.T, s *Store, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.Dir(), name), []byte("img"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"shot.png": true, "page-2026-11-26T10-00-00.png": true, "with space.jpg": true, "ünï.png": true,
		"": false, ".": false, "..": false, ".hidden.png": false, "a/b.png": false, "../x.png": false,
		`a\b.png`: false, "a\x00b": false, "a\nb": false, "a\x7fb": false, string(make([]byte, 256)): false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v; want %v", name, got, want)
		}
	}
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"shot.png", "..", "../etc/passwd", "a/b", `a\b`, ".x", "a\x00", "ü.png"} {
		f.Add(s)
	}
	dir := "/srv/images"
	f.Fuzz(func(t *testing.T, name string) {
		if !ValidName(name) {
			return
		}
		p := filepath.Join(dir, name)
		if filepath.Dir(p) != dir || filepath.Base(p) != name {
			t.Errorf("ValidName(%q) = true, but it joins to %q", name, p)
		}
	})
}

func TestRecording(t *testing.T) {
	t.Parallel()
	s := open(t, time.Hour)
	write(t, s, "before.png")
	rec := s.Begin(nil)
	write(t, s, "b.png")
	write(t, s, "a.jpg")
	write(t, s, "notes.txt")
	write(t, s, "b.png") // written twice, listed once
	write(t, s, "gone.png")
	os.Remove(filepath.Join(s.Dir(), "gone.png"))
	got := rec.End()
	if want := []string{"b.png", "a.jpg"}; !slices.Equal(got, want) {
		t.Errorf("End() = %q; want %q", got, want)
	}
	// A rewrite of an old image during a command is that command's image.
	rec = s.Begin(nil)
	write(t, s, "before.png")
	if got := rec.End(); !slices.Equal(got, []string{"before.png"}) {
		t.Errorf("End() after a rewrite = %q; want [before.png]", got)
	}
	// A name /images/ would refuse is not listed either. (The markers of
	// the recordings before go with this Begin, off the answers' path:
	// only its own is left.)
	rec = s.Begin(nil)
	if left, _ := os.ReadDir(s.marks.Path); len(left) != 1 || left[0].Name() != rec.mark {
		t.Errorf("markers left behind: %v; want only the new recording's %s", left, rec.mark)
	}
	write(t, s, `back\slash.png`)
	if got := rec.End(); len(got) != 0 {
		t.Errorf("End() = %q; want an unservable name left out", got)
	}
}

// A filesystem mounted over the directory is not reported by inotify: the
// next recording notices the directory is another one and watches it.
func TestMountedOver(t *testing.T) {
	t.Parallel()
	s := open(t, time.Hour)
	testfs.MountTmpfs(t, s.Dir(), "64k")
	rec := s.Begin(nil)
	write(t, s, "over.png")
	if got := rec.End(); !slices.Equal(got, []string{"over.png"}) {
		t.Errorf("End() on the mounted filesystem = %q; want [over.png]", got)
	}
}

// When the watcher loses events, End scans the directory instead.
func TestRecordingAfterOverflow(t *testing.T) {
	t.Parallel()
	s := open(t, time.Hour)
	write(t, s, "old.png")
	// The scan goes by modification time, on the file system's coarse clock.
	past := time.Now().Add(-time.Minute)
	os.Chtimes(filepath.Join(s.Dir(), "old.png"), past, past)
	rec := s.Begin(nil)
	s.watchError(fsnotify.ErrEventOverflow)
	write(t, s, "new.png")
	if got := rec.End(); !slices.Equal(got, []string{"new.png"}) {
		t.Errorf("End() after an overflow = %q; want [new.png]", got)
	}
}

func TestDirectoryRemovedIsRecreated(t *testing.T) {
	t.Parallel()
	s := open(t, time.Hour)
	if err := os.RemoveAll(s.Dir()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Stat(s.Dir()); err == nil && fi.IsDir() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("images directory not recreated")
		}
		time.Sleep(time.Millisecond)
	}
	rec := s.Begin(nil)
	write(t, s, "after.png")
	if got := rec.End(); !slices.Equal(got, []string{"after.png"}) {
		t.Errorf("End() in the recreated directory = %q; want [after.png]", got)
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	s := open(t, time.Hour)
	old := time.Now().Add(-2 * time.Hour)
	for _, n := range []string{"old.png", "old.txt", "page-1.yml", "console-1.log", ".hidden.log", "kept.png", "recorded.png"} {
		write(t, s, n)
		if n != "kept.png" {
			os.Chtimes(filepath.Join(s.Dir(), n), old, old)
		}
	}
	rec := s.Begin(nil)
	write(t, s, "recorded.png")
	os.Chtimes(filepath.Join(s.Dir(), "recorded.png"), old, old)
	// The watcher must have seen recorded.png before clean runs.
	s.barrier()
	s.clean(time.Now())
	rec.End()
	entries, _ := os.ReadDir(s.Dir())
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	// Images and Playwright's snapshots and logs expire, other files not,
	// and never an image of the command still running.
	if want := []string{".hidden.log", "kept.png", "old.txt", "recorded.png"}; !slices.Equal(left, want) {
		t.Errorf("after clean: %q; want %q", left, want)
	}
}

func TestOpenFile(t *testing.T) {
	t.Parallel()
	s := open(t, time.Hour)
	write(t, s, "shot.png")
	outside := filepath.Join(t.TempDir(), "secret.png")
	os.WriteFile(outside, []byte("secret"), 0o644)
	os.Symlink(outside, filepath.Join(s.Dir(), "link.png"))
	os.Mkdir(filepath.Join(s.Dir(), "dir.png"), 0o755)
	syscall.Mkfifo(filepath.Join(s.Dir(), "fifo.png"), 0o644)

	f, err := s.OpenFile("shot.png")
	if err != nil {
		t.Fatal(err)
	}
	if f.Size != 3 || f.ContentType != "image/png" {
		t.Errorf("OpenFile(shot.png) = size %d, %q; want 3, image/png", f.Size, f.ContentType)
	}
	f.Close()
	for name, want := range map[string]error{
		"missing.png": ErrNotFound, "link.png": ErrNotFound, "dir.png": ErrNotFound, "fifo.png": ErrNotFound,
		"../secret.png": ErrInvalidName, ".": ErrInvalidName, "": ErrInvalidName,
	} {
		if f, err := s.OpenFile(name); !errors.Is(err, want) {
			if f != nil {
				f.Close()
			}
			t.Errorf("OpenFile(%q) error = %v; want %v", name, err, want)
		}
	}
}
