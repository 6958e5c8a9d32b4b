// Package commands runs commands end to end for any transport. It owns the
// one slot (one turn runs at a time, across every agent), the queue of
// commands waiting for it, draining (drain.go), and which agent process
// serves which message (pool.go). Each command gets an id and a record,
// its events go to subscribers through byte-bounded queues, and its answer
// is a pure function of how it ended (answer.go). With a store, every
// command is a record there before its CLI gets the prompt, its events and
// end follow in order (persist.go), and a request's idempotency key finds
// its command again, running or ended (keys.go).
package commands

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/internal/metric"
	"github.com/vmd-dev/vmd/internal/ready"
	"github.com/vmd-dev/vmd/outcome"
	"github.com/vmd-dev/vmd/store"
)

const (
	// defaultSubscriberBytes bounds the events a subscriber has not read.
	defaultSubscriberBytes = 1 << 20
	// defaultRecordBytes bounds the events a record keeps.
	defaultRecordBytes = 4 << 20
	// settleDelay is how long after a command vmd returns freed memory.
	settleDelay = time.Second
	// tick is how often the service looks after its agents and its store
	// (idle agents, the spare, ends waiting to be stored).
	tick = time.Second
)

var (
	// ErrBusy is returned by Submit while a command runs and the request
	// did not ask to queue.
	ErrBusy = errors.New("a command is already in progress")
	// ErrDraining is returned by Submit once vmd is stopping.
	ErrDraining = errors.New("shutting down")
	// ErrQueueFull is returned by Submit for a request that asked to queue
	// when queue_max commands wait already.
	ErrQueueFull = errors.New("the queue is full")
	// ErrKeyReused is returned by Submit for a request whose idempotency
	// key an earlier request with another body holds.
	ErrKeyReused = errors.New("idempotency key already used by another request")
	// ErrStoreUnavailable is returned by Submit for a request with an
	// idempotency key when the store cannot say whether the key is taken,
	// or cannot record it: the request is not run, rather than risk
	// running it twice.
	ErrStoreUnavailable = errors.New("the command store is unavailable")
	// ErrNotFound: no command with that id.
	ErrNotFound = store.ErrNotFound
)

// StorageError refuses a command for want of disk space: Err names the
// filesystem and what it has left.
type StorageError struct{ Err error }

func (e *StorageError) Error() string { return fmt.Sprintf("insufficient storage: %v", e.Err) }

// Unwrap is the guard's error.
func (e *StorageError) Unwrap() error { return e.Err }

// Options shape the service; zero values are the defaults.
type Options struct {
	// SubscriberBytes bounds the events one subscriber has not read yet.
	SubscriberBytes int
	// RecordBytes bounds the events one record keeps, in memory and in the
	// store (main sets max_output).
	RecordBytes int
	// CommandTimeout bounds a command's turn, and caps what a request asks.
	CommandTimeout time.Duration
	// Disk, if set, is asked before each command whether the disks have
	// room for it; a running command is never checked again.
	Disk func() error
	// Store keeps the records. Nil keeps nothing past a command's end: no
	// idempotency across commands, no history.
	Store *store.Store
	// Webhook, when set, turns completion webhooks on: each stored end
	// queues one, and Webhook (the sender's Notify) is called after.
	Webhook func()
	// Machine names this machine in records; empty is store.Machine().
	Machine string
	// Warm keeps each conversation's CLI process alive between its turns,
	// up to WarmConversations of them, each until it has been idle for
	// WarmIdle; Prewarm keeps a spare started for the next new
	// conversation. See pool.go.
	Warm, Prewarm     bool
	WarmConversations int
	WarmIdle          time.Duration
	// MaxCostUSD is the agent's --max-budget-usd (see agent.Options): an
	// agent with less than half of it left is replaced before a turn.
	MaxCostUSD float64
	// QueueMax bounds the commands waiting for the slot.
	QueueMax int
	// SpendLimitUSD, if above zero, refuses new commands while the
	// commands that ended within SpendWindow cost that much or more.
	SpendLimitUSD float64
	SpendWindow   time.Duration
	// Metrics and Prober, if set, are where the service registers its
	// metrics and readiness checks.
	Metrics *metric.Registry
	Prober  *ready.Prober
}

// Service runs commands through the agent, one turn at a time. Run is its
// actor, Drain its interrupt.
type Service struct {
	agent *agent.Agent
	log   hclog.Logger
	opts  Options
	st    *store.Store // nil: nothing kept
	m     *metrics
	spend *spending
	out   *persister

	mu       sync.Mutex // guards the fields below
	draining bool
	drainBy  time.Time
	running  *Command            // holds the slot: its turn runs
	queue    []*Command          // waiting for the slot, oldest first
	live     map[string]*Command // every command whose end is not stored yet
	keys     keys                // idempotency keys: see keys.go
	pool     pool                // the agents: see pool.go

	drained chan struct{} // closed once Drain has begun
	hurry   chan struct{} // closed by Hurry: the drain's deadline is now
	hurried sync.Once
	done    chan struct{} // closed once Run has returned
	settle  *time.Timer   // returns freed memory to the OS after commands
}

