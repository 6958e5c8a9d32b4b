package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// MaxList is the most records List returns at once.
const MaxList = 1000

// Get returns the record with that id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Record, error) {
	rec, err := getRecord(ctx, s.r, "id = ?", id)
	if err != nil {
		return Record{}, fmt.Errorf("get record %s: %w", id, err)
	}
	return rec, nil
}

// ByKey returns the record holding that idempotency key, or ErrNotFound.
func (s *Store) ByKey(ctx context.Context, key string) (Record, error) {
	if key == "" {
		return Record{}, fmt.Errorf("get record by key: empty key: %w", ErrNotFound)
	}
	rec, err := getRecord(ctx, s.r, "idem_key = ?", key)
	if err != nil {
		return Record{}, fmt.Errorf("get record by key: %w", err)
	}
	return rec, nil
}

// List returns up to limit records (1..MaxList; out of range means
// MaxList), newest first, older than the id before when it is not empty.
// next is the cursor for the following page (the last id returned), or ""
// when there is no older record.
func (s *Store) List(ctx context.Context, limit int, before string) (recs []Record, next string, err error) {
	if limit <= 0 || limit > MaxList {
		limit = MaxList
	}
	q := "SELECT " + recordColumns + " FROM commands ORDER BY id DESC LIMIT ?"
	args := []any{limit + 1}
	if before != "" {
		q = "SELECT " + recordColumns + " FROM commands WHERE id < ? ORDER BY id DESC LIMIT ?"
		args = []any{before, limit + 1}
	}
	recs, err = queryRecords(ctx, s.r, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list records: %w", err)
	}
	if len(recs) > limit {
		recs = recs[:limit]
		next = recs[limit-1].ID
	}
	return recs, next, nil
}

// LeftRunning returns the records that were running when the store was
// opened and still are: vmd stopped without ending them. The caller ends
// each one Interrupted, with the partial text it makes from Events, before
// it takes new commands.
func (s *Store) LeftRunning(ctx context.Context) ([]Record, error) {
	var recs []Record
	for _, id := range s.leftRunning {
		rec, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !rec.State.Ended() {
			recs = append(recs, rec)
		}
	}
	return recs, nil
}

func (s *Store) runningIDs(ctx context.Context) ([]string, error) {
	rows, err := s.w.QueryContext(ctx, "SELECT id FROM commands WHERE state IN ('running', 'queued') ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("find running records: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find running records: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// getRecord returns the one record matching where, or ErrNotFound.
func getRecord(ctx context.Context, q queryer, where string, args ...any) (Record, error) {
	row := q.QueryRowContext(ctx, "SELECT "+recordColumns+" FROM commands WHERE "+where, args...)
	rec, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, ErrNotFound
	}
	return rec, err
}

func queryRecords(ctx context.Context, q queryer, query string, args ...any) ([]Record, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var recs []Record
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, rows.Err()
}

// scanRecord reads one row of recordColumns.
func scanRecord(row interface{ Scan(...any) error }) (Record, error) {
	var (
		r                       Record
		created, started, ended int64
		delivered               int64
		key                     sql.NullString
	)
	err := row.Scan(&r.ID, &r.State, &created, &started, &ended, &r.PromptLen,
		&r.SessionID, &key, &r.BodyHash, &r.Machine, &r.Status, &r.Body,
		&r.EventSeq, &r.EventBytes, &r.Webhook.State, &r.Webhook.Attempts,
		&r.Webhook.LastStatus, &delivered, &r.Warm, &r.CostUSD)
	if err != nil {
		return Record{}, err
	}
	r.CreatedAt, r.StartedAt, r.EndedAt = fromNanos(created), fromNanos(started), fromNanos(ended)
	r.Webhook.DeliveredAt = fromNanos(delivered)
	r.IdempotencyKey = key.String
	return r, nil
}

// nanos is t in Unix nanoseconds, 0 for the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// nullable stores "" as NULL, which the unique key index ignores.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
