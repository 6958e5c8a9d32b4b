package commands

import (
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/outcome"
)

// Command is one command the service has taken. It has two moments at its
// end: answered (its answer is made and the slot free) and done (its end
// stored, or no store to keep it).
type Command struct {
	svc     *Service
	prompt  string
	timeout time.Duration
	hash    []byte // the request body's hash, for its idempotency key
	queued  bool   // it waited in the queue
	log     hclog.Logger

	recorded chan struct{} // closed once Submit has written the record (or failed to)
	answered chan struct{} // closed once the record holds its answer
	done     chan struct{} // closed once its end is stored
	dropped  bool          // set before recorded is closed: it never runs

	mu      sync.Mutex // guards the fields below
	rec     Record
	turn    *agent.Turn
	pending outcome.Outcome // a stop asked for before its turn began
	kept    int             // bytes of rec.Events
	subs    []*Subscription
	journal []agent.Event // events not yet stored
	created bool          // its record is in the store
	endKept bool          // its end is in the store (or there is none)
	// startWritten: the store knows it left the queue; lostEvents and
	// endFailed: its events, its end could not be stored (logged once).
	startWritten, lostEvents, endFailed bool
}

// markKept notes that the command's end is stored.
func (c *Command) markKept() {
	c.mu.Lock()
	c.endKept = true
	c.mu.Unlock()
}

// noteEventsLost reports whether this is the first time the command's
// events could not be stored.
func (c *Command) noteEventsLost() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := !c.lostEvents
	c.lostEvents = true
	return first
}

// noteEndFailed reports whether this is the first time the command's end
// could not be stored.
func (c *Command) noteEndFailed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := !c.endFailed
	c.endFailed = true
	return first
}

func (s *Service) newCommand(id string, req Request, queued bool) *Command {
	log := req.Log
	if log == nil {
		log = s.log
	}
	timeout := s.opts.CommandTimeout
	if req.Timeout > 0 && (timeout <= 0 || req.Timeout < timeout) {
		timeout = req.Timeout
	}
	state := Running
	if queued {
		state = Queued
	}
	c := &Command{svc: s, prompt: req.Prompt, timeout: timeout, hash: req.BodyHash, queued: queued,
		log:      log.With("command_id", id),
		recorded: make(chan struct{}), answered: make(chan struct{}), done: make(chan struct{})}
	c.rec = Record{ID: id, State: state, Created: time.Now(), PromptLength: len(req.Prompt),
		Resume: req.SessionID, SessionID: req.SessionID, IdempotencyKey: req.Key}
	if !queued {
		c.rec.Started = c.rec.Created
	}
	return c
}

// started hands the command its turn; a stop asked for before goes to
// the turn now. It reports whether this is the command's first turn.
func (c *Command) started(t *agent.Turn) bool {
	c.mu.Lock()
	first := c.turn == nil
	c.turn = t
	c.rec.State, c.rec.Warm = Running, t.Warm()
	if c.rec.Started.IsZero() {
		c.rec.Started = time.Now()
	}
	pending := c.pending
	c.mu.Unlock()
	if pending != "" {
		t.Stop(pending)
	}
	return first
}

// stop stops the command's turn for why; it reports whether it did. A
// command whose turn has not begun is stopped as it begins.
func (c *Command) stop(why outcome.Outcome) bool {
	c.mu.Lock()
	t, ended := c.turn, c.rec.Result != nil
	if !ended && c.pending == "" {
		c.pending = why // for a turn to come, as for a turn begun
	}
	c.mu.Unlock()
	if t == nil {
		return !ended
	}
	return t.Stop(why)
}

// published waits until Submit has recorded the command, or failed to,
// and reports whether it is one: a command Submit dropped never runs and
// is never answered, so nothing may wait for its end.
func (c *Command) published() bool {
	<-c.recorded
	return !c.dropped
}

// stopped is why the command was stopped before its turn began; "" if it
// was not.
func (c *Command) stopped() outcome.Outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending
}

