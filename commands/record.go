package commands

import (
	"sync"
	"time"

	"github.com/vmd-dev/vmd/agent"
)

// State is where a command is in its life, as its record says.
type State string

// The states of a command.
const (
	Running    State = "running"
	Succeeded  State = "succeeded"
	AgentError State = "agent_error"
	Failed     State = "failed" // crashed, could not start, or no such session
	TimedOut   State = "timeout"
	Cancelled  State = "cancelled"
	Drained    State = "drained"
	Stalled    State = "stalled" // the CLI hung and was killed (issue 11)
)

// stateOf is the state a command's outcome leaves it in.
func stateOf(o agent.Outcome) State {
	switch o {
	case agent.OK:
		return Succeeded
	case agent.AgentError:
		return AgentError
	case agent.TimedOut:
		return TimedOut
	case agent.Cancelled:
		return Cancelled
	case agent.Drained:
		return Drained
	case agent.Stalled:
		return Stalled
	}
	return Failed
}

// Record is a command as a store keeps it: what was asked, what happened,
// in order, and how it ended.
type Record struct {
	// ID names the command; IDs sort in the order commands were made.
	ID    string
	State State
	// Created is when the command was asked for; Started when the CLI
	// started; Ended when the command was over, slot free.
	Created, Started, Ended time.Time
	// PromptLength is the prompt's size in bytes.
	PromptLength int
	// Resume is the session the request asked to continue, or "".
	Resume string
	// SessionID is the session the command runs in, once known.
	SessionID string
	// Pid is the CLI's, once started.
	Pid int
	// Events are the command's events in order, up to a byte bound;
	// EventsDropped counts those past it.
	Events        []Event
	EventsDropped int
	// Result is how the command ended; nil while it runs.
	Result *agent.Result
}

// memory keeps the latest records in memory: the seam where a durable store
// will go.
type memory struct {
	mu    sync.Mutex
	max   int
	order []string
	byID  map[string]Record
}

func newMemory(max int) *memory { return &memory{max: max, byID: map[string]Record{}} }

// save keeps r, replacing the record of the same id; the oldest go first.
func (m *memory) save(r Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[r.ID]; !ok {
		m.order = append(m.order, r.ID)
	}
	m.byID[r.ID] = r
	for len(m.order) > m.max {
		delete(m.byID, m.order[0])
		m.order = m.order[1:]
	}
}

func (m *memory) get(id string) (Record, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.byID[id]
	return r, ok
}
