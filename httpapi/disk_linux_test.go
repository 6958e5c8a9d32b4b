package httpapi_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// A full disk under the store: the answer still arrives, /ready names the
// store, and /metrics counts the failed writes. Needs root for the small
// tmpfs; CI (VMD_REQUIRE_REAL=1) fails rather than skips without it.
func TestFullDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		if os.Getenv("VMD_REQUIRE_REAL") == "1" {
			t.Fatalf("cannot mount a small tmpfs: %v", err)
		}
		t.Skipf("cannot mount a small tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	s := &server{vmdtest.Start(t, vmdtest.Options{Bin: fake, StateDir: dir})}
	if got := s.do(t, "POST", "/command", `{"text":"say before"}`); got.status != 200 {
		t.Fatalf("command before the disk fills = %d %s", got.status, got.body)
	}
	fill(t, filepath.Join(dir, "filler"))
	got := s.do(t, "POST", "/command", `{"text":"say answered anyway"}`)
	if got.status != 200 || !strings.Contains(got.body, "answered anyway") {
		t.Errorf("command on a full disk = %d %s; want its answer", got.status, got.body)
	}
	r := s.ready(t)
	if r.status != 503 || len(r.Fail) != 1 || r.Fail[0] != "store" || r.Checks["store"].OK {
		t.Errorf("GET /ready on a full disk = %d %+v; want 503 naming the store", r.status, r)
	}
	if m := s.do(t, "GET", "/metrics", ""); strings.Contains(m.body, "vmd_store_write_errors_total 0\n") ||
		!strings.Contains(m.body, "vmd_store_write_errors_total") {
		t.Errorf("metrics count no store write error:\n%s", m.body)
	}
	os.Remove(filepath.Join(dir, "filler"))
	if got := s.do(t, "POST", "/command", `{"text":"say after"}`); got.status != 200 {
		t.Errorf("command once there is room again = %d %s", got.status, got.body)
	}
	if r := s.ready(t); r.status != 200 {
		t.Errorf("GET /ready once the store writes again = %d %+v; want 200", r.status, r)
	}
}

// fill writes to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}
