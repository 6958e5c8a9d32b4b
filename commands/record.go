package commands

import (
	"time"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/outcome"
	"github.com/vmd-dev/vmd/store"
)

// State is where a command is in its life: Queued, Running, or, once it
// has ended, the name of its outcome. The store keeps it as it is.
type State = store.State

// The states of a command that has not ended.
const (
	Queued  = store.Queued
	Running = store.Running
)

// Record is a command as the service holds it while it is live: what was
// asked, what happened, in order, and how it ended.
type Record struct {
	// ID names the command; IDs sort in the order commands were made.
	ID    string
	State State
	// Outcome is how it ended; "" while it has not.
	Outcome outcome.Outcome
	// Created is when the command was asked for; Started when its turn
	// began; Ended when its answer was made.
	Created, Started, Ended time.Time
	// PromptLength is the prompt's size in bytes.
	PromptLength int
	// Resume is the session the request asked to continue, or "".
	Resume string
	// SessionID is the session the command runs in, once known.
	SessionID string
	// IdempotencyKey is the request's Idempotency-Key, or "".
	IdempotencyKey string
	// Pid is the CLI's, once its turn has begun.
	Pid int
	// Warm is set when its turn went to an agent already running.
	Warm bool
	// Seq is the last event's seq. Events are the command's events in
	// order, up to a byte bound; EventsDropped counts those past it.
	Seq           int64
	Events        []agent.Event
	EventsDropped int
	// Result is how the command ended; nil while it runs. For a command
	// found interrupted at start-up it holds the partial text alone.
	Result *agent.Result
	// Status and Body are its answer once ended (see Answer): what the
	// synchronous call answers, stored with the record.
	Status int
	Body   []byte

	unstored string // why the store does not have it yet, for its answer
}

// stored is the record as the store would hold it now.
func (r Record) stored(machine string, hash []byte) store.Record {
	return store.Record{ID: r.ID, State: r.State, CreatedAt: r.Created, StartedAt: r.Started, EndedAt: r.Ended,
		PromptLen: r.PromptLength, SessionID: r.SessionID, IdempotencyKey: r.IdempotencyKey, BodyHash: hash,
		Machine: machine, Status: r.Status, Body: r.Body, EventSeq: r.Seq, Warm: r.Warm}
}