// New makes a service over an agent.
func New(a *agent.Agent, log hclog.Logger, opts Options) *Service {
	if opts.SubscriberBytes <= 0 {
		opts.SubscriberBytes = defaultSubscriberBytes
	}
	if opts.RecordBytes <= 0 {
		opts.RecordBytes = defaultRecordBytes
	}
	if opts.Machine == "" {
		opts.Machine = store.Machine()
	}
	if opts.Metrics == nil {
		opts.Metrics = metric.New()
	}
	if opts.Prober == nil {
		opts.Prober = &ready.Prober{}
	}
	s := &Service{agent: a, log: log, opts: opts, st: opts.Store, live: map[string]*Command{},
		drained: make(chan struct{}), hurry: make(chan struct{}), done: make(chan struct{})}
	s.keys.init()
	s.pool.s = s
	s.spend = newSpending(opts.SpendLimitUSD, opts.SpendWindow)
	s.out = newPersister(s)
	s.m = newMetrics(s, opts.Metrics)
	opts.Prober.Add("draining", func(context.Context) ready.Status {
		if s.Draining() {
			return ready.Status{Message: "vmd is shutting down"}
		}
		return ready.Status{OK: true}
	})
	if opts.SpendLimitUSD > 0 {
		opts.Prober.Add("spend", s.spendCheck)
	}
	// A second after the last command, hand the memory it freed back to the
	// OS: vmd idles most of its life, and resident memory is what a small VM
	// has to fit. Not sooner, so a burst of commands pays for one
	// collection, not one each.
	s.settle = time.AfterFunc(time.Hour, debug.FreeOSMemory)
	s.settle.Stop()
	return s
}

// Request is one command.
type Request struct {
	// Prompt is what the agent is asked.
	Prompt string
	// SessionID, if set, continues that session.
	SessionID string
	// Timeout bounds the command's turn, from when it starts; zero or more
	// than Options.CommandTimeout is that.
	Timeout time.Duration
	// Queue waits for the slot when a command runs, rather than fail with
	// ErrBusy.
	Queue bool
	// Key is the request's idempotency key, or "": a second request with
	// the same key and BodyHash gets the same command.
	Key      string
	BodyHash []byte
	// Log is the request's logger; nil is the service's.
	Log hclog.Logger
}

// Submission is what Submit made of a request.
type Submission struct {
	// Command runs the request: a new one, or, for a key whose command is
	// still live (running, queued, or ended and its end not stored yet),
	// that one (then Attached is set).
	Command  *Command
	Attached bool
	// Ended is, for a key whose command has ended and been stored, its
	// record: its Status and Body are the answer to give again. Command is
	// nil then.
	Ended *store.Record
}

// Submit finds the command of req's key, or takes a new one: it runs at
// once, or, asked to, waits in the queue. It returns ErrKeyReused for a key
// held by another body, ErrStoreUnavailable for a key the store cannot
// look up or record, a *StorageError when a disk runs low, a *SpendError
// past the spend limit, ErrBusy while a command runs (ErrQueueFull past
// queue_max when asked to queue) and ErrDraining once vmd is stopping.
// ctx bounds the lookups, never the command.
func (s *Service) Submit(ctx context.Context, req Request) (Submission, error) {
	var key *keyEntry
	if req.Key != "" {
		sub, reserved, err := s.findKey(ctx, req)
		if err != nil || reserved == nil {
			s.m.refusedFor(err)
			return sub, err // a retry gets its command's answer, disk low or not
		}
		key = reserved
	}
	c, err := s.take(req)
	if err != nil {
		s.keys.release(&s.mu, key)
		s.m.refusedFor(err)
		return Submission{}, err
	}
	if err := s.record(ctx, c); err != nil {
		if key != nil {
			s.drop(c)
			s.keys.release(&s.mu, key)
			s.m.refusedFor(ErrStoreUnavailable)
			return Submission{}, ErrStoreUnavailable
		}
		c.unstore(err) // it runs; its answer says it is not kept yet
	}
	s.keys.hold(&s.mu, key, c)
	close(c.recorded)
	return Submission{Command: c}, nil
}

// take checks that a request may run and gives it the slot, or a place in
// the queue.
func (s *Service) take(req Request) (*Command, error) {
	if s.opts.Disk != nil {
		// Before the slot, so a full disk is said as such, busy or not.
		if err := s.opts.Disk(); err != nil {
			return nil, &StorageError{Err: err}
		}
	}
	if err := s.spend.check(time.Now()); err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	busy := s.running != nil || len(s.queue) > 0
	switch {
	case s.draining:
		return nil, ErrDraining
	case busy && !req.Queue:
		return nil, ErrBusy
	case busy && len(s.queue) >= s.opts.QueueMax:
		return nil, ErrQueueFull
	}
	c := s.newCommand(id.String(), req, busy)
	if busy {
		s.queue = append(s.queue, c)
	} else {
		s.running = c
		go s.run(c)
	}
	s.live[c.rec.ID] = c
	return c, nil
}

