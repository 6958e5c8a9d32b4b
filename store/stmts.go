package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// stmts are the writer's statements for a command's hot path, prepared once
// at Open: SQLite's parser costs more than its work for these small
// statements (about 40% of a command's CPU in BenchmarkCommand).
// Transactions use them through tx.StmtContext, which reuses the prepared
// statement on the one writer connection.
type stmts struct {
	byKey, insert, finish, outbox, eventTotals, appendEvent *sql.Stmt
}

// prepare prepares every statement of stmts on db.
func prepare(ctx context.Context, db *sql.DB) (*stmts, error) {
	st := &stmts{}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.byKey, "SELECT " + recordColumns + " FROM commands WHERE idem_key = ?"},
		{&st.insert, `INSERT INTO commands (id, state, created_at, started_at, prompt_len,
			session_id, idem_key, body_hash, machine) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(idem_key) WHERE idem_key IS NOT NULL DO NOTHING`},
		{&st.finish, `UPDATE commands SET state = ?1, status = ?2, answer = ?3,
			ended_at = ?4, wh_state = ?5,
			session_id = CASE WHEN ?6 = '' THEN session_id ELSE ?6 END,
			started_at = CASE WHEN ?8 = 0 THEN started_at ELSE ?8 END,
			warm = ?9, cost_usd = ?10
			WHERE id = ?7 AND state IN ('running', 'queued')`},
		{&st.outbox, `INSERT INTO outbox (command_id, payload, created_at, next_at)
			VALUES (?1, ?2, ?3, ?3)`},
		{&st.eventTotals, `SELECT COALESCE(MAX(seq), 0), COALESCE(SUM(length(data)), 0)
			FROM events WHERE command_id = ?`},
		{&st.appendEvent, `INSERT INTO events (command_id, seq, type, data)
			SELECT ?1, ?2, ?3, ?4 WHERE EXISTS
			(SELECT 1 FROM commands WHERE id = ?1 AND state = 'running')`},
	} {
		s, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			st.close()
			return nil, fmt.Errorf("prepare statements: %w", err)
		}
		*p.dst = s
	}
	return st, nil
}

// close closes the statements prepared so far.
func (st *stmts) close() error {
	if st == nil {
		return nil
	}
	var errs []error
	for _, s := range []*sql.Stmt{st.byKey, st.insert, st.finish, st.outbox, st.eventTotals, st.appendEvent} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}
