package store

import (
	"context"
	"testing"
	"time"
)

func TestPrune(t *testing.T) {
	t.Parallel()
	base := time.Unix(1_000_000, 0)
	// Each case: records ended at base+i hours (i = 0..5), the two oldest
	// with a pending webhook when pending is set, and one running record.
	tests := []struct {
		name      string
		retention time.Duration
		max       int
		pending   bool
		wantLeft  int // records left, the running one included
	}{
		{"nothing to do", 0, 0, false, 7},
		{"retention", 3*time.Hour + time.Minute, 0, false, 1 + 4}, // ended at 2h..5h stay
		{"max commands", 0, 3, false, 3},                          // the running one counts
		{"both", 2*time.Hour + time.Minute, 5, false, 1 + 3},      // retention is stricter
		{"pending webhook kept", 0, 1, true, 1 + 2},               // two pending stay
		{"retention beats pending", time.Minute, 0, true, 1 + 1},  // the one ended at 5h is not before now-1m
		{"max above count", 0, 100, false, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, Memory)
			ctx := context.Background()
			events := map[string]bool{}
			for i := range 6 {
				rec := create(t, s, "")
				events[rec.ID] = true
				s.AppendEvent(ctx, rec.ID, Event{1, "message", []byte(`"x"`)})
				end := End{State: Succeeded, EndedAt: base.Add(time.Duration(i) * time.Hour)}
				if tt.pending && i < 2 {
					end.Webhook = []byte("{}")
				}
				if err := s.Finish(ctx, rec.ID, end); err != nil {
					t.Fatal(err)
				}
			}
			running := create(t, s, "")
			now := base.Add(5*time.Hour + time.Minute)
			n, err := s.Prune(ctx, now, tt.retention, tt.max)
			recs, _, _ := s.List(ctx, 100, "", 0)
			if err != nil || len(recs) != tt.wantLeft || n != 7-tt.wantLeft {
				t.Fatalf("Prune(%v, %d) = %d, %v, left %d; want %d deleted, %d left",
					tt.retention, tt.max, n, err, len(recs), 7-tt.wantLeft, tt.wantLeft)
			}
			if recs[0].ID != running.ID {
				t.Errorf("newest record after Prune = %s; want the running %s", recs[0].ID, running.ID)
			}
			var orphans int
			s.r.QueryRow("SELECT COUNT(*) FROM events WHERE command_id NOT IN (SELECT id FROM commands)").Scan(&orphans)
			if orphans != 0 {
				t.Errorf("events left without a record = %d; want 0", orphans)
			}
		})
	}
}

func TestPruneManyBatches(t *testing.T) {
	t.Parallel()
	s := open(t, Memory)
	// Straight into the table: through Create and Finish this is slow
	// under -race, and Prune is what is being tested.
	tx, _ := s.w.Begin()
	for range pruneBatch*2 + 10 {
		id, _ := NewID()
		tx.Exec("INSERT INTO commands (id, state, created_at, ended_at) VALUES (?, 'succeeded', 1, 2)", id)
		tx.Exec("INSERT INTO events (command_id, seq, type, data) VALUES (?, 1, 'message', '{}')", id)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(context.Background(), time.Now(), 0, 10)
	if err != nil || n != pruneBatch*2 {
		t.Errorf("Prune(max 10) of %d = %d, %v; want %d", pruneBatch*2+10, n, err, pruneBatch*2)
	}
	var outbox int
	s.r.QueryRow("SELECT COUNT(*) FROM outbox").Scan(&outbox)
	if outbox != 0 {
		t.Errorf("outbox rows = %d; want 0", outbox)
	}
}
