package agent

import "encoding/json"

// EventKind tells events apart. Its name is the event's type as the store
// keeps it and the event stream names it.
type EventKind int

// The events of a command, in the order they can come.
const (
	// EventStart: the turn has begun in its session (or ended without
	// one). Exactly one per turn.
	EventStart EventKind = iota
	// EventMessage: the assistant said something or called tools.
	EventMessage
	// EventImage: a new image is complete in the images directory.
	EventImage
	// EventDropped: events were left out here, past a byte bound of a
	// reader's or a record's; Dropped counts them.
	EventDropped
)

var kindNames = [...]string{EventStart: "start", EventMessage: "message", EventImage: "image", EventDropped: "dropped"}

// String is the kind's name: start, message, image, dropped.
func (k EventKind) String() string {
	if int(k) >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// KindOf is the kind named name; false for a name this vmd does not know.
func KindOf(name string) (EventKind, bool) {
	for k, n := range kindNames {
		if n == name {
			return EventKind(k), true
		}
	}
	return 0, false
}

// Event is progress of a command: the one event type of every layer, live
// and stored.
type Event struct {
	Kind EventKind `json:"-"`
	// Seq numbers a command's events 1, 2, ... in order, once the commands
	// service has taken it; 0 for an EventDropped, which stands for events,
	// not one of them.
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

// Size is about what an event holds in memory, which byte bounds count.
func (e Event) Size() int {
	n := eventOverhead + len(e.SessionID) + len(e.Text) + len(e.Image)
	for _, t := range e.Tools {
		n += len(t) + 16
	}
	return n
}

// Data is the event's members as JSON, as the store keeps them.
func (e Event) Data() []byte {
	b, _ := json.Marshal(e) // strings and ints: cannot fail
	return b
}

// ParseEvent reads back an event from its kind's name and Data; false for
// a kind this vmd does not know or data it cannot read.
func ParseEvent(kind string, seq int64, data []byte) (Event, bool) {
	k, ok := KindOf(kind)
	if !ok {
		return Event{}, false
	}
	var e Event
	if json.Unmarshal(data, &e) != nil {
		return Event{}, false
	}
	e.Kind, e.Seq = k, seq
	return e, true
}
