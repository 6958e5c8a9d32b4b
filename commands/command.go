package commands

import (
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

// finish records the end of the command and frees its place: the record
// is final in the store before a retry of its key can miss the running
// command, and before Done.
func (c *Command) finish(run *agent.Run) {
	s := c.svc
	defer s.ending.Done()
	c.end(run.Wait())
	s.mu.Lock()
	if s.cur == c {
		s.cur = nil
	}
	s.mu.Unlock()
	s.settle.Reset(settleDelay)
	close(c.done)
	if c.webhook {
		s.opts.Webhook()
	}
}

// end makes the record final: its state, its answer, then the store.
func (c *Command) end(res *agent.Result) {
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
	if discarded { // no answer: nobody asked for it
		close(c.answered)
		return
	}
	status, body := c.svc.opts.Render(rec)
	c.mu.Lock()
	c.rec.Status, c.rec.Body = status, body
	rec = c.rec
	c.mu.Unlock()
	// The answer goes out while the end is being written: a retry of the
	// key finds this command until done, and Submit waits for the slot.
	close(c.answered)
	if c.journal != nil {
		last := c.journal.close() // the events go with the end: an ended record takes no more
		c.webhook = c.svc.storeEnd(rec, c.svc.opts.Machine, c.hash, last)
	}
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

// Done is closed when the command is over: its record is final and the
// slot free.
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
