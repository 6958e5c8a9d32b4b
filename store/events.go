package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
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
	return s.AppendEvents(ctx, id, ev)
}

// AppendEvents is AppendEvent for several events in one transaction: a
// caller that buffers events while a write is in flight stores them with
// one commit (one WAL write) instead of one each. Either all are stored or
// none.
func (s *Store) AppendEvents(ctx context.Context, id string, evs ...Event) (total int64, err error) {
	if len(evs) == 0 {
		return 0, nil
	}
	total, err = s.appendEvents(ctx, id, evs)
	if err != nil {
		return 0, s.wrote(fmt.Errorf("append events %d..%d to %s: %w",
			evs[0].Seq, evs[len(evs)-1].Seq, id, err))
	}
	return total, s.wrote(nil)
}

// appendEvents checks the seqs against the command's totals in memory
// (read from the events once per process), so the transaction writes the
// events table alone; the totals move only once it has committed.
func (s *Store) appendEvents(ctx context.Context, id string, evs []Event) (int64, error) {
	s.counts.mu.Lock() // appends are serial on the one writer anyway
	defer s.counts.mu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	t, err := s.appendTx(ctx, tx, id, evs)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	s.counts.m[id] = t
	return t.bytes, nil
}

// appendTx inserts evs in tx and returns the totals they make. The caller
// holds counts.mu, and records the totals once tx has committed.
func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, id string, evs []Event) (totals, error) {
	t, err := s.counts.get(ctx, tx.StmtContext(ctx, s.st.eventTotals), id)
	if err != nil {
		return totals{}, err
	}
	ins := tx.StmtContext(ctx, s.st.appendEvent)
	for _, ev := range evs {
		if ev.Seq <= t.seq {
			return totals{}, ErrSeq
		}
		res, err := ins.ExecContext(ctx, id, ev.Seq, ev.Type, ev.Data)
		if err != nil {
			return totals{}, err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return totals{}, appendRefused(ctx, tx, id, err)
		}
		t.seq, t.bytes = ev.Seq, t.bytes+int64(len(ev.Data))
	}
	return t, nil
}

// counts holds the last seq and the data bytes of the events of commands
// appended to since Open; Finish forgets them.
type counts struct {
	mu sync.Mutex
	m  map[string]totals
}

type totals struct{ seq, bytes int64 }

// get returns id's totals, reading them from the events the first time.
// The caller holds mu.
func (c *counts) get(ctx context.Context, read *sql.Stmt, id string) (totals, error) {
	if t, ok := c.m[id]; ok {
		return t, nil
	}
	if c.m == nil {
		c.m = map[string]totals{}
	}
	var t totals
	err := read.QueryRowContext(ctx, id).Scan(&t.seq, &t.bytes)
	return t, err
}

func (c *counts) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// appendRefused says why the INSERT in appendEvents stored nothing.
func appendRefused(ctx context.Context, q queryer, id string, err error) error {
	if err != nil {
		return err
	}
	var st State
	err = q.QueryRowContext(ctx, "SELECT state FROM commands WHERE id = ?", id).Scan(&st)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	case err != nil:
		return err
	}
	return ErrNotRunning
}

// EventPageBytes is the event data a page of EventPage holds, about: a
// stream of stored events holds one page at a time, so a few hundred
// followers of one command cost a few MiB, not each a copy of all its
// events (up to max_output, 1 MiB by default, and more).
const EventPageBytes = 32 << 10

// Events returns the command's stored events with a seq above afterSeq, in
// order: 0 for all of them, a client's Last-Event-ID to resume after it.
// It holds them all at once: a reader that need not (a stream) pages
// through them with EventPage.
func (s *Store) Events(ctx context.Context, id string, afterSeq int64) ([]Event, error) {
	return s.events(ctx, id, afterSeq, 0)
}

// EventPage returns the command's stored events with a seq above
// afterSeq, in order, until their data reaches maxBytes (<= 0 means
// EventPageBytes): at least one event, and at most one past the bound,
// which it ends. An empty page is the end; the next page is the one after
// the last seq returned.
func (s *Store) EventPage(ctx context.Context, id string, afterSeq int64, maxBytes int) ([]Event, error) {
	if maxBytes <= 0 {
		maxBytes = EventPageBytes
	}
	return s.events(ctx, id, afterSeq, maxBytes)
}

// events reads events after afterSeq until maxBytes of data (0: all). The
// rows are read one by one, so closing them early reads no more.
func (s *Store) events(ctx context.Context, id string, afterSeq int64, maxBytes int) ([]Event, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, type, data FROM events
		WHERE command_id = ? AND seq > ? ORDER BY seq`, id, afterSeq)
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", id, err)
	}
	defer rows.Close()
	var evs []Event
	size := 0
	for rows.Next() {
		var ev Event
		if err := rows.Scan(&ev.Seq, &ev.Type, &ev.Data); err != nil {
			return nil, fmt.Errorf("read events of %s: %w", id, err)
		}
		evs = append(evs, ev)
		if size += len(ev.Data); maxBytes > 0 && size >= maxBytes {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events of %s: %w", id, err)
	}
	return evs, nil
}
