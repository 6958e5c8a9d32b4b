package commands

import (
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/agent"
)

// Command is one command the service has taken.
type Command struct {
	svc     *Service
	run     *agent.Run
	max     int
	hash    []byte // the request body's hash, for its idempotency key
	log     hclog.Logger
	journal *journal // nil when the command is not in the store
	// recorded is closed once Submit has written the record (or failed
	// to): its end comes after. answered is closed once the record holds
	// its answer (Status, Body), before the end is stored; done once it is
	// stored and the slot free.
	recorded chan struct{}
	answered chan struct{}
	done     chan struct{}

	mu        sync.Mutex // guards rec, seq, kept, subs and discarded
	rec       Record
	seq       int64 // the last event's seq
	kept      int   // bytes of rec.Events
	subs      []*Subscription
	discarded bool // Submit stopped it before it got its prompt
	webhook   bool // Finish queued a completion webhook
}

// finish ends the command: its record's state and answer, then the
// slot, then the store. The slot is free once the answer is made; until
// its end is stored, the command is among the service's closing ones, so
// a retry of its key or a read of its id still finds it, ended.
func (c *Command) finish(run *agent.Run) {
	s := c.svc
	defer s.ending.Done()
	rec, answer := c.end(run.Wait())
	s.mu.Lock()
	if s.cur == c {
		s.cur = nil
	}
	s.closing = append(s.closing, c)
	s.mu.Unlock()
	close(c.answered)
	if answer && c.journal != nil {
		last := c.journal.close() // the events go with the end: an ended record takes no more
		c.webhook = s.storeEnd(rec, s.opts.Machine, c.hash, last)
	}
	s.mu.Lock()
	s.closing = slices.DeleteFunc(s.closing, func(e *Command) bool { return e == c })
	s.mu.Unlock()
	s.settle.Reset(settleDelay)
	close(c.done)
	if c.webhook {
		s.opts.Webhook()
	}
}

// end makes the record final, its state and its answer, and returns it;
// answer is false for a discarded command, which has none.
func (c *Command) end(res *agent.Result) (rec Record, answer bool) {
	<-c.recorded // a CLI may end before its record is written
	c.mu.Lock()
	c.rec.Result, c.rec.State, c.rec.Ended = res, stateOf(res.Outcome), time.Now()
	c.rec.Pid = res.Pid
	if res.SessionID != "" {
		c.rec.SessionID = res.SessionID
	}
	c.subs = nil
	rec, discarded := c.rec, c.discarded
	c.mu.Unlock()
	if discarded { // nobody asked for it
		return rec, false
	}
	status, body := c.svc.opts.Render(rec)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.Status, c.rec.Body = status, body
	return c.rec, true
}

// discard stops a command Submit must not run, which never got its
// prompt, and returns once it is over; it has no answer and no record.
func (c *Command) discard() {
	c.mu.Lock()
	c.discarded = true
	c.mu.Unlock()
	c.run.Cancel()
	close(c.recorded)
	<-c.done
}

// event records an event of the agent's and hands it to the subscribers
// and to the store's journal, neither of which it waits for.
func (c *Command) event(ev agent.Event) {
	e := fromAgent(ev)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	e.Seq = c.seq
	if e.Kind == EventStart && e.SessionID != "" {
		c.rec.SessionID = e.SessionID
	}
	if n := e.size(); c.rec.EventsDropped == 0 && c.kept+n <= c.max {
		c.rec.Events = append(c.rec.Events, e)
		c.kept += n
		if c.journal != nil {
			c.journal.add(e)
		}
	} else {
		c.rec.EventsDropped++
	}
	for _, s := range c.subs {
		s.push(e)
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

// Done is closed when the command is over and its end stored (or the
// store failed to take it); the slot was freed at its answer.
func (c *Command) Done() <-chan struct{} { return c.done }

// Answered is closed once the command has ended and its answer is made,
// a moment before Done: the end may still be being stored.
func (c *Command) Answered() <-chan struct{} { return c.answered }

// Answer waits for the command's answer: the HTTP status and the exact
// body the synchronous call answers.
func (c *Command) Answer() (status int, body []byte) {
	<-c.answered
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.Status, c.rec.Body
}

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
