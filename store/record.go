package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// State is where a command is in its life: Queued, Running, or, once it
// has ended, the name of how it ended, which the store keeps as it is
// given (the callers' vocabulary: see package outcome).
type State string

// The states of a command that has not ended: the store finds these left
// by a vmd that stopped without ending them.
const (
	Queued  State = "queued"
	Running State = "running"
)

// Ended reports whether st is a state of a command that has ended.
func (st State) Ended() bool { return st != "" && st != Queued && st != Running }

// Record is one command as stored.
type Record struct {
	ID                            string
	State                         State
	CreatedAt, StartedAt, EndedAt time.Time // zero until it happens
	PromptLen                     int
	SessionID                     string
	IdempotencyKey                string // "" when the request had none
	BodyHash                      []byte // the caller's hash of the request body
	Machine                       string
	Status                        int    // the HTTP status once ended, else 0
	Body                          []byte // the exact answer body once ended
	EventSeq                      int64  // the last stored event's seq
	EventBytes                    int64  // the stored events' data bytes
	Webhook                       Delivery
	Warm                          bool    // its turn went to an agent already running
	CostUSD                       float64 // what it cost, once ended
}

// Delivery is the completion webhook as the record shows it.
type Delivery struct {
	State       DeliveryState
	Attempts    int
	LastStatus  int       // the receiver's last HTTP status; 0: no answer
	DeliveredAt time.Time // zero until delivered
}

// NewRecord is what Create needs to know about a command.
type NewRecord struct {
	ID             string    // optional: NewID() when empty, else ParseID-checked
	State          State     // optional: Running; or Queued
	CreatedAt      time.Time // optional: time.Now()
	StartedAt      time.Time // optional: a CLI started before its record was written
	PromptLen      int
	SessionID      string
	IdempotencyKey string // unique among records when not empty
	BodyHash       []byte
	Machine        string // optional: Machine()
}

// End is how a command ended, for Finish.
type End struct {
	State     State // an ended state
	Status    int
	Body      []byte
	EndedAt   time.Time // optional: time.Now()
	StartedAt time.Time // optional: replaces the stored one when set
	SessionID string    // optional: replaces the stored one when set
	Warm      bool
	CostUSD   float64
	// Webhook is the completion webhook's payload. When not nil, Finish
	// queues it in the outbox in the same transaction as the end.
	Webhook []byte
	// Events are the command's last events, not yet appended: Finish
	// appends them in the same transaction, before the end (one commit
	// on the answer's path instead of two).
	Events []Event
}

var machine = sync.OnceValue(Machine)

const recordColumns = `id, state, created_at, started_at, ended_at, prompt_len,
	session_id, idem_key, body_hash, machine, status, answer,
	(SELECT COALESCE(MAX(seq), 0) FROM events WHERE command_id = commands.id),
	(SELECT COALESCE(SUM(length(data)), 0) FROM events WHERE command_id = commands.id),
	wh_state, wh_attempts, wh_last_status, wh_delivered_at, warm, cost_usd`

// queryer is what *sql.DB and *sql.Tx share for reads.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Create stores a new running record. When n.IdempotencyKey is already
// taken it stores nothing and returns the record holding the key with
// created false, atomically: of two concurrent Creates with one key,
// exactly one creates. Comparing BodyHash is the caller's business.
func (s *Store) Create(ctx context.Context, n NewRecord) (Record, bool, error) {
	rec, err := n.record()
	if err != nil {
		return Record{}, false, err
	}
	// One statement, committed on its own: a key another record holds
	// inserts nothing, and that record is the answer.
	res, err := s.st.insert.ExecContext(ctx,
		rec.ID, rec.State, nanos(rec.CreatedAt), nanos(rec.StartedAt), rec.PromptLen, rec.SessionID,
		nullable(rec.IdempotencyKey), rec.BodyHash, rec.Machine)
	var inserted int64
	if err == nil {
		inserted, err = res.RowsAffected()
	}
	if err != nil {
		return Record{}, false, s.wrote(fmt.Errorf("create record %s: %w", rec.ID, err))
	}
	s.wrote(nil)
	if inserted == 1 {
		return rec, true, nil
	}
	old, err := scanRecord(s.st.byKey.QueryRowContext(ctx, rec.IdempotencyKey))
	if err != nil {
		return Record{}, false, fmt.Errorf("create record: key %q: %w", rec.IdempotencyKey, err)
	}
	return old, false, nil
}

// record fills n's defaults.
func (n NewRecord) record() (Record, error) {
	var err error
	if n.ID == "" {
		n.ID, err = NewID()
	} else {
		n.ID, err = ParseID(n.ID)
	}
	if err != nil {
		return Record{}, fmt.Errorf("create record: %w", err)
	}
	if n.CreatedAt.IsZero() {
		n.CreatedAt = time.Now()
	}
	if n.Machine == "" {
		n.Machine = machine()
	}
	if n.State == "" {
		n.State = Running
	}
	if n.State.Ended() {
		return Record{}, fmt.Errorf("create record: %q is not the state of a new command", n.State)
	}
	return Record{
		ID: n.ID, State: n.State, CreatedAt: fromNanos(nanos(n.CreatedAt)), StartedAt: fromNanos(nanos(n.StartedAt)),
		PromptLen: n.PromptLen, SessionID: n.SessionID,
		IdempotencyKey: n.IdempotencyKey, BodyHash: n.BodyHash, Machine: n.Machine,
	}, nil
}

