package commands

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/store"
	"github.com/vmd-dev/vmd/webhook"
)

// A store that fails is logged and counted (the store counts its write
// errors, /ready names it) and never fails the live answer: the command
// runs and answers as it would without a store.

// create stores c's record before its CLI starts. created is false when
// another record holds c's key (old): the caller answers with it. A store
// that cannot write leaves c unstored.
func (s *Service) create(c *Command) (old store.Record, created bool) {
	if s.st == nil {
		return store.Record{}, true
	}
	c.mu.Lock() // the CLI runs: its events change the record
	r := c.rec
	c.mu.Unlock()
	old, created, err := s.st.Create(context.Background(), store.NewRecord{ID: r.ID, CreatedAt: r.Created,
		StartedAt: r.Started, PromptLen: r.PromptLength, SessionID: r.SessionID, IdempotencyKey: r.IdempotencyKey,
		BodyHash: c.hash, Machine: s.opts.Machine})
	if err != nil {
		c.log.Error("cannot store the command; it runs, but will not survive a restart", "error", err)
		return store.Record{}, true
	}
	if created {
		// The CLI has started meanwhile (the record says when): the
		// journal takes any event it made so far, and the rest as they
		// come.
		c.mu.Lock()
		c.journal = newJournal(s.st, r.ID, c.log)
		for _, e := range c.rec.Events {
			c.journal.add(e)
		}
		c.mu.Unlock()
	}
	return old, created
}

// storeEnd ends a record in the store, with its completion webhook when
// webhooks are on, and reports whether one was queued.
func (s *Service) storeEnd(rec Record, machine string, hash []byte, events []store.Event) bool {
	sr := rec.stored(machine, hash)
	end := store.End{State: rec.State, Status: rec.Status, Body: rec.Body, EndedAt: rec.Ended, SessionID: rec.SessionID,
		Events: events}
	if s.opts.Webhook != nil {
		sr.Webhook = store.Delivery{State: store.DeliveryPending}
		payload, err := webhook.Payload(MarshalRecord(sr), rec.Ended)
		if err != nil {
			s.log.Error("cannot make the completion webhook", "command_id", rec.ID, "error", err)
		}
		end.Webhook = payload
	}
	err := s.st.Finish(context.Background(), rec.ID, end)
	if err != nil && len(end.Events) > 0 {
		// The end matters more than the last events: without it, the
		// record would be "interrupted" after a restart.
		s.log.Error("cannot store the command's last events; its answer is unaffected", "command_id", rec.ID, "error", err)
		end.Events = nil
		err = s.st.Finish(context.Background(), rec.ID, end)
	}
	if err != nil {
		s.log.Error("cannot store the end of the command; its answer was given but will not survive a restart",
			"command_id", rec.ID, "error", err)
		return false
	}
	return end.Webhook != nil
}

// journal writes one command's events to the store off the hot path: the
// agent's reader hands an event over and goes on; one goroutine per
// command stores what has piled up meanwhile with one AppendEvents (one
// commit), so a slow disk delays the record, never the live stream.
type journal struct {
	st  *store.Store
	id  string
	log hclog.Logger

	mu      sync.Mutex
	pending []Event
	closed  bool
	wake    chan struct{}
	done    chan struct{}
	rest    []store.Event // what was pending at close, for Finish
}

func newJournal(st *store.Store, id string, log hclog.Logger) *journal {
	j := &journal{st: st, id: id, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go j.run()
	return j
}

func (j *journal) signal() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// add queues an event.
func (j *journal) add(e Event) {
	j.mu.Lock()
	j.pending = append(j.pending, e)
	j.mu.Unlock()
	j.signal()
}

// close returns once every queued write is done but the last events',
// which it returns: Finish stores them with the end, in one commit.
func (j *journal) close() []store.Event {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.signal()
	<-j.done
	return j.rest
}

func (j *journal) run() {
	defer close(j.done)
	ctx := context.Background()
	failed := false
	for range j.wake {
		j.mu.Lock()
		evs, closed := j.pending, j.closed
		j.pending = nil
		j.mu.Unlock()
		batch := make([]store.Event, len(evs))
		for i, e := range evs {
			batch[i] = e.toStore()
		}
		var err error
		if closed {
			j.rest = batch // Finish stores them
		} else if len(evs) > 0 {
			_, err = j.st.AppendEvents(ctx, j.id, batch...)
		}
		if err != nil && !failed {
			failed = true // once per command: a full disk fails every write
			j.log.Error("cannot store the command's events; its answer is unaffected", "error", err)
		}
		if closed {
			return
		}
	}
}

// Get returns a command's stored record; for the running command, its
// record as it is now.
func (s *Service) Get(ctx context.Context, id string) (store.Record, error) {
	if c, ok := s.Live(id); ok {
		return c.stored(), nil
	}
	if s.st == nil {
		return store.Record{}, ErrNotFound
	}
	return s.st.Get(ctx, id)
}

// stored is the running command's record as the store shows records.
func (c *Command) stored() store.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.stored(c.svc.opts.Machine, c.hash)
}

