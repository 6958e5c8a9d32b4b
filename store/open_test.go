package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fill stores n ended records with two events each.
func fill(t testing.TB, s *Store, n int) {
	t.Helper()
	ctx := context.Background()
	for range n {
		rec := create(t, s, "")
		for seq := int64(1); seq <= 2; seq++ {
			if _, err := s.AppendEvent(ctx, rec.ID, Event{seq, "message", []byte(`{"text":"some words of an answer"}`)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Finish(ctx, rec.ID, End{State: Succeeded, Status: 200, Body: []byte(`{"result":"done"}`)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrateFromVersion1(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	db, err := sql.Open("sqlite", dsn(filepath.Join(dir, FileName), Options{BusyTimeout: time.Second}, false))
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, db, migrations[:1]); err != nil {
		t.Fatalf("migrate to version 1 = %v", err)
	}
	id, _ := NewID()
	_, err = db.Exec(`INSERT INTO commands (id, state, created_at, idem_key, answer, status, ended_at)
		VALUES (?, 'succeeded', 1, 'old-key', '{"old":true}', 200, 2)`, id)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := open(t, dir)
	var version int
	s.r.QueryRow("PRAGMA user_version").Scan(&version)
	if version != len(migrations) {
		t.Errorf("user_version after Open = %d; want %d", version, len(migrations))
	}
	rec, err := s.ByKey(ctx, "old-key")
	if err != nil || rec.ID != id || string(rec.Body) != `{"old":true}` || rec.Webhook != (Delivery{}) {
		t.Errorf("ByKey(old-key) after migration = %+v, %v; want %s kept with no delivery", rec, err, id)
	}
}

func TestOpenNewerSchema(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := s.w.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(context.Background(), dir, Options{})
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), filepath.Join(dir, FileName)) {
		t.Errorf("Open(newer schema) = %v; want ErrNewerSchema naming the file", err)
	}
}

func TestOpenCorrupt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
	}{
		{"garbage", func(t *testing.T, path string) {
			writeFile(t, path, []byte(strings.Repeat("this is not a database\n", 400)))
		}},
		{"truncated", func(t *testing.T, path string) {
			s := open(t, filepath.Dir(path))
			fill(t, s, 200)
			s.Close()
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"header only", func(t *testing.T, path string) {
			writeFile(t, path, []byte("SQLite format 3\x00"))
		}},
		{"damaged pages", func(t *testing.T, path string) {
			s := open(t, filepath.Dir(path))
			fill(t, s, 200)
			s.Close()
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			defer f.Close()
			f.WriteAt([]byte(strings.Repeat("\xff", 8192)), 4096)
		}},
		{"directory", func(t *testing.T, path string) {
			os.Mkdir(path, 0o700)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			tt.prepare(t, path)
			s, err := Open(context.Background(), dir, Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s store) = nil error; want ErrCorrupt", tt.name)
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) ||
				!strings.Contains(err.Error(), "move") {
				t.Errorf("Open(%s store) = %v; want ErrCorrupt naming %s and saying move it aside", tt.name, err, path)
			}
		})
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOpenBadDir(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	writeFile(t, file, nil)
	for _, dir := range []string{filepath.Join(file, "sub"), "/tmp/what?"} {
		if s, err := Open(context.Background(), dir, Options{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) = nil; want an error", dir)
		}
	}
}

func TestLeftRunningAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s := open(t, dir)
	running := create(t, s, "k")
	s.AppendEvent(ctx, running.ID, Event{1, "message", []byte(`"partial"`)})
	fill(t, s, 1)
	if left, _ := s.LeftRunning(ctx); len(left) != 0 {
		t.Errorf("LeftRunning on a fresh store = %d records; want 0", len(left))
	}
	create(t, s, "") // made after Open: running, but not left running
	s.Close()

	s = open(t, dir)
	left, err := s.LeftRunning(ctx)
	if err != nil || len(left) != 2 || left[0].ID != running.ID {
		t.Fatalf("LeftRunning after reopen = %d records, %v; want 2, first %s", len(left), err, running.ID)
	}
	evs, _ := s.Events(ctx, running.ID, 0)
	if len(evs) != 1 || string(evs[0].Data) != `"partial"` {
		t.Errorf("Events of the interrupted record = %+v; want the partial message", evs)
	}
	for _, rec := range left {
		if err := s.Finish(ctx, rec.ID, End{State: Interrupted, Status: 500}); err != nil {
			t.Fatal(err)
		}
	}
	if left, _ := s.LeftRunning(ctx); len(left) != 0 {
		t.Errorf("LeftRunning after finishing them = %d records; want 0", len(left))
	}
	if rec, _ := s.ByKey(ctx, "k"); rec.State != Interrupted {
		t.Errorf("ByKey(k).State = %q; want interrupted", rec.State)
	}
}

func TestSizeAndBackup(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		before, err := s.Size(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fill(t, s, 100)
		after, _ := s.Size(ctx)
		if after <= before {
			t.Errorf("Size after 100 records = %d; want more than %d", after, before)
		}
		backup := filepath.Join(t.TempDir(), "copy")
		if err := s.Backup(ctx, filepath.Join(backup, FileName)); err == nil {
			t.Errorf("Backup into a missing directory = nil; want an error")
		}
		os.Mkdir(backup, 0o700)
		if err := s.Backup(ctx, filepath.Join(backup, FileName)); err != nil {
			t.Fatalf("Backup = %v", err)
		}
		copied := open(t, backup)
		if recs, _, err := copied.List(ctx, 1000, "", 0); err != nil || len(recs) != 100 {
			t.Errorf("List of the backup = %d records, %v; want 100", len(recs), err)
		}
	})
}

// One vmd per state_dir: while a store is open, a second Open of its
// directory fails at once, naming the directory and the holder's pid,
// even in the same process (flock belongs to the open file description),
// and before it reads the database: a file no store could open is not
// looked at. Once the holder lets go, the directory opens again.
func TestOpenLocksDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		hold func(t *testing.T, dir string) (release func() error)
	}{
		{"an open store", func(t *testing.T, dir string) func() error {
			s := open(t, dir)
			fill(t, s, 1)
			return s.Close
		}},
		{"a lock over a corrupt file", func(t *testing.T, dir string) func() error {
			lock, err := lockDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, FileName), []byte(strings.Repeat("this is not a database\n", 400)))
			return func() error {
				os.Remove(filepath.Join(dir, FileName))
				return lock.Close()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			release := tt.hold(t, dir)
			s, err := Open(context.Background(), dir, Options{})
			if err == nil {
				s.Close()
				t.Fatalf("second Open(%s) = nil; want ErrInUse", dir)
			}
			want := fmt.Sprintf("state_dir %s is in use by another vmd (pid %d): stop it, or give this one another state_dir (STATE_DIR)",
				dir, os.Getpid())
			if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), want) {
				t.Errorf("second Open(%s) = %v; want ErrInUse saying %q", dir, err, want)
			}
			if err := release(); err != nil {
				t.Fatal(err)
			}
			open(t, dir)
		})
	}
}

// An in-memory store takes no lock: any number open at once.
func TestMemoryTakesNoLock(t *testing.T) {
	t.Parallel()
	open(t, Memory)
	open(t, Memory)
}
