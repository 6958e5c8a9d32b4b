package vmdtest_test

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// TestProgramT runs subtests the way cmd/vmdload does: Fatal ends the
// subtest alone, Skip is told apart from a failure, cleanups run last
// first, and a failed subtest fails its parent.
func TestProgramT(t *testing.T) {
	root := vmdtest.NewT(context.Background(), "root", nil)
	var order []string
	fatal := root.Run("fatal", func(t testing.TB) {
		t.Cleanup(func() { order = append(order, "first") })
		t.Cleanup(func() { order = append(order, "second") })
		t.Errorf("one %d", 1)
		t.Fatal("two")
		order = append(order, "not reached")
	})
	if got, want := fatal.Errors(), []string{"one 1", "two"}; !slices.Equal(got, want) {
		t.Errorf("Errors() = %q; want %q", got, want)
	}
	if want := []string{"second", "first"}; !slices.Equal(order, want) {
		t.Errorf("cleanups ran %q; want %q", order, want)
	}
	skip := root.Run("skip", func(t testing.TB) { t.Skipf("no %s here", "prlimit") })
	if skip.Failed() || skip.SkipReason() != "no prlimit here" {
		t.Errorf("skipped subtest: failed %v, reason %q; want not failed, %q", skip.Failed(), skip.SkipReason(), "no prlimit here")
	}
	if !root.Failed() || fatal.Name() != "root/fatal" {
		t.Errorf("root failed %v, subtest named %q; want failed, root/fatal", root.Failed(), fatal.Name())
	}
	dir := root.TempDir()
	root.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("TempDir %s after Close: %v; want it removed", dir, err)
	}
}
