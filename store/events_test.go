package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestAppendEvent(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		rec := create(t, s, "")
		steps := []struct {
			ev        Event
			wantTotal int64
			wantErr   error
		}{
			{Event{1, "start", []byte(`{"a":1}`)}, 7, nil},
			{Event{2, "message", []byte(`"hello"`)}, 14, nil},
			{Event{2, "message", []byte(`"again"`)}, 0, ErrSeq},
			{Event{1, "message", []byte(`"older"`)}, 0, ErrSeq},
			{Event{5, "message", []byte(`"gap"`)}, 19, nil}, // a failed write may leave a gap
		}
		for _, st := range steps {
			total, err := s.AppendEvent(ctx, rec.ID, st.ev)
			if !errors.Is(err, st.wantErr) || total != st.wantTotal {
				t.Errorf("AppendEvent(seq %d) = %d, %v; want %d, %v", st.ev.Seq, total, err, st.wantTotal, st.wantErr)
			}
		}
		tests := []struct {
			after int64
			want  string
		}{
			{0, "[1 2 5]"},
			{1, "[2 5]"},
			{4, "[5]"},
			{5, "[]"},
			{-3, "[1 2 5]"},
		}
		for _, tt := range tests {
			evs, err := s.Events(ctx, rec.ID, tt.after)
			if got := seqs(evs); err != nil || got != tt.want {
				t.Errorf("Events(after %d) = %s, %v; want %s", tt.after, got, err, tt.want)
			}
		}
		got, _ := s.Get(ctx, rec.ID)
		if got.EventSeq != 5 || got.EventBytes != 19 {
			t.Errorf("record seq, bytes = %d, %d; want 5, 19", got.EventSeq, got.EventBytes)
		}
		if err := s.Finish(ctx, rec.ID, End{State: Succeeded}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendEvent(ctx, rec.ID, Event{Seq: 6}); !errors.Is(err, ErrNotRunning) {
			t.Errorf("AppendEvent after Finish = %v; want ErrNotRunning", err)
		}
	})
}

func TestAppendEvents(t *testing.T) {
	t.Parallel()
	s := open(t, Memory)
	ctx := context.Background()
	rec := create(t, s, "")
	ev := func(seq int64) Event { return Event{seq, "message", []byte(`"ab"`)} }
	steps := []struct {
		evs       []Event
		wantTotal int64
		wantErr   error
	}{
		{nil, 0, nil},
		{[]Event{ev(1), ev(2), ev(3)}, 12, nil},
		{[]Event{ev(4), ev(4)}, 0, ErrSeq}, // all or nothing: 4 is not kept
		{[]Event{ev(4)}, 16, nil},
	}
	for _, st := range steps {
		total, err := s.AppendEvents(ctx, rec.ID, st.evs...)
		if !errors.Is(err, st.wantErr) || total != st.wantTotal {
			t.Errorf("AppendEvents(%s) = %d, %v; want %d, %v", seqs(st.evs), total, err, st.wantTotal, st.wantErr)
		}
	}
	if evs, _ := s.Events(ctx, rec.ID, 0); seqs(evs) != "[1 2 3 4]" {
		t.Errorf("Events = %s; want [1 2 3 4]", seqs(evs))
	}
}

// Finish with events appends them and ends the record in one commit: all
// of it, or (a seq out of order) none of it.
func TestFinishWithEvents(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		rec := create(t, s, "")
		ev := func(seq int64) Event { return Event{seq, "message", []byte(`"ab"`)} }
		if _, err := s.AppendEvents(ctx, rec.ID, ev(1)); err != nil {
			t.Fatal(err)
		}
		end := End{State: Succeeded, Status: 200, Body: []byte(`{}`), Events: []Event{ev(3), ev(2)}}
		if err := s.Finish(ctx, rec.ID, end); !errors.Is(err, ErrSeq) {
			t.Fatalf("Finish with events out of order = %v; want ErrSeq", err)
		}
		if got, _ := s.Get(ctx, rec.ID); got.State != Running {
			t.Errorf("after the failed Finish: state %s; want running (nothing of it kept)", got.State)
		}
		end.Events = []Event{ev(2), ev(3)}
		if err := s.Finish(ctx, rec.ID, end); err != nil {
			t.Fatal(err)
		}
		if evs, _ := s.Events(ctx, rec.ID, 0); seqs(evs) != "[1 2 3]" {
			t.Errorf("Events = %s; want [1 2 3]", seqs(evs))
		}
		if got, _ := s.Get(ctx, rec.ID); got.State != Succeeded || got.EventSeq != 3 {
			t.Errorf("record = %s, last event %d; want succeeded, 3", got.State, got.EventSeq)
		}
	})
}

func TestEventsKeepBytes(t *testing.T) {
	t.Parallel()
	s := open(t, Memory)
	rec := create(t, s, "")
	data := []byte("{\"text\":\"ünïcode \\u0000 \x00 raw\"}")
	if _, err := s.AppendEvent(context.Background(), rec.ID, Event{1, "message", data}); err != nil {
		t.Fatal(err)
	}
	evs, _ := s.Events(context.Background(), rec.ID, 0)
	if len(evs) != 1 || string(evs[0].Data) != string(data) || evs[0].Type != "message" {
		t.Errorf("Events = %+v; want one message %q", evs, data)
	}
}

func seqs(evs []Event) string {
	s := make([]int64, 0, len(evs))
	for _, ev := range evs {
		s = append(s, ev.Seq)
	}
	return fmt.Sprint(s)
}