// Stored is the command's record as Get shows it.
func (c *Command) Stored() store.Record { return c.stored() }

// List returns up to limit stored records, newest first, older than the
// id before when it is set, and the cursor of the next page ("" at the
// end). The running command is shown as Get shows it: its answer may be
// out a moment before its end is stored.
func (s *Service) List(ctx context.Context, limit int, before string) ([]store.Record, string, error) {
	if s.st == nil {
		return nil, "", nil
	}
	// The live commands first: one whose end is stored meanwhile is then
	// shown ended either way, never as the running row read before.
	live := s.live()
	recs, next, err := s.st.List(ctx, limit, before, store.PageBytes)
	for i := range recs {
		if c, ok := live[recs[i].ID]; ok {
			recs[i] = c.stored()
		}
	}
	return recs, next, err
}

// EventPage returns a page of an ended command's stored events after seq
// after (about store.EventPageBytes of them), and last, the seq the next
// page comes after: after itself once there are no more (a page can hold
// no event this vmd knows, and still not be the end). A stream pages
// through them, so it never holds them all.
func (s *Service) EventPage(ctx context.Context, id string, after int64) (evs []Event, last int64, err error) {
	if s.st == nil {
		return nil, after, ErrNotFound
	}
	stored, err := s.st.EventPage(ctx, id, after, store.EventPageBytes)
	if err != nil {
		return nil, after, err
	}
	last = after
	for _, se := range stored {
		if e, ok := fromStore(se); ok {
			evs = append(evs, e)
		}
		last = se.Seq // past an event this vmd does not know, too
	}
	return evs, last, nil
}

// Events returns an ended command's stored events after seq after, all at
// once (for Recover; a stream pages with EventPage).
func (s *Service) Events(ctx context.Context, id string, after int64) ([]Event, error) {
	if s.st == nil {
		return nil, ErrNotFound
	}
	stored, err := s.st.Events(ctx, id, after)
	if err != nil {
		return nil, err
	}
	evs := make([]Event, 0, len(stored))
	for _, se := range stored {
		if e, ok := fromStore(se); ok {
			evs = append(evs, e)
		}
	}
	return evs, nil
}

// Recover ends the records a stopped vmd left running as Interrupted, each
// with the text its stored events hold, before any command is taken. It
// returns how many it ended; a record it cannot end is logged and left.
func (s *Service) Recover(ctx context.Context) (int, error) {
	if s.st == nil {
		return 0, nil
	}
	recs, err := s.st.LeftRunning(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sr := range recs {
		evs, err := s.Events(ctx, sr.ID, 0)
		if err != nil {
			s.log.Error("cannot read an interrupted command's events", "command_id", sr.ID, "error", err)
		}
		rec := Record{ID: sr.ID, State: Interrupted, Created: sr.CreatedAt, Started: sr.StartedAt,
			Ended: time.Now(), PromptLength: sr.PromptLen, SessionID: sr.SessionID,
			IdempotencyKey: sr.IdempotencyKey, Events: evs}
		rec.Result = &agent.Result{Outcome: agent.Crashed, ExitCode: -1, SessionID: sr.SessionID}
		rec.Result.Text, rec.Result.Truncated = partialText(evs, s.opts.RecordBytes)
		rec.Status, rec.Body = s.opts.Render(rec)
		if s.storeEnd(rec, sr.Machine, sr.BodyHash, nil) && s.opts.Webhook != nil {
			s.opts.Webhook()
		}
		n++
	}
	return n, nil
}

// partialText is the assistant's text in evs, as the agent joins it, cut
// at max bytes.
func partialText(evs []Event, max int) (string, bool) {
	var b strings.Builder
	for _, e := range evs {
		if e.Kind != EventMessage || e.Text == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(e.Text)
	}
	if b.Len() > max {
		return strings.ToValidUTF8(b.String()[:max], ""), true
	}
	return b.String(), false
}

// IsNotFound reports whether err means no such command.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
