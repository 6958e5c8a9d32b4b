// Package commands runs one command end to end for any transport: it takes
// the agent's slot, gives the command an id and a record, fans its events
// out to subscribers through byte-bounded queues, and holds its result.
// With a store, every command is a record there, created before the CLI
// starts, its events appended in order and its answer kept once it ends; a
// request's idempotency key finds its command again, running or ended.
package commands

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/store"
	"github.com/vmd-dev/vmd/workspace"
)

const (
	// defaultSubscriberBytes bounds the events a subscriber has not read.
	defaultSubscriberBytes = 1 << 20
	// defaultRecordBytes bounds the events a record keeps.
	defaultRecordBytes = 4 << 20
	// settleDelay is how long after a command vmd returns freed memory.
	settleDelay = time.Second
)

var (
	// ErrBusy is returned by Submit while another command runs.
	ErrBusy = agent.ErrBusy
	// ErrDraining is returned by Submit once vmd is stopping.
	ErrDraining = agent.ErrDraining
	// ErrKeyReused is returned by Submit for a request whose idempotency
	// key an earlier request with another body holds.
	ErrKeyReused = errors.New("idempotency key already used by another request")
	// ErrNotFound: no command with that id.
	ErrNotFound = store.ErrNotFound
)

// Options shape the service; zero values are the defaults.
type Options struct {
	// SubscriberBytes bounds the events one subscriber has not read yet.
	SubscriberBytes int
	// RecordBytes bounds the events one record keeps, in memory and in the
	// store (main sets max_output).
	RecordBytes int
	// Keep is how many records are kept.
	Keep int
	// Disk, if set, is asked before each command whether the disks have
	// room for it; a running command is never checked again.
	Disk *workspace.Guard
	// Store keeps the records. Nil keeps nothing past the running command:
	// no idempotency across commands, no history (this package's tests).
	Store *store.Store
	// Render makes an ended record's answer: its HTTP status and the exact
	// body the synchronous call answers (httpapi's one table). Nil answers
	// nothing.
	Render func(Record) (status int, body []byte)
	// Webhook, when set, turns completion webhooks on: Finish queues one
	// with each ended record, and Webhook (the sender's Notify) is called
	// after it.
	Webhook func()
	// Machine names this machine in records; empty is store.Machine().
	Machine string
}

// StorageError refuses a command for want of disk space: Err names the
// filesystem and what it has left.
type StorageError struct{ Err error }

func (e *StorageError) Error() string { return fmt.Sprintf("insufficient storage: %v", e.Err) }

// Unwrap is the guard's error.
func (e *StorageError) Unwrap() error { return e.Err }

// Service runs commands through the agent, one at a time.
type Service struct {
	agent *agent.Agent
	log   hclog.Logger
	opts  Options
	st    *store.Store // nil: nothing kept

	submitMu sync.Mutex // serialises Submit: a key is looked up and taken at once

	mu      sync.Mutex // guards cur and closing
	cur     *Command   // holds the slot: running, or ended and not yet answered
	closing []*Command // answered, their end still being stored

	ending sync.WaitGroup // commands still writing their end
	settle *time.Timer    // returns freed memory to the OS after commands
}

// New makes a service over an agent.
func New(a *agent.Agent, log hclog.Logger, opts Options) *Service {
	if opts.SubscriberBytes <= 0 {
		opts.SubscriberBytes = defaultSubscriberBytes
	}
	if opts.RecordBytes <= 0 {
		opts.RecordBytes = defaultRecordBytes
	}
	if opts.Render == nil {
		opts.Render = func(Record) (int, []byte) { return 0, nil }
	}
	if opts.Machine == "" {
		opts.Machine = store.Machine()
	}
	// A second after the last command, hand the memory it freed back to the
	// OS: vmd idles most of its life, and resident memory is what a small VM
	// has to fit. Not sooner, so a burst of commands pays for one
	// collection, not one each.
	settle := time.AfterFunc(time.Hour, debug.FreeOSMemory)
	settle.Stop()
	return &Service{agent: a, log: log, opts: opts, st: opts.Store, settle: settle}
}

// Request is one command.
type Request struct {
	// Prompt is what the agent is asked.
	Prompt string
	// SessionID, if set, continues that session.
	SessionID string
	// Timeout bounds the command; zero is the agent's default.
	Timeout time.Duration
	// Key is the request's idempotency key, or "": a second request with
	// the same key and BodyHash gets the same command.
	Key      string
	BodyHash []byte
	// Log is the request's logger; nil is the service's.
	Log hclog.Logger
}

// Submission is what Submit made of a request.
type Submission struct {
	// Command runs the request: a new one, or, for a key whose command
	// still runs, that one (then Attached is set).
	Command  *Command
	Attached bool
	// Ended is, for a key whose command has ended, its stored record: its
	// Status and Body are the answer to give again. Command is nil then.
	Ended *store.Record
}

// Start submits a request without a key and returns its new command.
func (s *Service) Start(req Request) (*Command, error) {
	req.Key = ""
	sub, err := s.Submit(req)
	return sub.Command, err
}

