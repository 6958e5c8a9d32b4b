//go:build !linux

package main

import (
	"os"
	"path/filepath"
	"testing"
)

// Outside Linux the faults that need mounts, /proc, inotify or prlimit are
// reported "not run", saying so; the others run.

type faultDisk struct{ root, images, tmp string }

func newFaultDisk(t testing.TB, root, _ string) *faultDisk {
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return &faultDisk{root: root, images: filepath.Join(root, "images"), tmp: filepath.Join(root, "tmp")}
}

// faultDiskSize is the Linux fault disk's; here there is no tmpfs.
const faultDiskSize = ""

const linuxOnlyWhy = "Linux only (mounts, /proc, inotify, prlimit)"

func needTmpfs(*faultEnv) string        { return linuxOnlyWhy }
func needMount(*faultEnv) string        { return linuxOnlyWhy }
func needReadOnly(*faultEnv) string     { return linuxOnlyWhy }
func needGuard(*faultEnv) string        { return linuxOnlyWhy }
func needStall(*faultEnv) string        { return linuxOnlyWhy }
func pause(testing.TB, int)             {}
func resume(testing.TB, int)            {}
func notHere(t testing.TB, _ *faultEnv) { t.Skip(linuxOnlyWhy) }

var (
	faultImagesReadOnly = notHere
	faultDiskFull       = notHere
	faultTmpReadOnly    = notHere
	faultMountOver      = notHere
	faultDescriptors    = notHere
	faultStall          = notHere
	faultStoreFull      = notHere
)
