package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// State is where a command is in its life: Running, then one of the ended
// states.
type State string

// The states of a command. Running is the only one that is not final.
const (
	Running     State = "running"
	Succeeded   State = "succeeded"
	AgentError  State = "agent_error"
	Failed      State = "failed"
	Timeout     State = "timeout"
	Cancelled   State = "cancelled"
	Drained     State = "drained"
	Interrupted State = "interrupted" // vmd stopped without ending it
	Stalled     State = "stalled"
)

// Ended reports whether st is a known final state.
func (st State) Ended() bool {
	switch st {
	case Succeeded, AgentError, Failed, Timeout, Cancelled, Drained, Interrupted, Stalled:
		return true
	}
	return false
}

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
	SessionID string    // optional: replaces the stored one when set
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
	wh_state, wh_attempts, wh_last_status, wh_delivered_at`

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
	return Record{
		ID: n.ID, State: Running, CreatedAt: fromNanos(nanos(n.CreatedAt)), StartedAt: fromNanos(nanos(n.StartedAt)),
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
		e.State, e.Status, e.Body, nanos(e.EndedAt), wh, e.SessionID, id)
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
