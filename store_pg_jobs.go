package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// insertCompletedJobPGSQL is storeCompletedJob's write on PostgreSQL, one
// statement that commits by itself: the job row ($1 to $12 as in
// insertJobSQL, and retry_of $16), its numbers ($13), every attempt of the
// numbers tried more than once ($14; see number_attempts), the inventory
// it activates ($15, as activateManySQL) and its Idempotency-Key ($17,
// NULL for none). As a
// transaction of a statement each, a synchronous request took half a dozen
// round trips, BEGIN and COMMIT among them; on a few cores those, not the
// rows, were what its latency queued behind. (The foreign keys of the
// numbers and attempts are checked at the end of the statement, when the
// job row is there.) The arrays are read as jsonb: each ->> on a json
// value parses its text again, ten times a number, and that parsing was
// 8% of PostgreSQL's CPU under synchronous load.
const insertCompletedJobPGSQL = `WITH job AS (
		INSERT INTO jobs (uuid, user_id, status, total, success_count, failure_count,
			webhook_url, created_at, started_at, completed_at, webhook_state, webhook_next_at, retry_of)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $16) RETURNING id),
	numbers AS (
		INSERT INTO job_numbers (job_id, position, number, status, message, status_code,
			requires_identity_update, needs_registration, attempts, started_at, completed_at)
		SELECT job.id, (n->>0)::int, n->>1, n->>2, n->>3, (n->>4)::int, (n->>5)::int, (n->>6)::int, (n->>7)::int,
			(n->>8)::bigint, (n->>9)::bigint
		FROM job, jsonb_array_elements($13::jsonb) AS n),
	attempts AS (
		INSERT INTO attempts (job_id, position, attempt, started_at, finished_at, status_code, message)
		SELECT job.id, (a->>0)::int, (a->>1)::int, (a->>2)::bigint, (a->>3)::bigint, (a->>4)::int, a->>5
		FROM job, jsonb_array_elements($14::jsonb) AS a),
	activated AS (
		UPDATE inventory SET state = 'active' WHERE user_id = $2 AND state = 'released'
			AND number = ANY(ARRAY(SELECT json_array_elements_text($15::json)))),
	idempotency AS (
		UPDATE idempotency_keys SET job_id = job.id FROM job WHERE user_id = $2 AND key = $17)
	SELECT id FROM job`

// insertCompletedJobPG runs insertCompletedJobPGSQL for j and its numbers
// on db, and sets j.ID.
func (s *Store) insertCompletedJobPG(ctx context.Context, db *sql.DB, j *Job, numbers []completedNumber, webhookDue time.Time, idemKey string) error {
	rows := make([][]any, len(numbers))
	attempts, activate := [][]any{}, []string{} // JSON [], not null
	for pos, n := range numbers {
		o, first, last := n.outcome(), n.Attempts[0], n.Attempts[len(n.Attempts)-1]
		rows[pos] = []any{pos, n.Number, o.status(), o.Message, o.StatusCode, boolInt(o.RequiresIdentityUpdate),
			boolInt(o.NeedsRegistration), len(n.Attempts), ms(first.Started), ms(last.Finished)}
		for i, a := range n.storedAttempts() {
			attempts = append(attempts, []any{pos, i + 1, ms(a.Started), ms(a.Finished), a.Outcome.StatusCode, a.Outcome.Message})
		}
		if o.Activate {
			activate = append(activate, n.Number)
		}
	}
	numbersJSON, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	attemptsJSON, err := json.Marshal(attempts)
	if err != nil {
		return err
	}
	args := append(jobRowArgs(j, webhookDue), string(numbersJSON), string(attemptsJSON), jsonList(activate),
		nullString(j.RetryOf), nullString(idemKey))
	if err := db.QueryRowContext(ctx, insertCompletedJobPGSQL, args...).Scan(&j.ID); err != nil {
		return fmt.Errorf("insert job: %w", err)
	}
	return nil
}
