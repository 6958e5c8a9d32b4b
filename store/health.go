package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/vmd-dev/vmd/disk"
)

// Stats are the store's counters, for /metrics.
type Stats struct {
	// WriteErrors counts writes that failed for a reason of the store's
	// own (disk full, read-only file system, I/O error), not a caller's
	// mistake such as ErrNotRunning.
	WriteErrors uint64
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{WriteErrors: s.writeErrors.Load()}
}

// probeRoom is the least free space the probe calls healthy: room for a
// command's writes, not only its own row.
const probeRoom = 64 << 10

// whileDown says what a store that cannot be written means for commands.
const whileDown = "meanwhile commands with an Idempotency-Key are refused (503), and others run with their records kept in memory until it can"

// DefaultProbeEvery is how often, at most, Health probes the store.
const DefaultProbeEvery = 5 * time.Second

// probeTimeout bounds one probe: a store that takes longer to write and
// read one row is not one to take commands on.
const probeTimeout = 2 * time.Second

// health is the state of the store's probe. The probe runs inside Health,
// when the last one is older than every, rather than in a goroutine of its
// own on a timer: a vmd nobody asks about writes nothing, there is nothing
// to stop at Close, and /ready polled every second still writes at most
// once every few seconds.
type health struct {
	every  time.Duration
	now    func() time.Time // the clock (tests)
	opened os.FileInfo      // the store file as Open found it; nil for Memory

	probing  sync.Mutex // held by the one probe running
	probedAt time.Time  // under Store.mu, as the rest
	probeErr error
	probes   int // probes run (tests)
}

func newHealth(opts Options) health {
	return health{every: opts.ProbeEvery, now: time.Now}
}

// Health is nil while the store works, else what is wrong and what to do.
// /ready names the store while it is not nil: the live request still gets
// its answer, but it will not survive a restart.
//
// It is the last write's error, until a later write or probe succeeds, or
// the last probe's: at most every ProbeEvery, Health checks that the path
// still leads to the file the store opened (a deleted or replaced file
// takes every record written since with it at the next start), then
// writes a row and reads it back. A probe that works again clears both.
func (s *Store) Health() error {
	s.probeIfDue()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.probeErr != nil {
		return s.probeErr
	}
	return s.lastErr
}

// probeIfDue probes the store when the last probe is older than every. A
// caller that finds a probe running does not wait for it: the last
// result will do.
func (s *Store) probeIfDue() {
	if !s.probing.TryLock() {
		return
	}
	defer s.probing.Unlock()
	s.mu.Lock()
	due := s.probedAt.IsZero() || s.now().Sub(s.probedAt) >= s.every
	s.mu.Unlock()
	if !due {
		return
	}
	err := s.probe()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.probedAt, s.probeErr = s.now(), err
	s.probes++
	if err == nil {
		s.lastErr = nil // the store takes writes again
	}
}

// probe checks the file, then writes a row and reads it back through the
// read pool.
func (s *Store) probe() error {
	if err := s.checkOpened(); err != nil {
		return err
	}
	// SQLite writes a small row into room its write-ahead log already has
	// while a larger write fails: a probe that only wrote would call a
	// full disk healthy right after a command's write failed on it.
	if s.path != "" { // in memory, there is no file system to measure
		if fs, err := disk.Measure(filepath.Dir(s.path)); err == nil && fs.Free < probeRoom {
			return fmt.Errorf("store %s cannot be written (disk full? read-only?): its file system has %d bytes free; %s; free space", s.where(), fs.Free, whileDown)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	nonce := rand.Int64()
	_, err := s.w.ExecContext(ctx, `INSERT INTO probe (id, at) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET at = excluded.at`, nonce)
	if err != nil {
		return fmt.Errorf("store %s cannot be written (disk full? read-only?); %s: free space or fix the file system: %w", s.where(), whileDown, err)
	}
	var got int64
	if err := s.r.QueryRowContext(ctx, "SELECT at FROM probe WHERE id = 1").Scan(&got); err != nil {
		return fmt.Errorf("store %s cannot be read: restart vmd: %w", s.where(), err)
	}
	if got != nonce {
		return fmt.Errorf("store %s did not read back what it wrote: restart vmd", s.where())
	}
	return nil
}

// checkOpened reports a store file that the path no longer leads to.
// SQLite goes on writing to the file it has open, without an error, and
// that file is gone once vmd stops.
func (s *Store) checkOpened() error {
	if s.opened == nil {
		return nil
	}
	fi, err := os.Stat(s.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("store file %s was deleted while vmd ran: the records written since are lost "+
			"when vmd stops; restart vmd to create it again (or restore a backup there first)", s.path)
	case err != nil:
		return fmt.Errorf("store file %s cannot be checked: %w", s.path, err)
	case !os.SameFile(fi, s.opened):
		return fmt.Errorf("store file %s was replaced while vmd ran: vmd still writes to the file it "+
			"opened, and the records written since are lost when vmd stops; put that file back, "+
			"or restart vmd to use the new one", s.path)
	}
	return nil
}

// where names the store in messages.
func (s *Store) where() string {
	if s.path == "" {
		return Memory
	}
	return s.path
}

// wrote records the outcome of a write and returns err unchanged. Caller
// mistakes and a cancelled context say nothing about the store's health.
func (s *Store) wrote(err error) error {
	switch {
	case err == nil:
		s.mu.Lock()
		s.lastErr = nil
		if s.probeErr != nil {
			s.probedAt = time.Time{} // the store may be well again: probe at the next Health
		}
		s.mu.Unlock()
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNotRunning),
		errors.Is(err, ErrSeq), errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded):
	default:
		s.writeErrors.Add(1)
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
	}
	return err
}

// Size is the store's size on disk: the database file plus its WAL. For an
// in-memory store it is the size of its pages.
func (s *Store) Size(ctx context.Context) (int64, error) {
	if s.path == "" {
		var pages, size int64
		if err := s.r.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
			return 0, fmt.Errorf("store size: %w", err)
		}
		if err := s.r.QueryRowContext(ctx, "PRAGMA page_size").Scan(&size); err != nil {
			return 0, fmt.Errorf("store size: %w", err)
		}
		return pages * size, nil
	}
	var total int64
	for _, p := range []string{s.path, s.path + "-wal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("store size: %w", err)
		}
		total += fi.Size()
	}
	return total, nil
}

// Backup writes a consistent copy of the store to path (which must not
// exist) while vmd runs, with SQLite's VACUUM INTO: the copy is compact and
// needs no -wal file beside it.
func (s *Store) Backup(ctx context.Context, path string) error {
	_, err := s.w.ExecContext(ctx, "VACUUM INTO ?", path)
	if err != nil {
		return fmt.Errorf("back up store to %s: %w", path, err)
	}
	return nil
}

// isCorrupt reports whether err is SQLite's word for a damaged file or a
// file that is not a database.
func isCorrupt(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE ||
		se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}
