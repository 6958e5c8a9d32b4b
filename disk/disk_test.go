package disk_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmd-dev/vmd/disk"
	"github.com/vmd-dev/vmd/internal/testfs"
)

// TestGuardTmpfs: a workspace on an 8 MiB tmpfs, the temp directory on
// the same one, the images elsewhere; 4 MiB wanted free.
func TestGuardTmpfs(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	ws := testfs.Tmpfs(t, "8m")
	tmp := filepath.Join(ws, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	g := disk.NewGuard(4*mib,
		disk.Dir{Name: "workspace", Path: ws},
		disk.Dir{Name: "images", Path: t.TempDir()},
		disk.Dir{Name: "temp", Path: tmp},
	)

	free := g.Free()
	if len(free) != 2 || free[0].Name() != "workspace+temp" || free[0].Path != ws || free[1].Name() != "images" {
		t.Fatalf("Free() = %+v; want workspace+temp on %s, then images", free, ws)
	}
	if free[0].Size != 8*mib || free[0].Free == 0 || free[0].Free > free[0].Size {
		t.Errorf("tmpfs Free = %d of %d; want some of %d", free[0].Free, free[0].Size, 8*mib)
	}
	if err := g.Check(); err != nil {
		t.Fatalf("Check() on an empty tmpfs = %v; want nil", err)
	}

	// 6 MiB of the 8 written: 2 left, below the 4 wanted.
	big := filepath.Join(tmp, "big")
	if err := os.WriteFile(big, make([]byte, 6*mib), 0o644); err != nil {
		t.Fatal(err)
	}
	err := g.Check()
	var low *disk.LowSpaceError
	if !errors.As(err, &low) {
		t.Fatalf("Check() with 2 MiB free = %v; want a *LowSpaceError", err)
	}
	if low.FS.Path != ws || low.Need != 4*mib || low.FS.Free >= 4*mib {
		t.Errorf("LowSpaceError = %+v; want %s with under 4 MiB free, 4 MiB needed", low, ws)
	}
	for _, w := range []string{"workspace+temp", ws, "MiB free", "4.0 MiB needed", "min_free_disk"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Check() = %q; want it to say %q", err, w)
		}
	}

	// Freed: good again, at the next call.
	if err := os.Remove(big); err != nil {
		t.Fatal(err)
	}
	if err := g.Check(); err != nil {
		t.Errorf("Check() once freed = %v; want nil", err)
	}
}

func TestGuardDedup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	g := disk.NewGuard(1, disk.Dir{Name: "workspace", Path: dir}, disk.Dir{Name: "temp", Path: sub})
	if free := g.Free(); len(free) != 1 || free[0].Name() != "workspace+temp" || free[0].Err != nil {
		t.Errorf("Free() = %+v; want one filesystem, workspace+temp", free)
	}
}

func TestGuardMissingDir(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing")
	g := disk.NewGuard(1, disk.Dir{Name: "images", Path: missing})
	free := g.Free()
	if len(free) != 1 || free[0].Err == nil || free[0].Path != missing {
		t.Errorf("Free() = %+v; want the images directory with an error", free)
	}
	err := g.Check()
	var low *disk.LowSpaceError
	if err == nil || errors.As(err, &low) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Check() = %v; want an error naming %s, not a LowSpaceError", err, missing)
	}
	// Disabled: no measure at all.
	if err := disk.NewGuard(0, disk.Dir{Name: "images", Path: missing}).Check(); err != nil {
		t.Errorf("Check() with no minimum = %v; want nil", err)
	}
}

// BenchmarkGuardCheck is what the guard adds to each command: a stat and a
// statfs per directory, here three on two filesystems.
func BenchmarkGuardCheck(b *testing.B) {
	dir := b.TempDir()
	g := disk.NewGuard(1, disk.Dir{Name: "workspace", Path: dir},
		disk.Dir{Name: "images", Path: dir}, disk.Dir{Name: "temp", Path: "/dev/shm"})
	for b.Loop() {
		if err := g.Check(); err != nil {
			b.Fatal(err)
		}
	}
}
