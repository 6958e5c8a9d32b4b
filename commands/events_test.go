package commands

import (
	"strings"
	"testing"
)

// A subscriber that does not read holds at most its bound; what it missed
// is told as one dropped event, after what was queued.
func TestSubscriptionBound(t *testing.T) {
	t.Parallel()
	big := Event{Kind: EventMessage, Text: strings.Repeat("x", 200)}
	s := newSubscription(5 * big.Size() / 2)
	for range 100 {
		s.push(big)
	}
	evs := s.Take()
	if len(evs) != 3 || evs[2].Kind != EventDropped || evs[2].Dropped != 98 {
		t.Fatalf("Take() = %d events, last %+v; want 2 kept and a dropped event for 98", len(evs), evs[len(evs)-1])
	}
	s.push(big)
	if evs := s.Take(); len(evs) != 1 || evs[0].Kind != EventMessage {
		t.Errorf("Take() after the drop = %+v; want the new event alone", evs)
	}
	if evs := s.Take(); len(evs) != 0 {
		t.Errorf("Take() with nothing new = %+v; want none", evs)
	}
}

// Once events are dropped, later ones are dropped too until the reader
// catches up: the reader never sees a gap without a dropped event.
func TestSubscriptionNoSilentGap(t *testing.T) {
	t.Parallel()
	small := Event{Kind: EventImage, Image: "a.png"}
	s := newSubscription(2 * small.Size())
	s.push(Event{Kind: EventMessage, Text: strings.Repeat("x", 3*small.Size())}) // too big: dropped
	s.push(small)                                                                // fits, but after a drop
	evs := s.Take()
	if len(evs) != 1 || evs[0].Kind != EventDropped || evs[0].Dropped != 2 {
		t.Errorf("Take() = %+v; want one dropped event for 2", evs)
	}
}
