package commands

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/outcome"
	"github.com/vmd-dev/vmd/store"
	"github.com/vmd-dev/vmd/webhook"
)

// Storing commands. A command's record is created by Submit, before its
// CLI gets the prompt; everything after (its events, its start once it
// leaves the queue, its end and completion webhook) is written in order by
// one goroutine, the persister, so that a slow or failing disk delays the
// record, never the command or its answer.
//
// An end the store will not take is kept: the command stays live (Get,
// key retries, events and /status answer from memory) and the persister
// writes it again, backing off, until the store takes it; its webhook goes
// out once it is stored. A command whose record could not be created at
// all (without an idempotency key: one with a key is refused instead) is
// written whole, the same way, once it has ended.

const (
	// retryFirst and retryMost bound the wait between two tries of an end
	// the store would not take.
	retryFirst = 100 * time.Millisecond
	retryMost  = 30 * time.Second
	// lastTry bounds the persister's last writes at vmd's stop.
	lastTry = time.Second
)

// record creates a new command's record in the store.
func (s *Service) record(ctx context.Context, c *Command) error {
	if s.st == nil {
		return nil
	}
	c.mu.Lock()
	r := c.rec
	c.mu.Unlock()
	_, created, err := s.st.Create(ctx, store.NewRecord{ID: r.ID, State: r.State, CreatedAt: r.Created,
		StartedAt: r.Started, PromptLen: r.PromptLength, SessionID: r.SessionID, IdempotencyKey: r.IdempotencyKey,
		BodyHash: c.hash, Machine: s.opts.Machine})
	if err == nil && !created {
		// Only another writer of the store could have taken the key since
		// findKey looked; there is none (one vmd per state_dir).
		err = errors.New("idempotency key taken by another writer of the store")
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.created = true
	c.mu.Unlock()
	return nil
}

// persister writes commands' events, starts and ends, in order.
type persister struct {
	s    *Service
	mu   sync.Mutex
	todo []*Command // commands with something to write, oldest first
	wake chan struct{}
	quit chan time.Time // the stop deadline, once
	done chan struct{}
}

func newPersister(s *Service) *persister {
	return &persister{s: s, wake: make(chan struct{}, 1), quit: make(chan time.Time, 1), done: make(chan struct{})}
}

// dirty notes that c has something to write.
func (p *persister) dirty(c *Command) {
	p.mu.Lock()
	if !slices.Contains(p.todo, c) {
		p.todo = append(p.todo, c)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run writes until stop, backing off while ends fail.
func (p *persister) run() {
	defer close(p.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	backoff := time.Duration(0)
	for {
		select {
		case <-p.wake:
		case <-retry.C:
		case by := <-p.quit:
			ctx, cancelLast := context.WithDeadline(ctx, by.Add(lastTry))
			defer cancelLast()
			if left := p.flush(ctx); left > 0 {
				p.s.log.Error("command ends the store would not take by the stop; a restart marks them interrupted",
					"commands", left)
			}
			return
		}
		if p.flush(ctx) == 0 {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, retryFirst), retryMost)
		retry.Reset(backoff)
	}
}

// stop has run write what it can until by (and a moment after), then
// return; it waits for that.
func (p *persister) stop(by time.Time) {
	p.quit <- by
	<-p.done
}

// flush writes what every dirty command has to write; it returns how many
// ends the store would not take (they stay dirty).
func (p *persister) flush(ctx context.Context) int {
	p.mu.Lock()
	todo := p.todo
	p.todo = nil
	p.mu.Unlock()
	var failed []*Command
	for _, c := range todo {
		if !p.write(ctx, c) {
			failed = append(failed, c)
		}
	}
	if len(failed) > 0 {
		p.mu.Lock()
		p.todo = append(failed, p.todo...)
		p.mu.Unlock()
	}
	return len(failed)
}

// write writes what c has to write; false when its end could not be
// stored.
func (p *persister) write(ctx context.Context, c *Command) bool {
	s := p.s
	c.mu.Lock()
	if c.endKept {
		c.mu.Unlock()
		return true // its end is stored: a dirty mark from before it was
	}
	evs := c.journal
	ended, created, started := c.rec.Result != nil, c.created, c.queued && c.rec.State == Running && !c.startWritten
	rec := c.rec
	if created || ended {
		c.journal = nil
	}
	if started {
		c.startWritten = true
	}
	c.mu.Unlock()
	if s.st == nil {
		if ended {
			c.markKept()
			s.stored(c)
		}
		return true
	}
	if !ended {
		if !created {
			return true // its events go with its end
		}
		if started {
			if err := s.st.Start(ctx, rec.ID, rec.Started); err != nil {
				c.log.Error("cannot store that the command started; its end will say so", "error", err)
			}
		}
		if len(evs) > 0 {
			if _, err := s.st.AppendEvents(ctx, rec.ID, toStore(evs)...); err != nil && c.noteEventsLost() {
				c.log.Error("cannot store the command's events; its answer is unaffected", "error", err)
			}
		}
		return true
	}
	if err := s.storeEnd(ctx, rec, c.hash, evs, created); err != nil {
		if c.noteEndFailed() {
			c.log.Error("cannot store the end of the command; it is kept and written again", "error", err)
		}
		return false
	}
	c.markKept()
	s.stored(c)
	if s.opts.Webhook != nil {
		s.opts.Webhook()
	}
	return true
}

// storeEnd writes an ended record: its end (and last events) over its
// stored record, or, when it never was stored, the whole of it; with its
// completion webhook when webhooks are on.
func (s *Service) storeEnd(ctx context.Context, rec Record, hash []byte, evs []Event, created bool) error {
	sr := rec.stored(s.opts.Machine, hash)
	end := store.End{State: rec.State, Status: rec.Status, Body: rec.Body, EndedAt: rec.Ended, StartedAt: rec.Started,
		SessionID: rec.SessionID, Warm: rec.Warm, CostUSD: costOf(rec.Result), Events: toStore(evs)}
	if s.opts.Webhook != nil {
		sr.Webhook = store.Delivery{State: store.DeliveryPending}
		payload, err := webhook.Payload(MarshalRecord(sr), rec.Ended)
		if err != nil {
			s.log.Error("cannot make the completion webhook", "command_id", rec.ID, "error", err)
		}
		end.Webhook = payload
	}
	if !created {
		return s.st.Put(ctx, store.NewRecord{ID: rec.ID, State: Running, CreatedAt: rec.Created, StartedAt: rec.Started,
			PromptLen: rec.PromptLength, SessionID: rec.SessionID, IdempotencyKey: rec.IdempotencyKey, BodyHash: hash,
			Machine: s.opts.Machine}, end)
	}
	err := s.st.Finish(ctx, rec.ID, end)
	if err != nil && len(end.Events) > 0 && !errors.Is(err, store.ErrNotRunning) {
		// The end matters more than the last events: without it, the
		// record would be "interrupted" after a restart.
		end.Events = nil
		err = s.st.Finish(ctx, rec.ID, end)
	}
	if errors.Is(err, store.ErrNotRunning) {
		return nil // stored by an earlier try whose answer was lost
	}
	return err
}

// costOf is what a turn cost, or 0.
func costOf(res *agent.Result) float64 {
	if res == nil || res.Report == nil || res.Report.CostUSD == nil {
		return 0
	}
	return *res.Report.CostUSD
}

func toStore(evs []Event) []store.Event {
	out := make([]store.Event, len(evs))
	for i, e := range evs {
		out[i] = store.Event{Seq: e.Seq, Type: e.Kind.String(), Data: e.Data()}
	}
	return out
}

// Get returns a command's record as the store shows records; a live
// command's as it is now.
func (s *Service) Get(ctx context.Context, id string) (store.Record, error) {
	if c, ok := s.Live(id); ok {
		return c.Stored(), nil
	}
	if s.st == nil {
		return store.Record{}, ErrNotFound
	}
	return s.st.Get(ctx, id)
}

// Stored is the command's record as the store shows records.
func (c *Command) Stored() store.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.stored(c.svc.opts.Machine, c.hash)
}

// List returns up to limit stored records, newest first, older than the
// id before when it is set, and the cursor of the next page ("" at the
// end). A live command is shown as Get shows it.
func (s *Service) List(ctx context.Context, limit int, before string) ([]store.Record, string, error) {
	if s.st == nil {
		return nil, "", nil
	}
	// The live commands first: one whose end is stored meanwhile is then
	// shown ended either way, never as the running row read before.
	s.mu.Lock()
	live := make(map[string]*Command, len(s.live))
	for id, c := range s.live {
		live[id] = c
	}
	s.mu.Unlock()
	recs, next, err := s.st.List(ctx, limit, before, store.PageBytes)
	for i := range recs {
		if c, ok := live[recs[i].ID]; ok {
			recs[i] = c.Stored()
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
		if e, ok := agent.ParseEvent(se.Type, se.Seq, se.Data); ok {
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
		if e, ok := agent.ParseEvent(se.Type, se.Seq, se.Data); ok {
			evs = append(evs, e)
		}
	}
	return evs, nil
}

// Recover ends the records a stopped vmd left running or queued as
// Interrupted, each with the text its stored events hold, before any
// command is taken. It returns how many it ended; a record it cannot end
// is logged and left.
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
		res := &agent.Result{Outcome: outcome.Interrupted, ExitCode: -1, SessionID: sr.SessionID}
		res.Text, res.Truncated = agent.PartialText(evs, s.opts.RecordBytes)
		rec := Record{ID: sr.ID, State: State(outcome.Interrupted), Outcome: outcome.Interrupted, Created: sr.CreatedAt,
			Started: sr.StartedAt, Ended: time.Now(), PromptLength: sr.PromptLen, SessionID: sr.SessionID,
			IdempotencyKey: sr.IdempotencyKey, Result: res}
		rec.Status, rec.Body = Answer(rec)
		if err := s.storeEnd(ctx, rec, sr.BodyHash, nil, true); err != nil {
			s.log.Error("cannot end an interrupted command", "command_id", sr.ID, "error", err)
			continue
		}
		if s.opts.Webhook != nil {
			s.opts.Webhook()
		}
		n++
	}
	return n, nil
}
