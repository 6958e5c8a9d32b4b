package store

import (
	"context"
	"fmt"
	"time"
)

// pruneBatch is how many records one Prune transaction deletes, so the
// writer is never held for long while commands are running.
const pruneBatch = 256

// Prune deletes ended records, with their events and their outbox
// rows, that ended before now-retention or that are older than the newest
// maxCommands records. A zero retention or maxCommands turns that limit
// off. Running records are kept, and so are records whose webhook is still
// pending unless they are past retention (the sender gives up long before
// that; without a sender, as when webhook_url was unset after a restart,
// its rows would otherwise keep their records for ever). It returns how
// many records it deleted.
func (s *Store) Prune(ctx context.Context, now time.Time, retention time.Duration, maxCommands int) (int, error) {
	total := 0
	for {
		n, err := s.pruneOnce(ctx, now, retention, maxCommands)
		total += n
		if err != nil {
			return total, s.wrote(fmt.Errorf("prune records: %w", err))
		}
		if n < pruneBatch {
			return total, s.wrote(nil)
		}
	}
}

func (s *Store) pruneOnce(ctx context.Context, now time.Time, retention time.Duration, maxCommands int) (int, error) {
	cutoff := int64(0) // ended_at < 0 never holds
	if retention > 0 {
		cutoff = now.Add(-retention).UnixNano()
	}
	offset := -1 // LIMIT 1 OFFSET -1 is LIMIT 1 OFFSET 0, so: keep no cap
	if maxCommands > 0 {
		offset = maxCommands - 1
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	rows, err := tx.QueryContext(ctx, `SELECT id FROM commands c
		WHERE c.ended_at > 0
		AND (c.ended_at < ?1 OR (?2 >= 0
			AND c.id < (SELECT id FROM commands ORDER BY id DESC LIMIT 1 OFFSET ?2)
			AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.command_id = c.id AND o.done_at = 0)))
		LIMIT ?3`, cutoff, offset, pruneBatch)
	if err != nil {
		return 0, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, id := range ids {
		for _, q := range []string{
			"DELETE FROM events WHERE command_id = ?",
			"DELETE FROM outbox WHERE command_id = ?",
			"DELETE FROM commands WHERE id = ?",
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return 0, err
			}
		}
	}
	return len(ids), tx.Commit()
}
