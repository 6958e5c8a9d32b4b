package commands

import (
	"time"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/store"
)

// State is where a command is in its life, as its record says. The names
// are the store's: a record reads the same live and stored.
type State = store.State

// The states of a command.
const (
	Running     = store.Running
	Succeeded   = store.Succeeded
	AgentError  = store.AgentError
	Failed      = store.Failed // crashed, could not start, or no such session
	TimedOut    = store.Timeout
	Cancelled   = store.Cancelled
	Drained     = store.Drained
	Interrupted = store.Interrupted // vmd stopped without ending it (killed, restarted)
	Stalled     = store.Stalled     // the CLI hung and was killed (issue 11)
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

// Record is a command as the service holds it while it runs: what was
// asked, what happened, in order, and how it ended.
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
	// IdempotencyKey is the request's Idempotency-Key, or "".
	IdempotencyKey string
	// Pid is the CLI's, once started.
	Pid int
	// Events are the command's events in order, up to a byte bound;
	// EventsDropped counts those past it.
	Events        []Event
	EventsDropped int
	// Result is how the command ended; nil while it runs. For a command
	// found interrupted at start-up it holds the partial text alone.
	Result *agent.Result
	// Status and Body are the answer Options.Render made of the ended
	// record: what the synchronous call answers, stored with the record.
	Status int
	Body   []byte
}

// stored is the record as the store would hold it now.
func (r Record) stored(machine string, hash []byte) store.Record {
	return store.Record{ID: r.ID, State: r.State, CreatedAt: r.Created, StartedAt: r.Started, EndedAt: r.Ended,
		PromptLen: r.PromptLength, SessionID: r.SessionID, IdempotencyKey: r.IdempotencyKey, BodyHash: hash,
		Machine: machine, Status: r.Status, Body: r.Body}
}
