package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clock is a test's clock for the store's probe.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// withClock sets the store's probe on c.
func withClock(s *Store) *clock {
	c := &clock{t: time.Unix(1000, 0)}
	s.now = c.now
	return c
}

func probes(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.probes
}

// Health probes the store at most every ProbeEvery, however often it is
// asked: /ready polled every second does not write every second.
func TestHealthProbesAtMostEveryInterval(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	c := withClock(s)
	steps := []struct {
		advance    time.Duration
		calls      int
		wantProbes int
	}{
		{0, 1, 1}, // the first Health probes
		{0, 10, 1},
		{time.Second, 1, 1},
		{3*time.Second + 999*time.Millisecond, 1, 1},
		{time.Millisecond, 3, 2}, // 5 s after the first
		{10 * time.Second, 1, 3},
	}
	for i, st := range steps {
		c.advance(st.advance)
		for range st.calls {
			if err := s.Health(); err != nil {
				t.Fatalf("step %d: Health() = %v", i, err)
			}
		}
		if got := probes(s); got != st.wantProbes {
			t.Errorf("step %d (+%v, %d calls): %d probes; want %d", i, st.advance, st.calls, got, st.wantProbes)
		}
	}
}

// A store file deleted or replaced under vmd goes on taking writes (SQLite
// writes to the file it has open), but Health says so at its next probe,
// with what to do, until the path leads to the file again.
func TestHealthSeesTheFileGo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		brk   func(t *testing.T, path string)
		fix   func(t *testing.T, path string) // nil: no fix, restart only
		words string
	}{
		{"deleted", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, nil, "was deleted while vmd ran: the records written since are lost when vmd stops; restart vmd to create it again"},
		{"moved away and back", func(t *testing.T, path string) {
			if err := os.Rename(path, path+".aside"); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, path string) {
			if err := os.Rename(path+".aside", path); err != nil {
				t.Fatal(err)
			}
		}, "was deleted while vmd ran"},
		{"replaced", func(t *testing.T, path string) {
			if err := os.Rename(path, path+".aside"); err != nil {
				t.Fatal(err)
			}
			other := filepath.Join(t.TempDir(), "other")
			s := open(t, other)
			fill(t, s, 1)
			s.Close()
			if err := os.Rename(filepath.Join(other, FileName), path); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, path string) {
			if err := os.Rename(path+".aside", path); err != nil {
				t.Fatal(err)
			}
		}, "was replaced while vmd ran: vmd still writes to the file it opened, and the records written since are lost when vmd stops; put that file back, or restart vmd to use the new one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, t.TempDir())
			c := withClock(s)
			fill(t, s, 2)
			if err := s.Health(); err != nil {
				t.Fatalf("Health() of a good store = %v", err)
			}
			tt.brk(t, s.Path())
			fill(t, s, 1) // SQLite takes it without a word
			c.advance(DefaultProbeEvery)
			err := s.Health()
			if err == nil || !strings.Contains(err.Error(), s.Path()+" "+tt.words) {
				t.Fatalf("Health() once the file is %s = %v; want it to say %q", tt.name, err, tt.words)
			}
			fill(t, s, 1)
			if err := s.Health(); err == nil {
				t.Errorf("Health() after a good write to a %s file = nil; want the error kept", tt.name)
			}
			if tt.fix == nil {
				return
			}
			tt.fix(t, s.Path())
			c.advance(DefaultProbeEvery)
			if err := s.Health(); err != nil {
				t.Errorf("Health() once the file is back = %v; want nil", err)
			}
		})
	}
}

// The in-memory store has no file: its probe writes and reads alone.
func TestHealthMemory(t *testing.T) {
	t.Parallel()
	s := open(t, Memory)
	if err := s.Health(); err != nil || probes(s) != 1 {
		t.Errorf("Health() of an in-memory store = %v after %d probes; want nil after 1", err, probes(s))
	}
	var at int64
	if err := s.r.QueryRowContext(context.Background(), "SELECT at FROM probe WHERE id = 1").Scan(&at); err != nil {
		t.Errorf("the probe row: %v; want it written", err)
	}
}
