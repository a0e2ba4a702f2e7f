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
// NULL for none). As a transaction of a statement each, a synchronous
// request took half a dozen round trips, BEGIN and COMMIT among them; on a
// few cores those, not the rows, were what its latency queued behind. (The
// foreign keys of the numbers and attempts are checked at the end of the
// statement, when the job row is there.) The arrays are read as jsonb: each
// ->> on a json value parses its text again, ten times a number, and that
// parsing was 8% of PostgreSQL's CPU under synchronous load.
//
// The rows to activate are locked first (locked): a row another
// transaction is changing is waited for, and its new version read. If any
// is no longer released (another restore made it active first, or an
// operator changed or removed it), the statement writes nothing and
// returns those rows as they are now (lost, as [number, state,
// requires_identity_update, needs_registration], null for a row gone), so
// that their numbers are decided again and the statement run again
// without them. Otherwise it returns the job's id and an empty list.
const insertCompletedJobPGSQL = `WITH locked AS (
		SELECT number, state, requires_identity_update AS riu, needs_registration AS nr FROM inventory
		WHERE user_id = $2 AND number = ANY(ARRAY(SELECT jsonb_array_elements_text($15::jsonb)))
		FOR NO KEY UPDATE),
	lost AS (
		SELECT a.number, l.state, l.riu, l.nr FROM jsonb_array_elements_text($15::jsonb) AS a(number)
		LEFT JOIN locked AS l USING (number) WHERE l.state IS DISTINCT FROM 'released'),
	job AS (
		INSERT INTO jobs (uuid, user_id, status, total, success_count, failure_count,
			webhook_url, created_at, started_at, completed_at, webhook_state, webhook_next_at, retry_of)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $16 WHERE NOT EXISTS (SELECT FROM lost) RETURNING id),
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
			AND number = ANY(ARRAY(SELECT number FROM locked)) AND NOT EXISTS (SELECT FROM lost)),
	idempotency AS (
		UPDATE idempotency_keys SET job_id = job.id FROM job WHERE user_id = $2 AND key = $17)
	SELECT (SELECT id FROM job),
		(SELECT coalesce(jsonb_agg(jsonb_build_array(number, state, riu, nr)), '[]') FROM lost)`

// insertCompletedJobPG runs insertCompletedJobPGSQL for j and its numbers
// on db, and sets j.ID. A number whose activation was lost is decided
// again by its row as the statement returned it, and the statement run
// again: each run activates fewer, so it ends.
func (s *Store) insertCompletedJobPG(ctx context.Context, db *sql.DB, j *Job, numbers []completedNumber, webhookDue time.Time, idemKey string) error {
	for {
		lost, err := s.tryInsertCompletedJobPG(ctx, db, j, numbers, webhookDue, idemKey)
		if err != nil || len(lost) == 0 {
			return err
		}
		settleLostActivations(numbers, lost)
	}
}

// tryInsertCompletedJobPG is one run of insertCompletedJobPGSQL: it
// returns the activations lost, with their new outcomes, if it wrote
// nothing, else sets j.ID.
func (s *Store) tryInsertCompletedJobPG(ctx context.Context, db *sql.DB, j *Job, numbers []completedNumber, webhookDue time.Time, idemKey string) ([]lostActivationResult, error) {
	j.setCompletedTotals(numbers)
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
		return nil, err
	}
	attemptsJSON, err := json.Marshal(attempts)
	if err != nil {
		return nil, err
	}
	args := append(jobRowArgs(j, webhookDue), string(numbersJSON), string(attemptsJSON), jsonList(activate),
		nullString(j.RetryOf), nullString(idemKey))
	var id sql.NullInt64
	var lostJSON []byte
	if err := db.QueryRowContext(ctx, insertCompletedJobPGSQL, args...).Scan(&id, &lostJSON); err != nil {
		return nil, fmt.Errorf("insert job: %w", err)
	}
	if id.Valid {
		j.ID = id.Int64
		return nil, nil
	}
	return decodeLostActivations(lostJSON, completedActivations(j.UserID, numbers))
}

// decodeLostActivations turns insertCompletedJobPGSQL's lost rows into the
// activations of acts they concern, each with the outcome its row gives.
func decodeLostActivations(lostJSON []byte, acts []activation) ([]lostActivationResult, error) {
	var rows [][]any
	if err := json.Unmarshal(lostJSON, &rows); err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("insert job: no job written and no activation lost (%s): %v", lostJSON, err)
	}
	byNumber := make(map[string]activation, len(acts))
	for _, a := range acts {
		byNumber[a.number] = a
	}
	lost := make([]lostActivationResult, 0, len(rows))
	for _, r := range rows {
		number, _ := r[0].(string)
		a, ok := byNumber[number]
		if !ok || len(r) != 4 {
			return nil, fmt.Errorf("insert job: lost activation of %q, which the job does not activate", number)
		}
		state, found := r[1].(string)
		riu, _ := r[2].(float64)
		nr, _ := r[3].(float64)
		row := inventoryRecord{state: state, riu: riu != 0, nr: nr != 0}
		lost = append(lost, lostActivationResult{activation: a, outcome: lostActivation(row, found)})
	}
	return lost, nil
}
