package commands

import (
	"strings"
	"testing"
)

// A subscriber that does not read holds at most its bound; what it missed
// is told as one dropped event, after what was queued.
func TestSubscriptionBound(t *testing.T) {
	s := newSubscription(10 * eventOverhead)
	big := Event{Kind: EventMessage, Text: strings.Repeat("x", 4*eventOverhead)}
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
	s := newSubscription(3 * eventOverhead)
	s.push(Event{Kind: EventMessage, Text: strings.Repeat("x", 3*eventOverhead)}) // too big: dropped
	s.push(Event{Kind: EventImage, Image: "a.png"})                               // fits, but after a drop
	evs := s.Take()
	if len(evs) != 1 || evs[0].Kind != EventDropped || evs[0].Dropped != 2 {
		t.Errorf("Take() = %+v; want one dropped event for 2", evs)
	}
}

func TestStateOf(t *testing.T) {
	for _, tt := range []struct {
		outcome string
		state   State
	}{
		{"ok", Succeeded}, {"agent_error", AgentError}, {"session_not_found", Failed}, {"timeout", TimedOut},
		{"cancelled", Cancelled}, {"drained", Drained}, {"crashed", Failed}, {"start_failed", Failed}, {"stalled", Stalled},
	} {
		found := false
		for o := range 9 {
			if oc := outcomeFor(o); oc.String() == tt.outcome {
				found = true
				if got := stateOf(oc); got != tt.state {
					t.Errorf("stateOf(%s) = %s; want %s", tt.outcome, got, tt.state)
				}
			}
		}
		if !found {
			t.Errorf("no outcome named %s", tt.outcome)
		}
	}
}
