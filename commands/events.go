package commands

import (
	"encoding/json"
	"sync"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/store"
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

// kindNames are the events' types as the store keeps them.
var kindNames = [...]string{EventStart: "start", EventMessage: "message", EventImage: "image", EventDropped: "dropped"}

// String is the event's type as stored: start, message, image, dropped.
func (k EventKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Event is progress of a command, for a live view and for its record.
type Event struct {
	Kind EventKind `json:"-"`
	// Seq numbers the command's events 1, 2, ... in order; 0 for an
	// EventDropped, which stands for events, not one of them.
	Seq int64 `json:"-"`
	// Pid and SessionID (when known) come with EventStart.
	Pid       int    `json:"pid,omitempty"`
	SessionID string `json:"sessionId,omitempty"`
	// Text and Tools (names of the tools called) come with EventMessage.
	Text  string   `json:"text,omitempty"`
	Tools []string `json:"tools,omitempty"`
	// Image is the file name of an EventImage.
	Image string `json:"image,omitempty"`
	// Dropped counts the events an EventDropped stands for.
	Dropped int `json:"dropped,omitempty"`
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

// toStore is the event as the store keeps it: its type, and its members
// as JSON.
func (e Event) toStore() store.Event {
	data, _ := json.Marshal(e) // strings and ints: cannot fail
	return store.Event{Seq: e.Seq, Type: e.Kind.String(), Data: data}
}

// fromStore reads back what toStore wrote; an event of a type this vmd
// does not know is skipped.
func fromStore(se store.Event) (Event, bool) {
	var e Event
	for k, name := range kindNames {
		if name == se.Type {
			e.Kind = EventKind(k)
			if json.Unmarshal(se.Data, &e) != nil {
				return Event{}, false
			}
			e.Seq = se.Seq
			return e, true
		}
	}
	return Event{}, false
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
