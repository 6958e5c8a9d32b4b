package leftovers

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

func TestSweep(t *testing.T) {
	root := t.TempDir()
	// A pid that is certainly gone: a child that has exited and been reaped.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := strconv.Itoa(cmd.Process.Pid)
	self := strconv.Itoa(os.Getpid())
	live := strconv.Itoa(os.Getppid())
	for _, name := range []string{
		"vmd-cmd-" + dead + "-1", "vmd-cmd-" + self + "-2", "vmd-cmd-" + live + "-3",
		"vmd-marks-" + dead + "-4", "vmd-cmd-x-5", "other-" + dead,
	} {
		if err := os.Mkdir(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "vmd-cmd-"+dead+"-1", "f"), []byte("x"), 0o644)

	removed := Sweep(root, "cmd")
	want := []string{filepath.Join(root, "vmd-cmd-"+dead+"-1")}
	slices.Sort(removed)
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Errorf("Sweep = %q; want %q", removed, want)
	}
	entries, _ := os.ReadDir(root)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want = []string{"other-" + dead, "vmd-cmd-" + self + "-2", "vmd-cmd-" + live + "-3", "vmd-cmd-x-5", "vmd-marks-" + dead + "-4"}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("left %q; want %q", left, want)
	}
}

func TestPattern(t *testing.T) {
	d, err := os.MkdirTemp(t.TempDir(), Pattern("cmd"))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(d)[:len("vmd-cmd-"+strconv.Itoa(os.Getpid())+"-")] != "vmd-cmd-"+strconv.Itoa(os.Getpid())+"-" {
		t.Errorf("MkdirTemp(Pattern) = %q; want vmd-cmd-PID-*", d)
	}
	// This process is alive and not PID 1: its directory stays.
	if got := Sweep(filepath.Dir(d), "cmd"); len(got) != 0 {
		t.Errorf("Sweep = %q; want nothing removed", got)
	}
}
