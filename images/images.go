// Package images owns the images directory: it watches it with fsnotify,
// records the images a command makes, deletes images past their TTL and
// opens them for serving. Nothing else in vmd touches the directory.
package images

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/internal/leftovers"
)

// Markers: to know that the watcher has handled every event up to a point,
// the store creates a marker file and waits for the watcher to report it.
// One inotify instance queues the events of all its watches in order, so
// the markers live in a private directory on tmpfs where creating a file
// costs microseconds, not in the images directory on a slower disk.
const markRoot = "/dev/shm"

// barrierWait bounds how long End waits for its marker to come through the
// watcher before it falls back to scanning the directory.
const barrierWait = 500 * time.Millisecond

// coarseClock is more than one tick of the clock file times are taken from.
const coarseClock = 10 * time.Millisecond

var (
	// ErrInvalidName is returned by Open for a name that is not a plain file
	// name inside the directory.
	ErrInvalidName = errors.New("invalid image name")
	// ErrNotFound is returned by Open when no regular file has that name.
	ErrNotFound = errors.New("image not found")
)

// contentTypes maps the extensions counted as images to their media types.
var contentTypes = map[string]string{
	".png":  "image/png",
	".jpg":  "image/jpeg",
	".jpeg": "image/jpeg",
	".gif":  "image/gif",
	".webp": "image/webp",
	".svg":  "image/svg+xml",
	".avif": "image/avif",
	".bmp":  "image/bmp",
}

// ContentType returns the media type for a file name, by its extension.
func ContentType(name string) string {
	if t, ok := contentTypes[strings.ToLower(filepath.Ext(name))]; ok {
		return t
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".pdf":
		return "application/pdf"
	case ".json":
		return "application/json"
	case ".txt", ".log", ".md":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// IsImage reports whether name is counted as an image: a visible file with
// an image extension.
func IsImage(name string) bool {
	_, ok := contentTypes[strings.ToLower(filepath.Ext(name))]
	return ok && !strings.HasPrefix(name, ".")
}

// expires reports whether a file is deleted past the TTL: images, and the
// page snapshots (page-*.yml) and console logs (console-*.log) Playwright
// MCP writes beside its screenshots, which would otherwise pile up. Other
// files are left alone, in case images_dir is shared.
func expires(name string) bool {
	if IsImage(name) {
		return true
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yml", ".yaml", ".log":
		return !strings.HasPrefix(name, ".")
	}
	return false
}

// servable reports whether a file is an image that /images/ can serve, and
// so one to list in an answer.
func servable(name string) bool { return IsImage(name) && ValidName(name) }

// ValidName reports whether name is a plain file name that stays inside the
// directory: not empty, no separators of any platform, no NUL or other
// control characters, not a dot name (".", "..", hidden files).
func ValidName(name string) bool {
	if name == "" || len(name) > 255 || name[0] == '.' {
		return false
	}
	for _, r := range name {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Store is the images directory and its watcher. Run is its actor.
type Store struct {
	dir   string
	own   *leftovers.Dir // dir, when Open made it for want of one; else nil
	marks *leftovers.Dir // private directory of marker files
	ttl   time.Duration
	log   hclog.Logger
	w     *fsnotify.Watcher

	stop     chan struct{}
	stopOnce sync.Once

	watchMu sync.Mutex  // serializes watching the directory again
	watched os.FileInfo // the directory the watch is on

	mu       sync.Mutex
	rec      *Recording               // the recording in progress, if any
	barriers map[string]chan struct{} // marker name → closed when seen
	spent    []string                 // markers no longer waited for, their files still there
	seq      int

	stats counters // for metrics: see stats.go
}

// dirMode keeps a vmd's screenshots its own: the API serves them only
// with its token, and other users of the machine have no business reading
// them from the disk.
const dirMode = 0o700

// Open opens the images directory dir, creating it if need be, checks that
// vmd can write it and starts watching it. A directory vmd cannot create
// or write is an error naming images_dir and the fix: vmd would start, and
// every screenshot would be lost.
//
// Empty dir, for a vmd that keeps no state (state_dir ":memory:"), is a
// directory vmd-images-* of the store's own under the system's temporary
// directory: private to this vmd, locked while it lives
// (internal/leftovers), removed when Run returns, and swept by a later
// Open if the process died first.
func Open(dir string, ttl time.Duration, log hclog.Logger) (_ *Store, err error) {
	var own *leftovers.Dir
	if dir == "" {
		root := os.TempDir()
		if gone := leftovers.Sweep(root, "images"); len(gone) > 0 {
			log.Info("removed images dirs left by a previous vmd", "count", len(gone))
		}
		if own, err = leftovers.Make(root, "images"); err != nil {
			return nil, fmt.Errorf("images_dir: cannot make a directory of vmd's own in %s (make TMPDIR writable by vmd's user, or set IMAGES_DIR to a directory it can write): %w", root, err)
		}
		defer func() {
			if err != nil {
				own.Remove()
			}
		}()
		dir = own.Path
	} else if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("images_dir %q cannot be created (create it writable by vmd's user, or set IMAGES_DIR to a directory vmd can write): %w", dir, err)
	}
	s := &Store{dir: dir, own: own, ttl: ttl, log: log,
		stop:     make(chan struct{}),
		barriers: map[string]chan struct{}{},
	}
	if err := s.CheckWritable(); err != nil {
		return nil, fmt.Errorf("screenshots would be lost (make images_dir writable by vmd's user, or set IMAGES_DIR to a directory vmd can write): %w", err)
	}
	if s.w, err = fsnotify.NewWatcher(); err != nil {
		return nil, fmt.Errorf("images_dir %q: watcher: %w", dir, err)
	}
	if err := s.w.Add(dir); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("images_dir %q: watch: %w", dir, err)
	}
	if s.watched, err = os.Stat(dir); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("images_dir %q: %w", dir, err)
	}
	root := markRoot
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		root = os.TempDir()
	}
	if gone := leftovers.Sweep(root, "marks"); len(gone) > 0 {
		log.Info("removed marker dirs left by a previous vmd", "count", len(gone))
	}
	s.marks, err = leftovers.Make(root, "marks")
	if err == nil {
		if err = s.w.Add(s.marks.Path); err != nil {
			s.marks.Remove()
		}
	}
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("images marker directory: %w", err)
	}
	return s, nil
}

