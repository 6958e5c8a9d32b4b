package images

import (
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Recording collects the images made while one command runs.
type Recording struct {
	s      *Store
	notify func(name string) // may be nil
	start  time.Time
	mark   string // the marker written by Begin
	armed  bool   // the watcher has passed the marker: events are the command's
	names  []string
	seen   map[string]bool
	lost   bool // the watcher dropped events; End scans instead
}

// Begin starts recording. One recording at a time: the supervisor runs one
// command at a time. Events the watcher has not handled yet belong to
// earlier writes, so recording starts once the watcher passes a marker
// written here, before the command starts.
//
// notify, if not nil, hears each new image as the watcher sees it, from the
// watcher's goroutine: it must return at once. The file may still be being
// written. Images End finds only by scanning are not notified.
func (s *Store) Begin(notify func(name string)) *Recording {
	// File times come from the kernel's coarse clock, which may lag
	// time.Now by a tick: the scan fallback starts a little earlier.
	r := &Recording{s: s, notify: notify, start: time.Now().Add(-coarseClock), seen: map[string]bool{}}
	s.removeSpent()
	// One stat a command: the watch must be on the directory there now,
	// before the command starts.
	s.check()
	_, _, ok := s.mark(r)
	if !ok {
		s.mu.Lock()
		r.armed, r.lost = true, true
		s.mu.Unlock()
	}
	return r
}

func (r *Recording) add(name string) {
	if !r.seen[name] {
		r.seen[name] = true
		r.names = append(r.names, name)
		if r.notify != nil {
			r.notify(name)
		}
	}
}

// CatchUp waits until the watcher has handled every change made to the
// directory before the call (at most a moment: see barrier), so that the
// images written so far have been notified. It reports whether it has.
func (r *Recording) CatchUp() bool { return r.s.barrier() }

// End stops recording and returns the images made since Begin that still
// exist, in the order they appeared. Call it once nothing of the command can
// write any more: it first waits until the watcher has caught up.
func (r *Recording) End() []string {
	s := r.s
	caughtUp := s.barrier()
	s.forget(r.mark) // seen by now, unless the watcher is stopped
	s.mu.Lock()
	s.rec = nil
	names, lost := r.names, r.lost || !caughtUp || !r.armed
	s.mu.Unlock()
	if lost {
		names = r.scan(names)
	}
	out := names[:0:0]
	for _, n := range names {
		if fi, err := os.Lstat(filepath.Join(s.dir, n)); err == nil && fi.Mode().IsRegular() {
			out = append(out, n)
		}
	}
	s.stats.written.Add(uint64(len(out)))
	return out
}

// scan adds the images modified since the recording began, for when the
// watcher could not be trusted to have seen them all.
func (r *Recording) scan(names []string) []string {
	entries, err := os.ReadDir(r.s.dir)
	if err != nil {
		return names
	}
	for _, e := range entries {
		if !servable(e.Name()) || r.seen[e.Name()] {
			continue
		}
		if info, err := e.Info(); err == nil && !info.ModTime().Before(r.start) {
			r.seen[e.Name()] = true
			names = append(names, e.Name())
		}
	}
	return names
}

// mark writes a marker file the watcher will report, and returns its name
// and the channel closed when the watcher gets to it. One inotify instance
// queues the events of all its watches in order: once the marker is seen,
// every event before it has been handled. With rec, the marker also starts
// rec's recording; rec is in place before the marker exists, so the watcher
// cannot miss it.
func (s *Store) mark(rec *Recording) (string, chan struct{}, bool) {
	s.mu.Lock()
	s.seq++
	name := strconv.Itoa(s.seq)
	ch := make(chan struct{})
	s.barriers[name] = ch
	if rec != nil {
		rec.mark = name
		s.rec = rec
	}
	s.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.marks.Path, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		s.log.Debug("images marker unavailable; scanning instead", "error", err)
		s.forget(name)
		return name, ch, false
	}
	f.Close()
	return name, ch, true
}

// forget stops waiting for a marker. Its file is removed later, by the
// next Begin or the periodic clean: not on the way to a command's answer.
func (s *Store) forget(name string) {
	s.mu.Lock()
	delete(s.barriers, name)
	s.spent = append(s.spent, name)
	s.mu.Unlock()
}

// removeSpent removes the marker files forgotten so far.
func (s *Store) removeSpent() {
	s.mu.Lock()
	spent := s.spent
	s.spent = nil
	s.mu.Unlock()
	for _, name := range spent {
		os.Remove(filepath.Join(s.marks.Path, name))
	}
}

// barrier waits until the watcher has handled every event so far.
func (s *Store) barrier() bool {
	name, ch, ok := s.mark(nil)
	if !ok {
		return false
	}
	defer s.forget(name)
	t := time.NewTimer(barrierWait)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		s.log.Warn("images watcher did not catch up; scanning instead", "waited", barrierWait)
		return false
	case <-s.stop:
		return false
	}
}