// never is the result of a command that ended without a turn.
func (c *Command) never(o outcome.Outcome) *agent.Result {
	return &agent.Result{Outcome: o, ExitCode: -1, SessionID: c.rec.Resume}
}

// finish makes the record final: how it ended and its answer, which the
// caller lets out (answered) once the slot is free.
func (c *Command) finish(res *agent.Result) {
	c.mu.Lock()
	c.rec.Result, c.rec.Outcome, c.rec.Ended = res, res.Outcome, time.Now()
	c.rec.State = State(res.Outcome)
	c.rec.Pid = res.Pid
	if res.SessionID != "" {
		c.rec.SessionID = res.SessionID
	}
	c.subs = nil
	c.rec.Status, c.rec.Body = Answer(c.rec)
	c.mu.Unlock()
}

// unstore notes that the command's record could not be created: it runs,
// its answer says so, and its end is written whole once the store takes
// it.
func (c *Command) unstore(err error) {
	c.log.Error("cannot store the command; it runs, and is stored once the store works again", "error", err)
	c.mu.Lock()
	c.rec.unstored = "The command store could not record this command (" + err.Error() +
		"); it is kept in memory and stored once the store works again, but would not survive a restart before that"
	c.mu.Unlock()
}

func (c *Command) unstored() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.unstored != ""
}

// event records an event of the turn's and hands it to the subscribers
// and to the store, neither of which it waits for.
func (c *Command) event(e agent.Event) {
	c.mu.Lock()
	c.rec.Seq++
	e.Seq = c.rec.Seq
	if e.Kind == agent.EventStart && e.SessionID != "" {
		c.rec.SessionID = e.SessionID
	}
	if e.Kind == agent.EventStart {
		c.rec.Pid = e.Pid
	}
	kept := false
	if n := e.Size(); c.rec.EventsDropped == 0 && c.kept+n <= c.svc.opts.RecordBytes {
		c.rec.Events = append(c.rec.Events, e)
		c.kept += n
		c.journal = append(c.journal, e)
		kept = true
	} else {
		c.rec.EventsDropped++
	}
	for _, s := range c.subs {
		s.push(e)
	}
	c.mu.Unlock()
	if kept {
		c.svc.out.dirty(c)
	}
}

// ID is the command's id.
func (c *Command) ID() string { return c.rec.ID }

// Subscribe returns a subscription that gets the command's events so far,
// then the rest as they come, up to the service's byte bound.
func (c *Command) Subscribe() *Subscription { return c.SubscribeAfter(0) }

// SubscribeAfter is Subscribe for a reader that has the events up to seq
// after already (an event stream resumed with Last-Event-ID): it gets the
// later ones only, each once.
func (c *Command) SubscribeAfter(after int64) *Subscription {
	s := newSubscription(c.svc.opts.SubscriberBytes)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.rec.Events {
		if e.Seq > after {
			s.push(e)
		}
	}
	if c.rec.Result == nil {
		c.subs = append(c.subs, s)
	}
	return s
}

// Answered is closed once the command has ended and its answer is made;
// its end may still be being stored (see Done).
func (c *Command) Answered() <-chan struct{} { return c.answered }

// Done is closed once the command's end is stored (or there is no store).
func (c *Command) Done() <-chan struct{} { return c.done }

// Answer waits for the command's answer: the HTTP status and the exact
// body the synchronous call answers.
func (c *Command) Answer() (status int, body []byte) {
	<-c.answered
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.Status, c.rec.Body
}

// Wait waits for the command's end to be stored and returns its record.
func (c *Command) Wait() Record {
	<-c.done
	return c.Record()
}

// Cancel stops the command, queued or running, and waits for its end; it
// reports whether it was this call that stopped it.
func (c *Command) Cancel() bool { return c.svc.CancelCommand(c) }

// Record is a copy of the command's record as it is now.
func (c *Command) Record() Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rec
	r.Events = slices.Clone(r.Events)
	return r
}
