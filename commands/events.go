package commands

import (
	"sync"

	"github.com/vmd-dev/vmd/agent"
)

// Event is progress of a command, live and stored: the agent's one event
// type, numbered by the command.
type Event = agent.Event

// The kinds of events.
const (
	EventStart   = agent.EventStart
	EventMessage = agent.EventMessage
	EventImage   = agent.EventImage
	EventDropped = agent.EventDropped
)

// Subscription is one reader of a command's events. Its queue is bounded
// in bytes: past the bound, events are dropped (counted, not queued) until
// the reader takes what is queued, and the reader is then told how many
// with an EventDropped. A slow or absent reader costs at most the bound.
type Subscription struct {
	mu      sync.Mutex
	events  []Event
	bytes   int
	max     int
	dropped int
	ready   chan struct{}
}

func newSubscription(max int) *Subscription {
	return &Subscription{max: max, ready: make(chan struct{}, 1)}
}

// Ready is signalled when events may be waiting: then call Take.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Take returns the events queued so far, oldest first, and an EventDropped
// last if some were dropped after them.
func (s *Subscription) Take() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	evs := s.events
	if s.dropped > 0 {
		evs = append(evs, Event{Kind: EventDropped, Dropped: s.dropped})
	}
	s.events, s.bytes, s.dropped = nil, 0, 0
	return evs
}

func (s *Subscription) push(ev Event) {
	s.mu.Lock()
	if n := ev.Size(); s.dropped > 0 || s.bytes+n > s.max {
		s.dropped++
	} else {
		s.events = append(s.events, ev)
		s.bytes += n
	}
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}
