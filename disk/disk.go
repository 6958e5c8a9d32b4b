package workspace

import (
	"fmt"
	"slices"
	"strings"
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
