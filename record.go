package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Statements of recordResults, prepared once per batch. Per-row prepared
// statements measured faster here than set-based UPDATE ... FROM
// json_each, which SQLite materialises before updating (see BENCHMARKS.md).
const (
	insertAttemptSQL = `INSERT INTO attempts (job_id, position, attempt, started_at, finished_at, status_code, message)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	finalResultSQL = `UPDATE job_numbers SET status = ?, message = ?, status_code = ?,
		requires_identity_update = ?, needs_registration = ?, attempts = ?,
		started_at = coalesce(started_at, ?), completed_at = ?
		WHERE job_id = ? AND position = ? AND status = 'pending'`
	retryResultSQL = `UPDATE job_numbers SET attempts = ?, next_attempt_at = ?, started_at = coalesce(started_at, ?)
		WHERE job_id = ? AND position = ? AND status = 'pending'`
	cancelClaimSQL = `UPDATE job_numbers SET status = 'cancelled', message = ?, status_code = NULL, completed_at = ?
		WHERE job_id = ? AND position = ? AND status = 'pending'`
	// activateManySQL activates a user's numbers given as a JSON array.
	activateManySQL = `UPDATE inventory SET state = 'active'
		WHERE user_id = ?1 AND state = 'released' AND number IN (SELECT value FROM json_each(?2))`
)

// recordStatements are the prepared statements of one recordResults call.
type recordStatements struct {
	attempt, final, retry, cancel *sql.Stmt
}

// prepareRecord prepares them in tx; the returned func closes them.
func prepareRecord(tx *sql.Tx) (recordStatements, func(), error) {
	var st recordStatements
	var all []*sql.Stmt
	closeAll := func() {
		for _, s := range all {
			s.Close()
		}
	}
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{{&st.attempt, insertAttemptSQL}, {&st.final, finalResultSQL}, {&st.retry, retryResultSQL}, {&st.cancel, cancelClaimSQL}} {
		s, err := tx.Prepare(p.query)
		if err != nil {
			closeAll()
			return st, nil, fmt.Errorf("prepare: %w", err)
		}
		*p.dst = s
		all = append(all, s)
	}
	return st, closeAll, nil
}

// jobTally is what a batch adds to one job.
type jobTally struct {
	success, failure, cancelled int
	firstStart                  time.Time
}

// recordResults writes a batch of worker results: an attempt row each, the
// number's new state (final, or pending with its next try), inventory
// activations, and per job the counts and, when its last number became
// final, its completion and its webhook falling due.
func recordResults(tx *sql.Tx, results []workResult, policy retryPolicy, now time.Time) (recordOutcome, error) {
	out := recordOutcome{finals: map[Outcome]int{}}
	st, closeAll, err := prepareRecord(tx)
	if err != nil {
		return out, fmt.Errorf("record results: %w", err)
	}
	defer closeAll()
	tally := map[int64]*jobTally{}
	var jobOrder []int64
	activate := map[int64][]string{} // user -> numbers restored from released
	for _, r := range results {
		t := tally[r.JobID]
		if t == nil {
			t = &jobTally{}
			tally[r.JobID] = t
			jobOrder = append(jobOrder, r.JobID)
		}
		counted, err := recordOne(st, r, policy, now, t, &out)
		if err != nil {
			return out, err
		}
		if counted && r.Outcome.Activate {
			activate[r.UserID] = append(activate[r.UserID], r.Number)
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

// recordOne writes one result and adds it to its job's tally. It reports
// whether the result was counted as final (a number cancelled meanwhile is
// left alone).
func recordOne(st recordStatements, r workResult, policy retryPolicy, now time.Time, t *jobTally, out *recordOutcome) (bool, error) {
	if r.cancelled {
		res, err := st.cancel.Exec(msgCancelled, ms(now), r.JobID, r.Position)
		if err != nil {
			return false, fmt.Errorf("record cancellation: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			t.cancelled++
		}
		return false, nil
	}
	if t.firstStart.IsZero() || r.Started.Before(t.firstStart) {
		t.firstStart = r.Started
	}
	o, attempt := r.Outcome, r.Attempts+1
	if _, err := st.attempt.Exec(r.JobID, r.Position, attempt, ms(r.Started), ms(r.Finished), o.StatusCode, o.Message); err != nil {
		return false, fmt.Errorf("record attempt: %w", err)
	}
	if wait, again := policy.next(attempt, o); again {
		due := now.Add(wait)
		if _, err := st.retry.Exec(attempt, ms(due), ms(r.Started), r.JobID, r.Position); err != nil {
			return false, fmt.Errorf("schedule retry: %w", err)
		}
		retry := r.claim
		retry.Attempts, retry.DueAt = attempt, due
		out.retries = append(out.retries, retry)
		return false, nil
	}
	res, err := st.final.Exec(o.status(), o.Message, o.StatusCode, boolInt(o.RequiresIdentityUpdate),
		boolInt(o.NeedsRegistration), attempt, ms(r.Started), ms(r.Finished), r.JobID, r.Position)
	if err != nil {
		return false, fmt.Errorf("record result: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	out.finals[Outcome{Success: o.Success, StatusCode: o.StatusCode}]++
	if o.Success {
		t.success++
	} else {
		t.failure++
	}
	return true, nil
}
