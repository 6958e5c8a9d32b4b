package leftovers

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

func age(t *testing.T, path string) {
	t.Helper()
	old := time.Now().Add(-2 * MinAge)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	mine, err := Make(root, "cmd") // in use by this process
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Remove()
	age(t, mine.Path)

	// A directory whose maker died: its lock went with it.
	dead := filepath.Join(root, "vmd-cmd-dead")
	os.MkdirAll(filepath.Join(dead, "chromium-profile"), 0o755)
	age(t, dead)
	// The same, but made a moment ago: its maker may be about to lock it.
	fresh := filepath.Join(root, "vmd-cmd-fresh")
	os.Mkdir(fresh, 0o755)
	// Another kind, and something not vmd's.
	marks := filepath.Join(root, "vmd-marks-dead")
	os.Mkdir(marks, 0o755)
	age(t, marks)
	other := filepath.Join(root, "other")
	os.Mkdir(other, 0o755)
	age(t, other)

	// Held by another live process, as a second vmd would.
	held := filepath.Join(root, "vmd-cmd-held")
	os.Mkdir(held, 0o755)
	holder := exec.Command("flock", "--no-fork", held, "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Skip("no flock(1):", err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for !lockedByOther(held) {
		if time.Now().After(deadline) {
			t.Fatal("flock(1) did not take the lock")
		}
		time.Sleep(time.Millisecond)
	}
	age(t, held)

	if got := Sweep(root, "cmd"); !slices.Equal(got, []string{dead}) {
		t.Errorf("Sweep = %q; want [%s]", got, dead)
	}
	for _, p := range []string{mine.Path, fresh, marks, other, held} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if err := mine.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mine.Path); !os.IsNotExist(err) {
		t.Errorf("Remove left %s", mine.Path)
	}
}

// lockedByOther reports whether another process holds path's lock.
func lockedByOther(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil
}
