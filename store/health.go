package store

import (
	"context"
	"errors"
	"fmt"
	"os"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
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

// Health is nil while the store can be written, else the error of the last
// write, until a later write succeeds. /ready names the store while it is
// not nil: the live request still gets its answer, but it will not survive.
func (s *Store) Health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// wrote records the outcome of a write and returns err unchanged. Caller
// mistakes and a cancelled context say nothing about the store's health.
func (s *Store) wrote(err error) error {
	switch {
	case err == nil:
		s.mu.Lock()
		s.lastErr = nil
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
