package commands

import (
	"sync"

	"github.com/vmd-dev/vmd/agent"
)

// EventKind tells events apart.
type EventKind int

// The events of a command, in the order they can come.
const (
	// EventStart: the CLI has started its session. At most one.
	EventStart EventKind = iota
	// EventMessage: the assistant said something or called tools.
	EventMessage
	// EventImage: a new image is complete in the images directory.
	EventImage
	// EventDropped: events were left out here, past a byte bound; Dropped
	// counts them.
	EventDropped
)

// Event is progress of a command, for a live view and for its record.
type Event struct {
	Kind EventKind
	// Pid and SessionID (when known) come with EventStart.
	Pid       int
	SessionID string
	// Text and Tools (names of the tools called) come with EventMessage.
	Text  string
	Tools []string
	// Image is the file name of an EventImage.
	Image string
	// Dropped counts the events an EventDropped stands for.
	Dropped int
}

// eventOverhead is what an event costs beside its strings.
const eventOverhead = 64

// size is about what an event holds in memory, which the bounds count.
func (e Event) size() int {
	n := eventOverhead + len(e.SessionID) + len(e.Text) + len(e.Image)
	for _, t := range e.Tools {
		n += len(t) + 16
	}
	return n
}

func fromAgent(ev agent.Event) Event {
	e := Event{Pid: ev.Pid, SessionID: ev.SessionID, Text: ev.Text, Tools: ev.Tools, Image: ev.Image}
	switch ev.Kind {
	case agent.EventStart:
		e.Kind = EventStart
	case agent.EventMessage:
		e.Kind = EventMessage
	case agent.EventImage:
		e.Kind = EventImage
	}
	return e
}

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
	if n := ev.size(); s.dropped > 0 || s.bytes+n > s.max {
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
