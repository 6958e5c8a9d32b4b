package commands_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/vmd-dev/vmd/internal/vmdtest"
	"github.com/vmd-dev/vmd/outcome"
	"github.com/vmd-dev/vmd/store"
)

// EventPage pages through an ended command's stored events; a page of
// events this vmd does not know (a newer vmd's) is skipped, not taken for
// the end.
func TestEventPage(t *testing.T) {
	t.Parallel()
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake})
	ctx := context.Background()
	rec, _, err := s.Store.Create(ctx, store.NewRecord{})
	if err != nil {
		t.Fatal(err)
	}
	var evs []store.Event
	filler := strings.Repeat("x", store.EventPageBytes/4)
	for seq := int64(1); seq <= 12; seq++ {
		typ := "message"
		if seq > 2 && seq <= 10 { // two pages of them
			typ = "future"
		}
		evs = append(evs, store.Event{Seq: seq, Type: typ, Data: fmt.Appendf(nil, `{"text":"%d %s"}`, seq, filler)})
	}
	if err := s.Store.Finish(ctx, rec.ID, store.End{State: store.State(outcome.Succeeded), Status: 200, Events: evs}); err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	pages := 0
	for after := int64(0); ; pages++ {
		page, last, err := s.Commands.EventPage(ctx, rec.ID, after)
		if err != nil {
			t.Fatalf("EventPage(after %d) = %v", after, err)
		}
		if last == after {
			break
		}
		for _, e := range page {
			seqs = append(seqs, e.Seq)
		}
		after = last
	}
	if fmt.Sprint(seqs) != "[1 2 11 12]" || pages < 3 {
		t.Errorf("EventPage pages = %d, seqs %v; want [1 2 11 12] over 3 pages or more", pages, seqs)
	}
}
