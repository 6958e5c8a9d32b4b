package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DeliveryState is where a record's completion webhook is.
type DeliveryState string

// The states of a webhook delivery.
const (
	DeliveryNone      DeliveryState = ""          // no webhook for this record
	DeliveryPending   DeliveryState = "pending"   // queued, or waiting to retry
	DeliveryDelivered DeliveryState = "delivered" // the receiver answered 2xx
	DeliveryGone      DeliveryState = "gone"      // the receiver answered 410: never again
	DeliveryExpired   DeliveryState = "expired"   // retried until the sender gave up
)

// Outgoing is an outbox row due for delivery.
type Outgoing struct {
	CommandID string // the record's id, also the delivery's webhook-id
	Payload   []byte // the body to POST, as Finish stored it
	CreatedAt time.Time
	Attempts  int // attempts made so far
}

// Attempt is the outcome of one delivery attempt.
type Attempt struct {
	At     time.Time
	Status int // the receiver's HTTP status; 0 when it did not answer
	// Outcome is DeliveryPending to retry at Next, or a final state.
	Outcome DeliveryState
	Next    time.Time
}

// Due returns up to limit outbox rows not yet done whose next attempt is
// at or before now, the longest waiting first.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]Outgoing, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT command_id, payload, created_at, attempts
		FROM outbox WHERE done_at = 0 AND next_at <= ? ORDER BY next_at LIMIT ?`,
		nanos(now), limit)
	if err != nil {
		return nil, fmt.Errorf("read due webhooks: %w", err)
	}
	defer rows.Close()
	var out []Outgoing
	for rows.Next() {
		var o Outgoing
		var created int64
		if err := rows.Scan(&o.CommandID, &o.Payload, &created, &o.Attempts); err != nil {
			return nil, fmt.Errorf("read due webhooks: %w", err)
		}
		o.CreatedAt = fromNanos(created)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read due webhooks: %w", err)
	}
	return out, nil
}

// NextDue returns when the earliest pending outbox row is due; ok is false
// when none is pending.
func (s *Store) NextDue(ctx context.Context) (next time.Time, ok bool, err error) {
	var at sql.NullInt64
	err = s.r.QueryRowContext(ctx, "SELECT MIN(next_at) FROM outbox WHERE done_at = 0").Scan(&at)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read next webhook: %w", err)
	}
	if !at.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, at.Int64).UTC(), true, nil
}

// Attempted records a delivery attempt on the outbox row and on the
// record (attempts, last status, delivered time) in one transaction. A
// final outcome takes the row out of Due for good. ErrNotFound when no
// pending row has that id.
func (s *Store) Attempted(ctx context.Context, id string, a Attempt) error {
	switch a.Outcome {
	case DeliveryPending, DeliveryDelivered, DeliveryGone, DeliveryExpired:
	default:
		return fmt.Errorf("record webhook attempt for %s: unknown outcome %q", id, a.Outcome)
	}
	if err := s.attempted(ctx, id, a); err != nil {
		return s.wrote(fmt.Errorf("record webhook attempt for %s: %w", id, err))
	}
	return s.wrote(nil)
}

func (s *Store) attempted(ctx context.Context, id string, a Attempt) error {
	var done, delivered int64
	switch a.Outcome {
	case DeliveryPending:
	case DeliveryDelivered:
		done, delivered = nanos(a.At), nanos(a.At)
	default: // gone, expired
		done = nanos(a.At)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	res, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1,
		next_at = ?, done_at = ? WHERE command_id = ? AND done_at = 0`,
		nanos(a.Next), done, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errors.Join(err, ErrNotFound)
	}
	_, err = tx.ExecContext(ctx, `UPDATE commands SET wh_attempts = wh_attempts + 1,
		wh_last_status = ?, wh_state = ?, wh_delivered_at = ? WHERE id = ?`,
		a.Status, a.Outcome, delivered, id)
	if err != nil {
		return err
	}
	return tx.Commit()
}