// Submit finds the command of req's key, or starts a new one: it returns
// ErrKeyReused for a key held by another body, a *StorageError when a disk
// runs low, ErrBusy at once while another command runs and ErrDraining
// once vmd is stopping.
func (s *Service) Submit(req Request) (Submission, error) {
	s.submitMu.Lock()
	defer s.submitMu.Unlock()
	if req.Key != "" {
		if sub, ok, err := s.byKey(req); ok || err != nil {
			return sub, err // a retry gets its command's answer, disk low or not
		}
	}
	// Before the slot, so a full disk is said as such, busy or not.
	if s.opts.Disk != nil {
		if err := s.opts.Disk.Check(); err != nil {
			return Submission{}, &StorageError{Err: err}
		}
	}
	if s.occupied() {
		return Submission{}, ErrBusy
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Submission{}, err
	}
	log := req.Log
	if log == nil {
		log = s.log
	}
	c := &Command{svc: s, max: s.opts.RecordBytes, hash: req.BodyHash,
		recorded: make(chan struct{}), answered: make(chan struct{}), done: make(chan struct{}),
		log: log.With("command_id", id.String()),
		rec: Record{ID: id.String(), State: Running, Created: time.Now(), PromptLength: len(req.Prompt),
			Resume: req.SessionID, SessionID: req.SessionID, IdempotencyKey: req.Key}}
	// The CLI starts while the record is written, but gets its prompt only
	// once the record exists: a vmd killed in between leaves no record and
	// a CLI that never read its prompt (and dies with vmd).
	hold := make(chan struct{})
	if err := s.start(c, req, hold); err != nil {
		return Submission{}, err
	}
	if old, created := s.create(c); !created {
		c.discard() // not reached while Submits are serialised: byKey saw no record
		return s.answerKey(old, req.BodyHash)
	}
	close(c.recorded)
	close(hold)
	return Submission{Command: c}, nil
}

// byKey finds the command holding req's key: the running one, or a stored
// one. ok is false when no command holds it (or the store cannot say:
// the request then runs, since a store fault never fails a request).
func (s *Service) byKey(req Request) (Submission, bool, error) {
	for _, c := range s.live() {
		if c.rec.IdempotencyKey != req.Key {
			continue
		}
		if !bytes.Equal(c.hash, req.BodyHash) {
			return Submission{}, true, ErrKeyReused
		}
		return Submission{Command: c, Attached: true}, true, nil
	}
	if s.st == nil {
		return Submission{}, false, nil
	}
	rec, err := s.st.ByKey(context.Background(), req.Key)
	if errors.Is(err, store.ErrNotFound) {
		return Submission{}, false, nil
	}
	if err != nil {
		s.log.Error("cannot look up an idempotency key; running the request", "error", err)
		return Submission{}, false, nil
	}
	sub, err := s.answerKey(rec, req.BodyHash)
	return sub, true, err
}

// answerKey answers a request whose key a stored record holds.
func (s *Service) answerKey(rec store.Record, hash []byte) (Submission, error) {
	if !bytes.Equal(rec.BodyHash, hash) {
		return Submission{}, ErrKeyReused
	}
	return Submission{Ended: &rec}, nil
}

// start takes the slot and starts the CLI, its prompt held until hold is
// closed. It fails only when the slot cannot be had (busy, draining):
// nothing ran, and nothing is recorded.
func (s *Service) start(c *Command, req Request, hold <-chan struct{}) error {
	// The slot and cur change together: whoever sees one sees the other.
	s.mu.Lock()
	defer s.mu.Unlock()
	run, err := s.agent.Start(agent.Request{Prompt: req.Prompt, SessionID: req.SessionID, Timeout: req.Timeout,
		Log: c.log, OnEvent: c.event, Hold: hold})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.run, c.rec.Started = run, time.Now()
	c.mu.Unlock()
	s.cur = c
	s.ending.Add(1)
	go c.finish(run)
	return nil
}

// Current is the record of the command running now, if there is one. A
// command whose answer is out is over, even while its end is being stored.
func (s *Service) Current() (Record, bool) {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return Record{}, false
	}
	r := c.Record()
	return r, r.Result == nil
}

// Live returns the command with that id if it is running, or has ended
// and its end is still being stored.
func (s *Service) Live(id string) (*Command, bool) {
	c, ok := s.live()[id]
	return c, ok
}

// live returns the running and closing commands, by id.
func (s *Service) live() map[string]*Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]*Command, 1+len(s.closing))
	if s.cur != nil {
		m[s.cur.rec.ID] = s.cur
	}
	for _, c := range s.closing {
		m[c.rec.ID] = c
	}
	return m
}

// Cancel stops the running command and returns once it is over, with its
// record as it was when cancelled; false if none was running, or if it
// ended by itself (or timed out) before Cancel could stop it: the command's
// own answer then says how it ended, and Cancel must not claim it.
func (s *Service) Cancel() (Record, bool) {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return Record{}, false
	}
	select {
	case <-c.answered:
		return Record{}, false // over already, its place just freed
	default:
	}
	r := c.Record()
	stopped := c.Cancel()
	<-c.done
	return r, stopped
}

// Busy reports whether a command is running.
func (s *Service) Busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil
}

// endWait bounds how long Submit waits for an ended command to make its
// answer (microseconds, as a rule): a stuck Render must not hold every
// submit.
const endWait = time.Second

// occupied reports whether a command holds the slot, for Submit. One that
// has ended and is making its answer holds it for a moment more; Submit
// waits for that (up to endWait), so a client that has seen the end (its
// result event, its record) and sends the next command is not told busy.
// Storing the end does not hold the slot.
func (s *Service) occupied() bool {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return false
	}
	c.mu.Lock()
	ended := c.rec.Result != nil
	c.mu.Unlock()
	if !ended {
		return true
	}
	t := time.NewTimer(endWait)
	defer t.Stop()
	select {
	case <-c.answered: // the slot is free once the answer is made
		return false
	case <-t.C:
		return true
	}
}

// Wait returns once every command has written its end: call it after the
// supervisor is done and before the store closes.
func (s *Service) Wait() { s.ending.Wait() }
