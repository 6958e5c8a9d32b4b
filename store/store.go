// Package store keeps vmd's command records, their events and the webhook
// outbox in one SQLite file (modernc.org/sqlite: pure Go, so the image still
// builds with CGO_ENABLED=0).
//
// The file is <state_dir>/vmd.db, in WAL mode with synchronous=NORMAL: a
// commit is durable against a crash of vmd and, on a journaling file system,
// loses at most the last commits (never consistency) on a power cut. All
// writes go through one connection, so a write never waits on another
// writer's lock; reads use a small pool of their own and see the last
// committed state.
//
// The store only stores. What a state means, what the answer body holds,
// when a webhook is due and how events are bounded belong to its callers;
// the store keeps every write that belongs together in one transaction.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the store's file inside the state directory.
const FileName = "vmd.db"

// LockName is the state directory's lock file: the vmd that holds its
// lock, from Open to Close, is the only one using the directory.
const LockName = "vmd.lock"

// Memory, given to Open as the directory, keeps the store in memory: for
// tests and benchmarks only, nothing survives Close.
const Memory = ":memory:"

// Errors the callers tell apart.
var (
	// ErrNotFound: no record (or outbox row) with that id or key.
	ErrNotFound = errors.New("not found")
	// ErrNotRunning: the record has already ended, so it takes no more
	// events and cannot end twice.
	ErrNotRunning = errors.New("command is not running")
	// ErrSeq: an event's seq is not above the last one stored.
	ErrSeq = errors.New("event seq out of order")
	// ErrCorrupt: the file is not a readable SQLite database.
	ErrCorrupt = errors.New("store file is corrupt or not a database")
	// ErrNewerSchema: the file was written by a newer vmd.
	ErrNewerSchema = errors.New("store schema is newer than this vmd")
	// ErrInUse: another process (another vmd) holds the state
	// directory's lock.
	ErrInUse = errors.New("locked by another process")
)

// Options tunes Open; the zero value is ready to use.
type Options struct {
	// Readers is the size of the read pool of a file store (default 2).
	Readers int
	// BusyTimeout is how long a connection waits for a lock held by
	// another process (a backup, the sqlite3 shell) before failing
	// (default 5s).
	BusyTimeout time.Duration
	// ProbeEvery is how old Health's last probe of the store may be
	// before Health probes again (default DefaultProbeEvery).
	ProbeEvery time.Duration
}

// Store is an open store. Its methods are safe for concurrent use.
type Store struct {
	path string    // the file; "" for Memory
	lock io.Closer // the state directory's lock; nil for Memory
	w    *sql.DB   // the one writer connection
	r    *sql.DB   // the read pool (== w for Memory)
	st   *stmts    // the writer's prepared statements

	leftRunning []string // ids found running at Open
	counts      counts   // running commands' event totals

	writeErrors atomic.Uint64
	mu          sync.Mutex
	lastErr     error // the last write's error; nil once a write succeeds

	health // the probe of the store Health runs
}

// Open opens (creating if need be) the store in dir, or an in-memory store
// when dir is Memory, and migrates its schema.
//
// A file store first takes dir's lock (LockName), before it reads
// anything, and holds it until Close: while one vmd has the directory,
// another's Open fails at once with an error naming the directory and the
// holder's pid (wrapping ErrInUse), and it has neither ended the first's
// running commands nor read its outbox. A file that exists but is not a
// readable vmd database is an error naming the file and what to do
// (wrapping ErrCorrupt): the store never silently starts empty over it.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if opts.Readers <= 0 {
		opts.Readers = 2 // one command runs at a time; reads are the API's
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.ProbeEvery <= 0 {
		opts.ProbeEvery = DefaultProbeEvery
	}
	if dir == Memory {
		return openMemory(ctx, opts)
	}
	if err := prepareDir(dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{path: filepath.Join(dir, FileName), lock: lock, health: newHealth(opts)}
	if err := checkFile(s.path); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.openFile(ctx, opts); err != nil {
		s.Close()
		return nil, openError(s.path, err)
	}
	// The file as opened, for Health to tell when the path no longer
	// leads to it (deleted, replaced).
	if s.opened, err = os.Stat(s.path); err != nil {
		s.Close()
		return nil, openError(s.path, err)
	}
	return s, nil
}

