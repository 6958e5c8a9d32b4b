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

// PageBytes is the answer bodies a page of List holds at most, unless its
// first record's alone is larger: a page is read whole into memory, and
// answers run up to max_output (1 MiB by default) and more, and vmd's
// memory holds a page a few times over while it encodes it. With four
// clients paging through answers of 1 MB at once, vmd grew 31 MiB at 1 MiB
// a page, 99 MiB at 4 MiB (BenchmarkReadMemory in cmd/vmd); a page of
// everyday answers (a few KiB each) still holds hundreds of records.
const PageBytes = 1 << 20

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
// MaxList), newest first, older than the id before when it is not empty,
// and up to maxBytes of their answer bodies (<= 0 means PageBytes): the
// page ends before the first record whose answer would not fit, but for
// its first record, which it always holds. next is the cursor for the
// following page (the last id returned), or "" when there is no older
// record.
//
// The sizes of the answers are read first, with SQL's length(), which
// does not load them: only the bodies of the records returned are ever
// read, whatever the others hold. It is one statement, so one snapshot:
// a record that ends meanwhile cannot carry an answer past the bound.
func (s *Store) List(ctx context.Context, limit int, before string, maxBytes int64) (recs []Record, next string, err error) {
	if limit <= 0 || limit > MaxList {
		limit = MaxList
	}
	if maxBytes <= 0 {
		maxBytes = PageBytes
	}
	args := []any{limit + 1, maxBytes}
	older := ""
	if before != "" {
		older = "WHERE id < ?3"
		args = append(args, before)
	}
	// page numbers the limit+1 newest records (the one past the limit
	// tells whether there is more) and adds their answers' sizes up.
	q := `WITH page AS (
		SELECT pid, ROW_NUMBER() OVER w AS n, SUM(size) OVER w AS upto FROM (
			SELECT id AS pid, COALESCE(length(answer), 0) AS size FROM commands ` + older + `
			ORDER BY id DESC LIMIT ?1)
		WINDOW w AS (ORDER BY pid DESC ROWS UNBOUNDED PRECEDING))
	SELECT ` + recordColumns + `, (SELECT COUNT(*) FROM page) FROM commands
	WHERE id IN (SELECT pid FROM page WHERE n = 1 OR (n <= ?1 - 1 AND upto <= ?2))
	ORDER BY id DESC`
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list records: %w", err)
	}
	defer rows.Close()
	var read int // the records page numbered: limit+1 when there are more
	for rows.Next() {
		rec, err := scanRecord(counted{rows, &read})
		if err != nil {
			return nil, "", fmt.Errorf("list records: %w", err)
		}
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list records: %w", err)
	}
	if len(recs) < read {
		next = recs[len(recs)-1].ID
	}
	return recs, next, nil
}

// counted scans a row of recordColumns followed by one more column, a
// count, into n.
type counted struct {
	rows *sql.Rows
	n    *int
}

func (c counted) Scan(dest ...any) error { return c.rows.Scan(append(dest, c.n)...) }

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
