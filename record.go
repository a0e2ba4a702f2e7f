package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Per-row statements of recordResults (retries and cancellations, which
// are rare), prepared when first needed in a batch. Final results are written by group
// (see outcomeGroup); UPDATE ... FROM json_each with a row of values per
// number measured slower, as SQLite materialises the join and extracts
// every column from JSON (see BENCHMARKS.md).
const (
	insertAttemptSQL = `INSERT INTO attempts (job_id, position, attempt, started_at, finished_at, status_code, message)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	retryResultSQL = `UPDATE job_numbers SET attempts = ?, next_attempt_at = ?, started_at = coalesce(started_at, ?)
		WHERE job_id = ? AND position = ? AND status = 'pending'`
	cancelClaimSQL = `UPDATE job_numbers SET status = 'cancelled', message = ?, status_code = NULL, completed_at = ?
		WHERE job_id = ? AND position = ? AND status = 'pending'`
	// activateManySQL activates a user's numbers given as a JSON array.
	activateManySQL = `UPDATE inventory SET state = 'active'
		WHERE user_id = ?1 AND state = 'released' AND number IN (SELECT value FROM json_each(?2))`
)

// txStmts prepares the per-row statements of one recordResults call the
// first time each is needed: most batches have no retry and no
// cancellation, and should not parse their statements.
type txStmts struct {
	tx *sql.Tx
	m  map[string]*sql.Stmt
}

// exec runs query with args, preparing it once per transaction.
func (t *txStmts) exec(query string, args ...any) (sql.Result, error) {
	s, ok := t.m[query]
	if !ok {
		var err error
		if s, err = t.tx.Prepare(query); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		t.m[query] = s
	}
	return s.Exec(args...)
}

// close releases the statements prepared.
func (t *txStmts) close() {
	for _, s := range t.m {
		s.Close()
	}
}

// jobTally is what a batch adds to one job.
type jobTally struct {
	success, failure, cancelled int
	firstStart                  time.Time
}

// outcomeGroup is a set of results that write the same values but for
// their position: a worker's batch restored together shares its times and,
// mostly, its outcome. One statement writes a whole group, which costs far
// less than a statement per number.
type outcomeGroup struct {
	job, user         int64
	attempt           int
	started, finished int64
	status, message   string
	code              int
	riu, nr, activate bool
}

// Grouped statements of recordResults; ?1 and ?2 are the job and a JSON
// array of positions.
const (
	insertAttemptGroupSQL = `INSERT INTO attempts (job_id, position, attempt, started_at, finished_at, status_code, message)
		SELECT ?1, value, ?3, ?4, ?5, ?6, ?7 FROM json_each(?2)`
	finalGroupSQL = `UPDATE job_numbers SET status = ?3, message = ?4, status_code = ?5,
		requires_identity_update = ?6, needs_registration = ?7, attempts = ?8,
		started_at = coalesce(started_at, ?9), completed_at = ?10
		WHERE job_id = ?1 AND status = 'pending' AND position IN (SELECT value FROM json_each(?2))
		RETURNING number`
)

// recordResults writes a batch of worker results: an attempt row each, the
// number's new state (final, or pending with its next try), inventory
// activations, and per job the counts and, when its last number became
// final, its completion and its webhook falling due.
func recordResults(tx *sql.Tx, results []workResult, policy retryPolicy, now time.Time) (recordOutcome, error) {
	out := recordOutcome{finals: map[Outcome]int{}}
	st := &txStmts{tx: tx, m: map[string]*sql.Stmt{}}
	defer st.close()
	tally := map[int64]*jobTally{}
	var jobOrder []int64
	groups := map[outcomeGroup][]int{}
	var groupOrder []outcomeGroup
	for _, r := range results {
		t := tally[r.JobID]
		if t == nil {
			t = &jobTally{}
			tally[r.JobID] = t
			jobOrder = append(jobOrder, r.JobID)
		}
		if r.cancelled {
			if err := recordCancelled(st, r, now, t); err != nil {
				return out, err
			}
			continue
		}
		if t.firstStart.IsZero() || r.Started.Before(t.firstStart) {
			t.firstStart = r.Started
		}
		o, attempt := r.Outcome, r.Attempts+1
		if wait, again := policy.next(attempt, o); again {
			if err := recordRetry(st, r, attempt, now.Add(wait), &out); err != nil {
				return out, err
			}
			continue
		}
		g := outcomeGroup{job: r.JobID, user: r.UserID, attempt: attempt, started: ms(r.Started), finished: ms(r.Finished),
			status: o.status(), message: o.Message, code: o.StatusCode,
			riu: o.RequiresIdentityUpdate, nr: o.NeedsRegistration, activate: o.Activate}
		if _, seen := groups[g]; !seen {
			groupOrder = append(groupOrder, g)
		}
		groups[g] = append(groups[g], r.Position)
	}
	activate := map[int64][]string{} // user -> numbers restored from released
	for _, g := range groupOrder {
		numbers, err := recordGroup(tx, g, groups[g])
		if err != nil {
			return out, err
		}
		out.finals[Outcome{Success: g.status == "success", StatusCode: g.code}] += len(numbers)
		if g.status == "success" {
			tally[g.job].success += len(numbers)
		} else {
			tally[g.job].failure += len(numbers)
		}
		if g.activate {
			activate[g.user] = append(activate[g.user], numbers...)
		}
	}
	for userID, numbers := range activate {
		list, _ := json.Marshal(numbers)
		if _, err := tx.Exec(activateManySQL, userID, string(list)); err != nil {
			return out, fmt.Errorf("activate inventory: %w", err)
		}
	}
	for _, id := range jobOrder {
		t := tally[id]
		var done bool
		var status string
		err := tx.QueryRow(jobCountsSQL, t.success, t.failure, t.cancelled, ms(now), id, nullTime(t.firstStart)).Scan(&done, &status)
		if err != nil {
			return out, fmt.Errorf("update job %d counts: %w", id, err)
		}
		if done {
			out.completedJobs = append(out.completedJobs, id)
			if status == "completed" {
				out.jobsCompleted++
			}
		}
	}
	slices.SortFunc(out.retries, func(a, b claim) int { return a.DueAt.Compare(b.DueAt) })
	return out, nil
}

// recordGroup writes the attempt rows and final states of one group and
// returns the numbers it finalised (those cancelled meanwhile are left as
// they are).
func recordGroup(tx *sql.Tx, g outcomeGroup, positions []int) ([]string, error) {
	list, err := json.Marshal(positions)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(insertAttemptGroupSQL, g.job, string(list), g.attempt, g.started, g.finished, g.code, g.message); err != nil {
		return nil, fmt.Errorf("record attempts: %w", err)
	}
	rows, err := tx.Query(finalGroupSQL, g.job, string(list), g.status, g.message, g.code,
		boolInt(g.riu), boolInt(g.nr), g.attempt, g.started, g.finished)
	if err != nil {
		return nil, fmt.Errorf("record results: %w", err)
	}
	defer rows.Close()
	var numbers []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("record results: %w", err)
		}
		numbers = append(numbers, n)
	}
	return numbers, rows.Err()
}

// recordCancelled marks a claim skipped because its job was cancelled,
// counting it unless the cancellation had already marked it.
func recordCancelled(st *txStmts, r workResult, now time.Time, t *jobTally) error {
	res, err := st.exec(cancelClaimSQL, msgCancelled, ms(now), r.JobID, r.Position)
	if err != nil {
		return fmt.Errorf("record cancellation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		t.cancelled++
	}
	return nil
}

// recordRetry writes a transient failure's attempt and when the number is
// due again, and queues it for the dispatcher.
func recordRetry(st *txStmts, r workResult, attempt int, due time.Time, out *recordOutcome) error {
	o := r.Outcome
	if _, err := st.exec(insertAttemptSQL, r.JobID, r.Position, attempt, ms(r.Started), ms(r.Finished), o.StatusCode, o.Message); err != nil {
		return fmt.Errorf("record attempt: %w", err)
	}
	if _, err := st.exec(retryResultSQL, attempt, ms(due), ms(r.Started), r.JobID, r.Position); err != nil {
		return fmt.Errorf("schedule retry: %w", err)
	}
	retry := r.claim
	retry.Attempts, retry.DueAt = attempt, due
	out.retries = append(out.retries, retry)
	return nil
}
