package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// open opens a store in dir (or Memory) and closes it at the end of t.
func open(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatalf("Open(%q) = %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// create stores a running record with key (may be "") and returns it.
func create(t testing.TB, s *Store, key string) Record {
	t.Helper()
	rec, created, err := s.Create(context.Background(), NewRecord{
		PromptLen: 5, IdempotencyKey: key, BodyHash: []byte("hash-" + key),
	})
	if err != nil || !created {
		t.Fatalf("Create(key %q) = %v, created %v; want a new record", key, err, created)
	}
	return rec
}

// stores runs f against an in-memory store and a file store.
func stores(t *testing.T, f func(t *testing.T, s *Store)) {
	for _, dir := range []string{Memory, "file"} {
		t.Run(dir, func(t *testing.T) {
			if dir == "file" {
				dir = t.TempDir()
			}
			f(t, open(t, dir))
		})
	}
}

func TestCreateGetRoundTrip(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 30, 8, 0, 0, 123456789, time.UTC)
		want := NewRecord{
			CreatedAt: at, PromptLen: 42, SessionID: "sess",
			IdempotencyKey: "k1", BodyHash: []byte{1, 2, 3}, Machine: "m1",
		}
		rec, created, err := s.Create(ctx, want)
		if err != nil || !created {
			t.Fatalf("Create = %v, created %v; want nil, true", err, created)
		}
		if _, err := ParseID(rec.ID); err != nil {
			t.Errorf("Create made id %q: %v", rec.ID, err)
		}
		got, err := s.Get(ctx, rec.ID)
		if err != nil {
			t.Fatalf("Get(%s) = %v", rec.ID, err)
		}
		if got.State != Running || !got.CreatedAt.Equal(at) || got.PromptLen != 42 ||
			got.SessionID != "sess" || got.IdempotencyKey != "k1" ||
			!bytes.Equal(got.BodyHash, []byte{1, 2, 3}) || got.Machine != "m1" {
			t.Errorf("Get = %+v; want the fields of %+v, running", got, want)
		}
		if byKey, err := s.ByKey(ctx, "k1"); err != nil || byKey.ID != rec.ID {
			t.Errorf("ByKey(k1) = %s, %v; want %s", byKey.ID, err, rec.ID)
		}
	})
}

func TestLookupMissing(t *testing.T) {
	t.Parallel()
	s := open(t, Memory)
	ctx := context.Background()
	id, _ := NewID()
	tests := []struct {
		name string
		err  error
	}{
		{"Get", func() error { _, err := s.Get(ctx, id); return err }()},
		{"ByKey", func() error { _, err := s.ByKey(ctx, "nope"); return err }()},
		{"ByKey empty", func() error { _, err := s.ByKey(ctx, ""); return err }()},
		{"Finish", s.Finish(ctx, id, End{State: Succeeded})},
		{"AppendEvent", func() error { _, err := s.AppendEvent(ctx, id, Event{Seq: 1}); return err }()},
		{"Attempted", s.Attempted(ctx, id, Attempt{Outcome: DeliveryDelivered})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, ErrNotFound) {
				t.Errorf("%s(missing) = %v; want ErrNotFound", tt.name, tt.err)
			}
		})
	}
	if err := s.Health(); err != nil {
		t.Errorf("Health() after caller mistakes = %v; want nil", err)
	}
}

func TestCreateKeyTaken(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		first := create(t, s, "key")
		again, created, err := s.Create(ctx, NewRecord{IdempotencyKey: "key", BodyHash: []byte("other")})
		if err != nil || created || again.ID != first.ID {
			t.Errorf("Create(same key) = %s, created %v, %v; want %s, false, nil", again.ID, created, err, first.ID)
		}
		if !bytes.Equal(again.BodyHash, first.BodyHash) {
			t.Errorf("Create(same key) hash = %q; want the first's %q", again.BodyHash, first.BodyHash)
		}
		// Records without a key never collide.
		create(t, s, "")
		create(t, s, "")
	})
}

func TestCreateConcurrentOneKey(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, s *Store) {
		const n = 8
		var wg sync.WaitGroup
		ids := make([]string, n)
		made := make([]bool, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				var rec Record
				rec, made[i], errs[i] = s.Create(context.Background(), NewRecord{IdempotencyKey: "same"})
				ids[i] = rec.ID
			})
		}
		wg.Wait()
		creators := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("Create #%d = %v", i, errs[i])
			}
			if made[i] {
				creators++
			}
			if ids[i] != ids[0] {
				t.Errorf("Create #%d = %s; want %s like the others", i, ids[i], ids[0])
			}
		}
		if creators != 1 {
			t.Errorf("%d of %d concurrent Creates created; want 1", creators, n)
		}
	})
}

func TestCreateGivenID(t *testing.T) {
	t.Parallel()
	s := open(t, Memory)
	ctx := context.Background()
	id, _ := NewID()
	tests := []struct {
		id      string
		wantErr error
	}{
		{id, nil},
		{"not-an-id", ErrBadID},
		{"00000000-0000-4000-8000-000000000000", ErrBadID}, // v4
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			rec, _, err := s.Create(ctx, NewRecord{ID: tt.id})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Create(id %q) = %v; want %v", tt.id, err, tt.wantErr)
			}
			if err == nil && rec.ID != tt.id {
				t.Errorf("Create(id %q) made %q; want it kept", tt.id, rec.ID)
			}
		})
	}
	if _, _, err := s.Create(ctx, NewRecord{ID: id}); err == nil {
		t.Errorf("Create(existing id) = nil; want an error")
	}
}

