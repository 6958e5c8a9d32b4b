package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are the schema's history, oldest first: step i moves a
// database from user_version i to i+1, in one transaction with the version
// bump, so a crash leaves the database at a version it can resume from.
// Append new steps; never edit one that has shipped, since databases in
// the field have already run it.
//
// Times are Unix nanoseconds (UTC); 0 means "not yet". Ids are UUIDv7 text,
// so ORDER BY id is creation order.
//
// Every page a command's writes touch is a WAL frame written, and frames
// are most of a command's cost on disk (BenchmarkCommand): so no index
// serves only a rare query (the running records at Open, Prune's age scan
// read all rows of a table bounded by max_commands), and appending an
// event writes the events table alone (its totals are counted in memory,
// see appendEvents).
var migrations = []string{
	// 1: records and their events.
	`CREATE TABLE commands (
		id          TEXT PRIMARY KEY,
		state       TEXT    NOT NULL,
		created_at  INTEGER NOT NULL,
		started_at  INTEGER NOT NULL DEFAULT 0,
		ended_at    INTEGER NOT NULL DEFAULT 0,
		prompt_len  INTEGER NOT NULL DEFAULT 0,
		session_id  TEXT    NOT NULL DEFAULT '',
		idem_key    TEXT,
		body_hash   BLOB,
		machine     TEXT    NOT NULL DEFAULT '',
		status      INTEGER NOT NULL DEFAULT 0,
		answer      BLOB
	);
	CREATE UNIQUE INDEX commands_idem_key ON commands(idem_key) WHERE idem_key IS NOT NULL;
	CREATE TABLE events (
		command_id TEXT    NOT NULL,
		seq        INTEGER NOT NULL,
		type       TEXT    NOT NULL,
		data       BLOB    NOT NULL,
		PRIMARY KEY (command_id, seq)
	) WITHOUT ROWID;`,

	// 2: the webhook outbox, and the delivery as the record shows it.
	`ALTER TABLE commands ADD COLUMN wh_state        TEXT    NOT NULL DEFAULT '';
	ALTER TABLE commands ADD COLUMN wh_attempts     INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE commands ADD COLUMN wh_last_status  INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE commands ADD COLUMN wh_delivered_at INTEGER NOT NULL DEFAULT 0;
	CREATE TABLE outbox (
		command_id TEXT PRIMARY KEY,
		payload    BLOB    NOT NULL,
		created_at INTEGER NOT NULL,
		next_at    INTEGER NOT NULL,
		attempts   INTEGER NOT NULL DEFAULT 0,
		done_at    INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX outbox_due ON outbox(next_at) WHERE done_at = 0;`,

	// 3: whether a command's turn went to a warm agent, and what it cost
	// (the spend limit sums it).
	`ALTER TABLE commands ADD COLUMN warm     INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE commands ADD COLUMN cost_usd REAL    NOT NULL DEFAULT 0;`,

	// 4: the row Health writes and reads back to probe the store.
	`CREATE TABLE probe (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		at INTEGER NOT NULL
	);`,
}

// migrate brings db up to len(steps). A database newer than this binary
// knows is refused rather than written to: an older vmd would not know
// what the newer columns mean.
func migrate(ctx context.Context, db *sql.DB, steps []string) error {
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(steps) {
		return fmt.Errorf("schema version %d is newer than this vmd knows (%d): %w",
			version, len(steps), ErrNewerSchema)
	}
	for i := version; i < len(steps); i++ {
		if err := migrateStep(ctx, db, i, steps[i]); err != nil {
			return err
		}
	}
	return nil
}

// migrateStep runs step i and records version i+1 in one transaction.
func migrateStep(ctx context.Context, db *sql.DB, i int, step string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate to schema version %d: %w", i+1, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, step); err != nil {
		return fmt.Errorf("migrate to schema version %d: %w", i+1, err)
	}
	// PRAGMA takes no bound parameters; i is ours, not input.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
		return fmt.Errorf("migrate to schema version %d: %w", i+1, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate to schema version %d: %w", i+1, err)
	}
	return nil
}
