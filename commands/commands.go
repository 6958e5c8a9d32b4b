// Package commands runs one command end to end for any transport: it takes
// the agent's slot, gives the command an id and a record, fans its events
// out to subscribers through byte-bounded queues, and holds its result.
// Records are kept in memory for now; a durable store comes next.
package commands

import (
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/agent"
)

const (
	// defaultSubscriberBytes bounds the events a subscriber has not read.
	defaultSubscriberBytes = 1 << 20
	// defaultRecordBytes bounds the events a record keeps.
	defaultRecordBytes = 4 << 20
	// defaultKeep is how many records are kept in memory.
	defaultKeep = 100
	// settleDelay is how long after a command vmd returns freed memory.
	settleDelay = time.Second
)

var (
	// ErrBusy is returned by Start while another command runs.
	ErrBusy = agent.ErrBusy
	// ErrDraining is returned by Start once vmd is stopping.
	ErrDraining = agent.ErrDraining
)

// Options bound what commands keep; zero values are the defaults.
type Options struct {
	// SubscriberBytes bounds the events one subscriber has not read yet.
	SubscriberBytes int
	// RecordBytes bounds the events one record keeps.
	RecordBytes int
	// Keep is how many records are kept.
	Keep int
}

// Service runs commands through the agent, one at a time.
type Service struct {
	agent *agent.Agent
	log   hclog.Logger
	opts  Options
	store *memory

	mu  sync.Mutex // guards cur
	cur *Command

	settle *time.Timer // returns freed memory to the OS after commands
}

// New makes a service over an agent.
func New(a *agent.Agent, log hclog.Logger, opts Options) *Service {
	if opts.SubscriberBytes <= 0 {
		opts.SubscriberBytes = defaultSubscriberBytes
	}
	if opts.RecordBytes <= 0 {
		opts.RecordBytes = defaultRecordBytes
	}
	if opts.Keep <= 0 {
		opts.Keep = defaultKeep
	}
	// A second after the last command, hand the memory it freed back to the
	// OS: vmd idles most of its life, and resident memory is what a small VM
	// has to fit. Not sooner, so a burst of commands pays for one
	// collection, not one each.
	settle := time.AfterFunc(time.Hour, debug.FreeOSMemory)
	settle.Stop()
	return &Service{agent: a, log: log, opts: opts, store: newMemory(opts.Keep), settle: settle}
}

// Request is one command.
type Request struct {
	// Prompt is what the agent is asked.
	Prompt string
	// SessionID, if set, continues that session.
	SessionID string
	// Timeout bounds the command; zero is the agent's default.
	Timeout time.Duration
	// Log is the request's logger; nil is the service's.
	Log hclog.Logger
}

// Command is one command the service has taken.
type Command struct {
	svc  *Service
	run  *agent.Run
	max  int
	done chan struct{}

	mu   sync.Mutex // guards rec and subs
	rec  Record
	subs []*Subscription
}

// Start takes the slot and starts the command. It returns ErrBusy at once
// while another command runs and ErrDraining once vmd is stopping.
func (s *Service) Start(req Request) (*Command, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	log := req.Log
	if log == nil {
		log = s.log
	}
	log = log.With("command_id", id.String())
	c := &Command{svc: s, max: s.opts.RecordBytes, done: make(chan struct{}),
		rec: Record{ID: id.String(), State: Running, Created: time.Now(), PromptLength: len(req.Prompt),
			Resume: req.SessionID, SessionID: req.SessionID}}
	// The slot and cur change together: whoever sees one sees the other.
	s.mu.Lock()
	run, err := s.agent.Start(agent.Request{Prompt: req.Prompt, SessionID: req.SessionID, Timeout: req.Timeout,
		Log: log, OnEvent: c.event})
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	c.mu.Lock()
	c.run, c.rec.Started = run, time.Now()
	c.mu.Unlock()
	s.cur = c
	s.mu.Unlock()
	s.store.save(c.Record())
	go c.finish(run)
	return c, nil
}

// finish records the end of the command and frees its place.
func (c *Command) finish(run *agent.Run) {
	res := run.Wait()
	c.mu.Lock()
	c.rec.Result, c.rec.State, c.rec.Ended = res, stateOf(res.Outcome), time.Now()
	c.rec.Pid = res.Pid
	if res.SessionID != "" {
		c.rec.SessionID = res.SessionID
	}
	c.subs = nil
	c.mu.Unlock()
	s := c.svc
	s.store.save(c.Record())
	s.mu.Lock()
	if s.cur == c {
		s.cur = nil
	}
	s.mu.Unlock()
	s.settle.Reset(settleDelay)
	close(c.done)
}

// event records an event of the agent's and hands it to the subscribers.
func (c *Command) event(ev agent.Event) {
	e := fromAgent(ev)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Kind == EventStart && e.SessionID != "" {
		c.rec.SessionID = e.SessionID
	}
	if used := eventsSize(c.rec.Events); c.rec.EventsDropped == 0 && used+e.size() <= c.max {
		c.rec.Events = append(c.rec.Events, e)
	} else {
		c.rec.EventsDropped++
	}
	for _, s := range c.subs {
		s.push(e)
	}
}

func eventsSize(evs []Event) int {
	n := 0
	for _, e := range evs {
		n += e.size()
	}
	return n
}

// ID is the command's id.
func (c *Command) ID() string { return c.rec.ID }

// Subscribe returns a subscription that gets the command's events so far,
// then the rest as they come, up to the service's byte bound.
func (c *Command) Subscribe() *Subscription {
	s := newSubscription(c.svc.opts.SubscriberBytes)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.rec.Events {
		s.push(e)
	}
	if c.rec.Result == nil {
		c.subs = append(c.subs, s)
	}
	return s
}

// Done is closed when the command is over: its record is final and the
// slot free.
func (c *Command) Done() <-chan struct{} { return c.done }

// Wait waits for the command to end and returns its final record.
func (c *Command) Wait() Record {
	<-c.done
	return c.Record()
}

// Cancel stops the command if it still runs; it does not wait. It reports
// whether it stopped it: then, and only then, the command ends cancelled.
func (c *Command) Cancel() bool { return c.run.Cancel() }

// Record is a copy of the command's record as it is now.
func (c *Command) Record() Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rec
	r.Events = append([]Event(nil), r.Events...)
	if r.Pid == 0 && c.run != nil {
		r.Pid = c.run.Pid()
	}
	return r
}

// Current is the record of the command running now, if there is one.
func (s *Service) Current() (Record, bool) {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return Record{}, false
	}
	return c.Record(), true
}

// Get returns a command's record by id, while the service keeps it.
func (s *Service) Get(id string) (Record, bool) { return s.store.get(id) }

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
	case <-c.done:
		return Record{}, false // over already, its place not yet freed
	default:
	}
	r := c.Record()
	stopped := c.Cancel()
	<-c.done
	return r, stopped
}

// Busy reports whether a command is running.
func (s *Service) Busy() bool {
	_, ok := s.Current()
	return ok
}