func TestStartedAndFinish(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		start := time.Unix(100, 0).UTC()
		rec, _, err := s.Create(ctx, NewRecord{StartedAt: start, SessionID: "s1"})
		if err != nil {
			t.Fatalf("Create = %v", err)
		}
		end := End{State: Timeout, Status: 408, Body: []byte(`{"error":"timeout"}`), EndedAt: time.Unix(200, 0)}
		if err := s.Finish(ctx, rec.ID, end); err != nil {
			t.Fatalf("Finish = %v", err)
		}
		got, _ := s.Get(ctx, rec.ID)
		if got.State != Timeout || got.Status != 408 || string(got.Body) != string(end.Body) ||
			!got.StartedAt.Equal(start) || !got.EndedAt.Equal(end.EndedAt) || got.SessionID != "s1" {
			t.Errorf("Get after Finish = %+v; want %+v started %v session s1", got, end, start)
		}
		if got.Webhook.State != DeliveryNone {
			t.Errorf("webhook state without a payload = %q; want none", got.Webhook.State)
		}
		again := End{State: Succeeded, Status: 200, Body: []byte("{}")}
		if err := s.Finish(ctx, rec.ID, again); !errors.Is(err, ErrNotRunning) {
			t.Errorf("second Finish = %v; want ErrNotRunning", err)
		}
		if got2, _ := s.Get(ctx, rec.ID); got2.State != Timeout {
			t.Errorf("state after second Finish = %q; want timeout kept", got2.State)
		}
	})
}

func TestFinishRefusesNonFinalState(t *testing.T) {
	t.Parallel()
	s := open(t, Memory)
	rec := create(t, s, "")
	for _, st := range []State{Running, Queued, ""} {
		if err := s.Finish(context.Background(), rec.ID, End{State: st}); err == nil {
			t.Errorf("Finish(state %q) = nil; want an error", st)
		}
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var ids []string
		for range 7 {
			ids = append(ids, create(t, s, "").ID)
		}
		var got []string
		before := ""
		for page := 0; ; page++ {
			recs, next, err := s.List(ctx, 3, before, 0)
			if err != nil {
				t.Fatalf("List(3, %q) = %v", before, err)
			}
			for _, r := range recs {
				got = append(got, r.ID)
			}
			if next == "" {
				break
			}
			before = next
		}
		slices.Reverse(ids)
		want := fmt.Sprint(ids)
		if fmt.Sprint(got) != want {
			t.Errorf("List pages = %v; want %v (newest first)", got, want)
		}
	})
}

// A page is bounded in answer bytes as well as in records: it ends before
// the first answer that would not fit, but always holds one record, and
// next goes on from its last record, so paging sees every record once.
func TestListPageBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		sizes    []int // answer sizes, newest first; 0 is a running record
		limit    int
		maxBytes int64
		want     string // the pages' sizes, newest first
	}{
		{"the bytes end pages", []int{10, 10, 10, 10, 10}, 100, 25, "[[10 10] [10 10] [10]]"},
		{"an exact fit", []int{10, 10, 10, 10}, 100, 20, "[[10 10] [10 10]]"},
		{"the count ends pages", []int{1, 1, 1, 1, 1}, 2, 1000, "[[1 1] [1 1] [1]]"},
		{"one answer over the bound is a page", []int{5, 100, 5, 5}, 100, 50, "[[5] [100] [5 5]]"},
		{"running records weigh nothing", []int{0, 30, 0, 30}, 100, 40, "[[0 30 0] [30]]"},
		{"no records", nil, 100, 10, "[[]]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, Memory)
			ctx := context.Background()
			for i := len(tt.sizes) - 1; i >= 0; i-- { // oldest first
				rec := create(t, s, "")
				if tt.sizes[i] > 0 {
					end := End{State: Succeeded, Status: 200, Body: bytes.Repeat([]byte("x"), tt.sizes[i])}
					if err := s.Finish(ctx, rec.ID, end); err != nil {
						t.Fatal(err)
					}
				}
			}
			var pages [][]int
			before := ""
			for {
				recs, next, err := s.List(ctx, tt.limit, before, tt.maxBytes)
				if err != nil {
					t.Fatalf("List(%d, %q, %d) = %v", tt.limit, before, tt.maxBytes, err)
				}
				page := []int{}
				for _, r := range recs {
					page = append(page, len(r.Body))
				}
				pages = append(pages, page)
				if next == "" {
					break
				}
				if next != recs[len(recs)-1].ID {
					t.Fatalf("List next = %s; want the page's last id %s", next, recs[len(recs)-1].ID)
				}
				before = next
			}
			if got := fmt.Sprint(pages); got != tt.want {
				t.Errorf("pages of List(%d, bytes %d) = %s; want %s", tt.limit, tt.maxBytes, got, tt.want)
			}
		})
	}
}

// List reads the answers of the records it returns and no others: what a
// page costs in memory is bounded by its bytes, whatever the records
// hold. (The driver and database/sql each copy an answer read into Go's
// heap, which TotalAlloc counts: a page costs about twice its bytes.) Not
// parallel: TotalAlloc is the whole test process's.
func TestListReadsOnlyItsPage(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), 1<<20)
	for range 20 {
		rec := create(t, s, "")
		if err := s.Finish(ctx, rec.ID, End{State: Succeeded, Status: 200, Body: big}); err != nil {
			t.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	recs, _, err := s.List(ctx, MaxList, "", 2<<20)
	runtime.ReadMemStats(&after)
	if err != nil || len(recs) != 2 {
		t.Fatalf("List(bytes 2 MiB) over 1 MiB answers = %d records, %v; want 2", len(recs), err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 6<<20 {
		t.Errorf("List of a 2 MiB page allocated %d KiB; want at most 6 MiB (the records it did not return were read)", got>>10)
	}
}
