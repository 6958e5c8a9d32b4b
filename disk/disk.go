// Package disk is the disk guard: it measures the filesystems commands
// fill (the workspace, the images, the temporary directories) and refuses
// new work when one runs low. It registers its own metrics and readiness
// check.
package disk

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/vmd-dev/vmd/internal/metric"
	"github.com/vmd-dev/vmd/internal/ready"
)

// DefaultMinFree is the least free space, in bytes, a filesystem must have
// for a new command: 1 GiB.
const DefaultMinFree = 1 << 30

// Dir is a directory the disk guard watches, with the role it plays.
type Dir struct {
	// Name says what the directory is for: "workspace", "images", "temp".
	Name string
	// Path is the directory.
	Path string
}

// Measure measures the filesystem path is on: its Free and Size.
func Measure(path string) (FS, error) { return statfs(path) }

// FS is one filesystem the guard watches, as last measured.
type FS struct {
	// Names are the roles of the directories on it, in the order given:
	// "workspace", or "workspace+temp" when they share one.
	Names []string
	// Path is the first of those directories.
	Path string
	// Free is the space left to an unprivileged user, in bytes.
	Free uint64
	// Size is the filesystem's size, in bytes.
	Size uint64
	// Err is why it could not be measured, or nil.
	Err error

	dev uint64
}

// Name is the roles of the directories on the filesystem, joined by "+".
func (f FS) Name() string { return strings.Join(f.Names, "+") }

// Guard refuses new work when a filesystem runs low. Its methods measure
// afresh at each call (a statfs per directory), so a filesystem mounted or
// freed meanwhile counts at once; they are safe for concurrent use.
type Guard struct {
	dirs    []Dir
	minFree uint64
}

// NewGuard watches dirs, wanting minFree bytes free on each filesystem they
// are on; a minFree of 0 disables Check (Free still measures).
func NewGuard(minFree uint64, dirs ...Dir) *Guard {
	return &Guard{dirs: slices.Clone(dirs), minFree: minFree}
}

// MinFree is the least free space, in bytes, Check wants on each filesystem.
func (g *Guard) MinFree() uint64 { return g.minFree }

// Free measures each filesystem once, even when several directories are
// on it (same st_dev), in the order their first directory was given.
func (g *Guard) Free() []FS {
	var out []FS
	for _, d := range g.dirs {
		fs, err := statfs(d.Path)
		if err == nil {
			if i := slices.IndexFunc(out, func(f FS) bool { return f.Err == nil && f.dev == fs.dev }); i >= 0 {
				out[i].Names = append(out[i].Names, d.Name)
				continue
			}
		}
		fs.Names, fs.Path, fs.Err = []string{d.Name}, d.Path, err
		out = append(out, fs)
	}
	return out
}

// LowSpaceError says which filesystem has too little free space. The API
// answers it with 507 insufficient_storage and its message.
type LowSpaceError struct {
	FS   FS
	Need uint64
}

func (e *LowSpaceError) Error() string {
	return fmt.Sprintf("low disk space on the %s filesystem (%s): %s free, %s needed (min_free_disk)",
		e.FS.Name(), e.FS.Path, mib(e.FS.Free), mib(e.Need))
}

// Check returns a *LowSpaceError for the first filesystem with less than
// the minimum free, or an error naming a directory it cannot measure
// (missing, say), or nil.
func (g *Guard) Check() error {
	if g.minFree == 0 {
		return nil
	}
	for _, f := range g.Free() {
		if f.Err != nil {
			return fmt.Errorf("disk space of the %s directory %s: %w", f.Name(), f.Path, f.Err)
		}
		if f.Free < g.minFree {
			return &LowSpaceError{FS: f, Need: g.minFree}
		}
	}
	return nil
}

// mib writes n bytes in MiB, the unit of MIN_FREE_DISK_MB.
func mib(n uint64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// Status is the guard as /status shows it: its minimum and each watched
// filesystem as measured now.
type Status struct {
	MinFreeBytes uint64     `json:"minFreeBytes"`
	Filesystems  []FSStatus `json:"filesystems"`
}

// FSStatus is one filesystem in Status.
type FSStatus struct {
	// Name is the roles of the directories on the filesystem:
	// "workspace", "images", "temp", or several joined by "+".
	Name      string `json:"name"`
	Path      string `json:"path"`
	FreeBytes uint64 `json:"freeBytes"`
	SizeBytes uint64 `json:"sizeBytes"`
	Error     string `json:"error,omitempty"`
}

// Status measures the filesystems now.
func (g *Guard) Status() *Status {
	st := &Status{MinFreeBytes: g.minFree, Filesystems: []FSStatus{}}
	for _, f := range g.Free() {
		fs := FSStatus{Name: f.Name(), Path: f.Path, FreeBytes: f.Free, SizeBytes: f.Size}
		if f.Err != nil {
			fs.Error = f.Err.Error()
		}
		st.Filesystems = append(st.Filesystems, fs)
	}
	return st
}

// The guard's metric families.
const (
	familyFree    = "vmd_disk_free_bytes"
	familySize    = "vmd_disk_size_bytes"
	familyMinFree = "vmd_disk_min_free_bytes"
)

// Register adds the guard's metrics (each filesystem's free space and size,
// measured at each scrape; one that cannot be measured is 0, and /status
// and /ready say why) and its readiness check, in the words a refused
// command gets.
func (g *Guard) Register(reg *metric.Registry, p *ready.Prober) {
	reg.Help(familyFree, "Free space left to vmd's user on each filesystem the disk guard watches, by filesystem (workspace, images, temp, or several joined by +) and path.")
	reg.Help(familySize, "Size of each filesystem the disk guard watches.")
	reg.Help(familyMinFree, "min_free_disk: below this free space on any watched filesystem, new commands get 507 (0: the guard is off).")
	reg.Gauge(familyMinFree, func() float64 { return float64(g.minFree) })
	for _, f := range g.Free() {
		name, path := f.Name(), f.Path
		measure := func(size bool) func() float64 {
			return func() float64 {
				for _, now := range g.Free() {
					if now.Path == path && now.Err == nil {
						if size {
							return float64(now.Size)
						}
						return float64(now.Free)
					}
				}
				return 0
			}
		}
		reg.Gauge(familyFree, measure(false), "filesystem", name, "path", path)
		reg.Gauge(familySize, measure(true), "filesystem", name, "path", path)
	}
	p.Add("disk", func(context.Context) ready.Status {
		if err := g.Check(); err != nil {
			return ready.Status{Message: err.Error()}
		}
		return ready.Status{OK: true}
	})
}