// Finish ends a running record: its state, HTTP status and answer body,
// and, when e.Webhook is set, the outbox row that will deliver it, all in
// one transaction, so a crash leaves either both or neither. A record that
// has already ended is ErrNotRunning and is left as it was.
func (s *Store) Finish(ctx context.Context, id string, e End) error {
	if !e.State.Ended() {
		return fmt.Errorf("finish record %s: %q is not an ended state", id, e.State)
	}
	if e.EndedAt.IsZero() {
		e.EndedAt = time.Now()
	}
	if err := s.finish(ctx, id, e); err != nil {
		return s.wrote(fmt.Errorf("finish record %s: %w", id, err))
	}
	s.counts.forget(id)
	return s.wrote(nil)
}

func (s *Store) finish(ctx context.Context, id string, e End) error {
	s.counts.mu.Lock() // for the events; Finish forgets their totals after
	defer s.counts.mu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if len(e.Events) > 0 {
		if _, err := s.appendTx(ctx, tx, id, e.Events); err != nil {
			return err
		}
	}
	wh := DeliveryNone
	if e.Webhook != nil {
		wh = DeliveryPending
	}
	res, err := tx.StmtContext(ctx, s.st.finish).ExecContext(ctx,
		e.State, e.Status, e.Body, nanos(e.EndedAt), wh, e.SessionID, id, nanos(e.StartedAt), e.Warm, e.CostUSD)
	if err != nil {
		return err
	}
	if err := oneRow(ctx, tx, res, id); err != nil {
		return err
	}
	if e.Webhook != nil {
		_, err = tx.StmtContext(ctx, s.st.outbox).ExecContext(ctx, id, e.Webhook, nanos(e.EndedAt))
		if err != nil {
			return err
		}
	}
	return tx.Commit()
}

// oneRow turns an UPDATE ... WHERE state = 'running' that changed nothing
// into ErrNotFound or ErrNotRunning. Inside a transaction q must be the
// transaction: an in-memory store has one connection, and it is taken.
func oneRow(ctx context.Context, q queryer, res sql.Result, id string) error {
	n, err := res.RowsAffected()
	if err != nil || n == 1 {
		return err
	}
	var st State
	err = q.QueryRowContext(ctx, "SELECT state FROM commands WHERE id = ?", id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return ErrNotRunning
}

// Start notes that a queued command has started: its state is running
// from startedAt.
func (s *Store) Start(ctx context.Context, id string, startedAt time.Time) error {
	res, err := s.w.ExecContext(ctx, "UPDATE commands SET state = ?, started_at = ? WHERE id = ? AND state = ?",
		Running, nanos(startedAt), id, Queued)
	if err == nil {
		err = oneRow(ctx, s.w, res, id)
	}
	if err != nil {
		return s.wrote(fmt.Errorf("start record %s: %w", id, err))
	}
	return s.wrote(nil)
}

// Put stores a command that ended before its record could be created: n
// and its end e (events and webhook included), in one transaction. A
// record already stored under n's id is ErrNotRunning if it has ended,
// and is ended with e if not.
func (s *Store) Put(ctx context.Context, n NewRecord, e End) error {
	rec, err := n.record()
	if err != nil {
		return err
	}
	if !e.State.Ended() {
		return fmt.Errorf("put record %s: %q is not an ended state", rec.ID, e.State)
	}
	if e.EndedAt.IsZero() {
		e.EndedAt = time.Now()
	}
	_, err = s.st.insert.ExecContext(ctx, rec.ID, rec.State, nanos(rec.CreatedAt), nanos(rec.StartedAt), rec.PromptLen,
		rec.SessionID, nullable(rec.IdempotencyKey), rec.BodyHash, rec.Machine)
	if err != nil && !isUnique(err) {
		return s.wrote(fmt.Errorf("put record %s: %w", rec.ID, err))
	}
	return s.Finish(ctx, rec.ID, e)
}

// Cost is what one ended command cost.
type Cost struct {
	EndedAt time.Time
	CostUSD float64
}

// Costs lists what the commands that ended after since cost, oldest first,
// leaving out those that cost nothing.
func (s *Store) Costs(ctx context.Context, since time.Time) ([]Cost, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT ended_at, cost_usd FROM commands WHERE ended_at > ? AND cost_usd > 0 ORDER BY ended_at",
		nanos(since))
	if err != nil {
		return nil, fmt.Errorf("read costs: %w", err)
	}
	defer rows.Close()
	var out []Cost
	for rows.Next() {
		var at int64
		var c Cost
		if err := rows.Scan(&at, &c.CostUSD); err != nil {
			return nil, fmt.Errorf("read costs: %w", err)
		}
		c.EndedAt = fromNanos(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