func TestOutbox(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		t0 := time.Unix(1000, 0)
		a, b, c := create(t, s, ""), create(t, s, ""), create(t, s, "")
		finish := func(id string, at time.Time, payload []byte) {
			t.Helper()
			err := s.Finish(ctx, id, End{State: Succeeded, Status: 200, EndedAt: at, Webhook: payload})
			if err != nil {
				t.Fatalf("Finish(%s) = %v", id, err)
			}
		}
		finish(a.ID, t0, []byte(`{"n":"a"}`))
		finish(b.ID, t0.Add(time.Second), []byte(`{"n":"b"}`))
		finish(c.ID, t0, nil) // no webhook
		if next, ok, err := s.NextDue(ctx); err != nil || !ok || !next.Equal(t0) {
			t.Errorf("NextDue = %v, %v, %v; want %v, true", next, ok, err, t0)
		}
		due, err := s.Due(ctx, t0, 10)
		if err != nil || len(due) != 1 || due[0].CommandID != a.ID || string(due[0].Payload) != `{"n":"a"}` {
			t.Fatalf("Due(t0) = %+v, %v; want a's row alone", due, err)
		}
		retry := t0.Add(5 * time.Second)
		if err := s.Attempted(ctx, a.ID, Attempt{At: t0, Status: 503, Outcome: DeliveryPending, Next: retry}); err != nil {
			t.Fatalf("Attempted(retry) = %v", err)
		}
		if due, _ := s.Due(ctx, t0.Add(2*time.Second), 10); len(due) != 1 || due[0].CommandID != b.ID {
			t.Errorf("Due(t0+2s) = %+v; want b's row alone", due)
		}
		delivered := t0.Add(6 * time.Second)
		if err := s.Attempted(ctx, a.ID, Attempt{At: delivered, Status: 204, Outcome: DeliveryDelivered}); err != nil {
			t.Fatalf("Attempted(delivered) = %v", err)
		}
		if err := s.Attempted(ctx, b.ID, Attempt{At: delivered, Status: 410, Outcome: DeliveryGone}); err != nil {
			t.Fatalf("Attempted(gone) = %v", err)
		}
		if due, _ := s.Due(ctx, t0.Add(time.Hour), 10); len(due) != 0 {
			t.Errorf("Due after final outcomes = %+v; want none", due)
		}
		if _, ok, _ := s.NextDue(ctx); ok {
			t.Errorf("NextDue after final outcomes: ok; want none pending")
		}
		if err := s.Attempted(ctx, a.ID, Attempt{At: delivered, Outcome: DeliveryDelivered}); !errors.Is(err, ErrNotFound) {
			t.Errorf("Attempted(done row) = %v; want ErrNotFound", err)
		}
		checkDelivery(t, s, a.ID, Delivery{DeliveryDelivered, 2, 204, delivered.UTC()})
		checkDelivery(t, s, b.ID, Delivery{DeliveryGone, 1, 410, time.Time{}})
		checkDelivery(t, s, c.ID, Delivery{})
	})
}

func checkDelivery(t *testing.T, s *Store, id string, want Delivery) {
	t.Helper()
	rec, err := s.Get(context.Background(), id)
	if err != nil || rec.Webhook != want {
		t.Errorf("Get(%s).Webhook = %+v, %v; want %+v", id, rec.Webhook, err, want)
	}
}

func TestAttemptedUnknownOutcome(t *testing.T) {
	t.Parallel()
	s := open(t, Memory)
	rec := create(t, s, "")
	s.Finish(context.Background(), rec.ID, End{State: Failed, Webhook: []byte("{}")})
	if err := s.Attempted(context.Background(), rec.ID, Attempt{Outcome: "maybe"}); err == nil {
		t.Errorf("Attempted(outcome maybe) = nil; want an error")
	}
	if err := s.Health(); err != nil {
		t.Errorf("Health() after a caller mistake = %v; want nil", err)
	}
}

// EventPage pages through a command's events by bytes: each page ends
// with the event whose data reaches the bound, so paging from any seq
// sees every later event once, in order.
func TestEventPage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		sizes    []int // the events' data sizes, seq 1, 2, ...
		after    int64
		maxBytes int
		want     string // the pages' seqs
	}{
		{"pages by bytes", []int{10, 10, 10, 10, 10}, 0, 20, "[[1 2] [3 4] [5]]"},
		{"the event past the bound ends its page", []int{10, 10, 10, 10}, 0, 15, "[[1 2] [3 4]]"},
		{"one event over the bound is a page", []int{5, 100, 5}, 0, 50, "[[1 2] [3]]"},
		{"from a seq", []int{10, 10, 10, 10, 10}, 2, 20, "[[3 4] [5]]"},
		{"past the last", []int{10, 10}, 2, 20, "[]"},
		{"no events", nil, 0, 20, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, Memory)
			ctx := context.Background()
			rec := create(t, s, "")
			for i, n := range tt.sizes {
				data := []byte(`"` + strings.Repeat("x", n-2) + `"`)
				if _, err := s.AppendEvent(ctx, rec.ID, Event{int64(i + 1), "message", data}); err != nil {
					t.Fatal(err)
				}
			}
			var pages []string
			for after := tt.after; ; {
				evs, err := s.EventPage(ctx, rec.ID, after, tt.maxBytes)
				if err != nil {
					t.Fatalf("EventPage(after %d, %d bytes) = %v", after, tt.maxBytes, err)
				}
				if len(evs) == 0 {
					break
				}
				pages = append(pages, seqs(evs))
				after = evs[len(evs)-1].Seq
			}
			if got := "[" + strings.Join(pages, " ") + "]"; got != tt.want {
				t.Errorf("EventPage pages after %d by %d bytes = %s; want %s", tt.after, tt.maxBytes, got, tt.want)
			}
		})
	}
}