// openMemory opens a one-connection in-memory store. Readers share the
// writer's connection: each :memory: connection would be its own database.
func openMemory(ctx context.Context, opts Options) (*Store, error) {
	db, err := sql.Open("sqlite", dsn(Memory, opts, false))
	if err != nil {
		return nil, fmt.Errorf("open in-memory store: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s := &Store{w: db, r: db, health: newHealth(opts)}
	if err := s.init(ctx); err != nil {
		s.closeDBs() //nolint:errcheck // the init error says more
		return nil, fmt.Errorf("open in-memory store: %w", err)
	}
	return s, nil
}

// prepareDir checks dir's name and makes it.
func prepareDir(dir string) error {
	if strings.ContainsAny(dir, "?#") {
		return fmt.Errorf("state_dir %q: must not contain '?' or '#'", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state_dir %q cannot be created (create it writable by vmd's user, or set STATE_DIR to a directory vmd can write): %w", dir, err)
	}
	return nil
}

// checkFile checks what sits at the store's path before SQLite sees it:
// SQLite would report a foreign file only at the first query, with a
// message that names no file.
func checkFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("store %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("store %s is not a regular file: move it aside: %w", path, ErrCorrupt)
	case fi.Size() == 0:
		return nil // a fresh file SQLite created and nothing wrote yet
	}
	if err := checkHeader(path); err != nil {
		return openError(path, err)
	}
	return nil
}

// checkHeader reads the 16-byte magic every SQLite database starts with.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 16)
	if _, err := f.ReadAt(head, 0); err != nil || string(head) != "SQLite format 3\x00" {
		return fmt.Errorf("no SQLite header: %w", ErrCorrupt)
	}
	return nil
}

// openFile opens the writer, migrates and checks the file, then opens the
// read pool.
func (s *Store) openFile(ctx context.Context, opts Options) error {
	var err error
	if s.w, err = sql.Open("sqlite", dsn(s.path, opts, false)); err != nil {
		return err
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetConnMaxLifetime(0)
	if err := s.init(ctx); err != nil {
		return err
	}
	if s.r, err = sql.Open("sqlite", dsn(s.path, opts, true)); err != nil {
		return err
	}
	s.r.SetMaxOpenConns(opts.Readers)
	return s.r.PingContext(ctx)
}

// init migrates, checks the pages and notes the records left running.
func (s *Store) init(ctx context.Context) error {
	if err := migrate(ctx, s.w, migrations); err != nil {
		return err
	}
	var check string
	if err := s.w.QueryRowContext(ctx, "PRAGMA quick_check(1)").Scan(&check); err != nil {
		return err
	}
	if check != "ok" {
		return fmt.Errorf("quick_check: %s: %w", check, ErrCorrupt)
	}
	ids, err := s.runningIDs(ctx)
	if err != nil {
		return err
	}
	s.leftRunning = ids
	s.st, err = prepare(ctx, s.w)
	return err
}

// dsn is the driver's data source name: the pragmas run on every new
// connection, and _txlock=immediate makes each write transaction take the
// write lock at BEGIN, so it cannot fail halfway with SQLITE_BUSY.
func dsn(path string, opts Options, readOnly bool) string {
	q := []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", opts.BusyTimeout.Milliseconds()),
		"_pragma=synchronous(NORMAL)",
		// 256 KiB of page cache a connection, not SQLite's 2 MiB: vmd's
		// working set is one command's rows, the kernel caches the file
		// anyway, and five connections' caches filling up as the file
		// grew added 3-11 MiB to vmd's resident memory.
		"_pragma=cache_size(-256)",
		"_txlock=immediate",
	}
	if path != Memory {
		q = append(q, "_pragma=journal_mode(WAL)")
	}
	if readOnly {
		q = append(q, "_pragma=query_only(1)")
	}
	return "file:" + path + "?" + strings.Join(q, "&")
}

// openError says what an operator should do about a store that will not
// open.
func openError(path string, err error) error {
	if errors.Is(err, ErrCorrupt) || isCorrupt(err) {
		if !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return fmt.Errorf("store %s cannot be read: stop vmd, move the file aside "+
			"(mv %s %s.broken, with its -wal and -shm files) and start again with an "+
			"empty store, or restore a backup: %w", path, path, path, err)
	}
	if errors.Is(err, ErrNewerSchema) {
		return fmt.Errorf("store %s: run the newer vmd, or move the file aside: %w", path, err)
	}
	return fmt.Errorf("open store %s: check that state_dir is writable by vmd: %w", path, err)
}

// Path is the store's file, or "" for an in-memory store.
func (s *Store) Path() string { return s.path }

// Close closes the store, then lets go of the state directory's lock:
// with WAL, the last connection to close folds the log back into the main
// file, and no other vmd may open the file before that is done.
func (s *Store) Close() error {
	err := s.closeDBs()
	if s.lock != nil {
		err = errors.Join(err, s.lock.Close())
	}
	return err
}

func (s *Store) closeDBs() error {
	errs := []error{s.st.close()}
	if s.r != nil && s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}
