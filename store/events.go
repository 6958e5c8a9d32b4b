package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Event is one event of a command, as its subscribers saw it.
type Event struct {
	Seq  int64  // 1, 2, ... in the order the command emitted them
	Type string // start, message, image, result, ...
	Data []byte // the event's JSON
}

// AppendEvent stores ev after the command's previous events and returns
// the bytes of data now stored for the command, so the caller can bound
// them (max_output) without counting twice. The caller numbers events (it
// numbers them for live subscribers too, even while the store fails);
// ev.Seq must be above the last stored one, else ErrSeq. A command that
// has ended takes no more events (ErrNotRunning).
func (s *Store) AppendEvent(ctx context.Context, id string, ev Event) (total int64, err error) {
	total, err = s.appendEvent(ctx, id, ev)
	if err != nil {
		return 0, s.wrote(fmt.Errorf("append event %d to %s: %w", ev.Seq, id, err))
	}
	return total, s.wrote(nil)
}

func (s *Store) appendEvent(ctx context.Context, id string, ev Event) (int64, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var total int64
	err = tx.StmtContext(ctx, s.st.appendSeq).QueryRowContext(ctx, ev.Seq, len(ev.Data), id).Scan(&total)
	if err != nil {
		return 0, appendRefused(ctx, tx, id, err)
	}
	_, err = tx.StmtContext(ctx, s.st.appendEvent).ExecContext(ctx, id, ev.Seq, ev.Type, ev.Data)
	if err != nil {
		return 0, err
	}
	return total, tx.Commit()
}

// appendRefused says why the UPDATE in appendEvent matched no row.
func appendRefused(ctx context.Context, q queryer, id string, err error) error {
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	var st State
	err = q.QueryRowContext(ctx, "SELECT state FROM commands WHERE id = ?", id).Scan(&st)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	case err != nil:
		return err
	case st != Running:
		return ErrNotRunning
	}
	return ErrSeq
}

// Events returns the command's stored events with a seq above afterSeq, in
// order: 0 for all of them, a client's Last-Event-ID to resume after it.
func (s *Store) Events(ctx context.Context, id string, afterSeq int64) ([]Event, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, type, data FROM events
		WHERE command_id = ? AND seq > ? ORDER BY seq`, id, afterSeq)
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", id, err)
	}
	defer rows.Close()
	var evs []Event
	for rows.Next() {
		var ev Event
		if err := rows.Scan(&ev.Seq, &ev.Type, &ev.Data); err != nil {
			return nil, fmt.Errorf("read events of %s: %w", id, err)
		}
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events of %s: %w", id, err)
	}
	return evs, nil
}