// Dir is the directory the store owns.
func (s *Store) Dir() string { return s.dir }

// Run handles the watcher's events and deletes expired images until Stop;
// then it removes the directory if Open made it.
func (s *Store) Run() error {
	if s.own != nil {
		defer s.own.Remove()
	}
	defer s.marks.Remove()
	defer s.w.Close()
	s.clean(time.Now())
	tick := time.NewTicker(cleanInterval(s.ttl))
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-s.w.Events:
			if !ok {
				return errors.New("images watcher closed")
			}
			s.event(ev)
		case err, ok := <-s.w.Errors:
			if !ok {
				return errors.New("images watcher closed")
			}
			s.watchError(err)
		case now := <-tick.C:
			s.clean(now)
			s.removeSpent()
		case <-s.stop:
			return nil
		}
	}
}

// Stop ends Run.
func (s *Store) Stop() { s.stopOnce.Do(func() { close(s.stop) }) }

// cleanInterval checks for expired images often enough that none lives
// much past its TTL, and at most once a second.
func cleanInterval(ttl time.Duration) time.Duration {
	return min(max(ttl/4, time.Second), time.Minute)
}

func (s *Store) event(ev fsnotify.Event) {
	name, parent := filepath.Base(ev.Name), filepath.Dir(ev.Name)
	if ev.Name == filepath.Clean(s.dir) {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			s.rewatch("images directory removed; recreating it")
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if parent == s.marks.Path {
		if ch, ok := s.barriers[name]; ok && ev.Has(fsnotify.Create) {
			close(ch)
			delete(s.barriers, name)
			if s.rec != nil && name == s.rec.mark {
				s.rec.armed = true
			}
		}
		return
	}
	if parent != filepath.Clean(s.dir) {
		return
	}
	if s.rec != nil && s.rec.armed && servable(name) && (ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write)) {
		s.rec.add(name)
	}
}

// rewatch recreates the directory after someone removed or moved it, so
// that later screenshots have somewhere to go and are still seen, and
// watches it again.
func (s *Store) rewatch(why string) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	s.rewatchLocked(why)
}

func (s *Store) rewatchLocked(why string) {
	s.log.Warn(why, "dir", s.dir)
	_ = s.w.Remove(s.dir)
	if err := os.MkdirAll(s.dir, dirMode); err != nil {
		s.log.Error("cannot recreate images directory", "dir", s.dir, "error", err)
		return
	}
	if err := s.w.Add(s.dir); err != nil {
		s.log.Error("cannot watch images directory", "dir", s.dir, "error", err)
	}
	if fi, err := os.Stat(s.dir); err == nil {
		s.watched = fi
	}
	// Files made between the MkdirAll and the Add were not seen.
	s.mu.Lock()
	if s.rec != nil {
		s.rec.lost = true
	}
	s.mu.Unlock()
}

// check makes sure the watch is on the directory that is there now. It can
// be gone or replaced without the watcher hearing of it: its removal lost
// in a queue overflow, or a filesystem mounted over it, which inotify does
// not report.
func (s *Store) check() {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	fi, err := os.Stat(s.dir)
	switch {
	case err == nil && os.SameFile(fi, s.watched):
	case err == nil:
		s.rewatchLocked("images directory replaced or mounted over; watching the new one")
	default:
		s.rewatchLocked("images directory gone; recreating it")
	}
}

func (s *Store) watchError(err error) {
	s.mu.Lock()
	if s.rec != nil {
		// Events were lost; End scans the directory instead.
		s.rec.lost = true
	}
	s.mu.Unlock()
	s.log.Warn("images watcher error", "error", err)
	// What was lost may be the directory's own removal.
	s.check()
}

// clean deletes images older than the TTL, except those of the recording in
// progress: a command longer than the TTL still gets its screenshots back.
func (s *Store) clean(now time.Time) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		s.log.Warn("cannot list images directory", "dir", s.dir, "error", err)
		return
	}
	s.mu.Lock()
	keep := map[string]bool{}
	if s.rec != nil {
		for _, n := range s.rec.names {
			keep[n] = true
		}
	}
	s.mu.Unlock()
	removed := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || !expires(e.Name()) || keep[e.Name()] {
			continue
		}
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < s.ttl {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, e.Name())); err == nil {
			removed++
		}
	}
	s.stats.cleaned.Add(uint64(removed))
	if removed > 0 {
		s.log.Info("expired files deleted", "count", removed, "ttl", s.ttl)
	}
}

// File is an open image, ready to serve.
type File struct {
	*os.File
	Size        int64
	ContentType string
}

// OpenFile opens the image called name for reading. Only a regular file
// directly inside the directory is opened: symlinks are not followed, and
// FIFOs, devices and directories are not served.
func (s *Store) OpenFile(name string) (*File, error) {
	if !ValidName(name) {
		return nil, ErrInvalidName
	}
	// O_NOFOLLOW refuses a symlink in the last (only) element; O_NONBLOCK
	// keeps a FIFO planted under an image's name from blocking the open.
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENXIO) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, ErrNotFound
	}
	return &File{File: f, Size: fi.Size(), ContentType: ContentType(name)}, nil
}