// drop takes back a command Submit could not record: it never runs.
func (s *Service) drop(c *Command) {
	s.mu.Lock()
	c.dropped = true
	if s.running == c {
		s.running = nil
		s.nextLocked()
	}
	s.queue = slices.DeleteFunc(s.queue, func(q *Command) bool { return q == c })
	delete(s.live, c.rec.ID)
	s.mu.Unlock()
	close(c.recorded) // its run, if started, ends at once
}

// nextLocked gives the free slot to the oldest queued command.
func (s *Service) nextLocked() {
	if s.running != nil || s.draining || len(s.queue) == 0 {
		return
	}
	s.running = s.queue[0]
	s.queue = s.queue[1:]
	go s.run(s.running)
}

// run serves a command that holds the slot: its turn on an agent, then
// its end.
func (s *Service) run(c *Command) {
	if !c.published() {
		return
	}
	if why := c.stopped(); why != "" { // cancelled as it left the queue: no agent for it
		s.end(c, c.never(why))
		return
	}
	for retried := false; ; retried = true {
		proc, err := s.pool.acquire(c, retried)
		if err != nil { // vmd is stopping: nothing can start
			s.end(c, c.never(outcome.Drained))
			return
		}
		t := proc.Turn(agent.TurnRequest{Prompt: c.prompt, Timeout: c.timeout, OnEvent: c.event, Log: c.log})
		if c.started(t) && c.queued {
			s.out.dirty(c) // its record says running now
		}
		res := t.Result()
		s.pool.release(proc, res, c)
		if res.Unheard && !retried && res.Outcome == outcome.Failed {
			// Its agent died between turns, before it began this one: the
			// message goes to a new agent, which resumes the session.
			c.log.Info("the conversation's agent died between turns; resuming it in a new one", "pid", res.Pid)
			continue
		}
		s.end(c, res)
		return
	}
}

// end makes a command's end final, frees the slot for the next, and only
// then lets its answer out: a client that has the answer and sends the
// next command at once finds the slot free. The end is stored after.
func (s *Service) end(c *Command, res *agent.Result) {
	c.finish(res)
	s.m.ended(c)
	s.spend.add(c.rec.Ended, res)
	s.mu.Lock()
	if s.running == c {
		s.running = nil
	}
	s.nextLocked()
	s.mu.Unlock()
	s.out.dirty(c) // before the answer: whoever has it finds the end on its way to the store
	close(c.answered)
	s.settle.Reset(settleDelay)
}

// stored is called once a command's end is in the store (or, without a
// store, at once): it is no longer live.
func (s *Service) stored(c *Command) {
	// Its end may reach the store (through an earlier event's write)
	// before end has freed the slot: done comes after the answer, so that
	// whoever waits for done finds the slot free.
	<-c.answered
	s.mu.Lock()
	delete(s.live, c.rec.ID)
	s.keys.stored(c)
	s.mu.Unlock()
	close(c.done)
}

// Live returns a command that is running, queued, or ended with its end
// not stored yet.
func (s *Service) Live(id string) (*Command, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.live[id]
	return c, ok
}

// Current is the record of the command running now, if there is one.
func (s *Service) Current() (Record, bool) {
	s.mu.Lock()
	c := s.running
	s.mu.Unlock()
	if c == nil {
		return Record{}, false
	}
	r := c.Record()
	return r, r.Result == nil
}

// Busy reports whether a command holds the slot.
func (s *Service) Busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running != nil
}

// Queued counts the commands waiting for the slot.
func (s *Service) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Draining reports whether vmd is stopping: no new command is taken.
func (s *Service) Draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// Cancel stops the running command and returns once it has ended, with
// its record as it was when cancelled; false if none was running, or if it
// ended by itself (or timed out) before Cancel could stop it: the
// command's own answer then says how it ended, and Cancel must not claim
// it. The queue goes on.
func (s *Service) Cancel() (Record, bool) {
	s.mu.Lock()
	c := s.running
	s.mu.Unlock()
	if c == nil {
		return Record{}, false
	}
	r := c.Record()
	stopped := s.CancelCommand(c)
	return r, stopped
}

// CancelCommand stops a command: a queued one ends cancelled without ever
// running, a running one is stopped (its agent asked to interrupt the
// turn, killed if it will not). It returns once the command has ended,
// reporting whether it was this call that stopped it.
func (s *Service) CancelCommand(c *Command) bool {
	if !c.published() {
		return false // Submit could not record it: it never ran, nor will
	}
	s.mu.Lock()
	if i := slices.Index(s.queue, c); i >= 0 {
		s.queue = slices.Delete(s.queue, i, i+1)
		s.mu.Unlock()
		s.end(c, c.never(outcome.Cancelled))
		return true
	}
	s.mu.Unlock()
	stopped := c.stop(outcome.Cancelled)
	<-c.answered
	return stopped
}
