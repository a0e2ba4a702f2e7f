package main

import (
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// claim is one number handed to a worker.
type claim struct {
	JobID    int64
	UserID   int64
	Position int
	Number   string
	Attempts int // tries already recorded before this one
}

// workResult is a worker's report on one claim.
type workResult struct {
	claim
	attemptRecord
	// cancelled: the job was cancelled before the worker started on this
	// number, so it was not tried.
	cancelled bool
}

// recoverInFlight returns to pending the numbers a dead process had claimed,
// or, where their job was cancelled meanwhile, cancels them (and any left
// pending by a shutdown). It runs once at start, before any worker.
func recoverInFlight(tx *sql.Tx, now time.Time) (int64, error) {
	rows, err := tx.Query(`SELECT DISTINCT j.id FROM jobs j JOIN job_numbers n ON n.job_id = j.id
		WHERE j.status = 'cancelled' AND n.status IN ('processing', 'pending')`)
	if err != nil {
		return 0, fmt.Errorf("recover in-flight numbers: %w", err)
	}
	var cancelledJobs []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("recover in-flight numbers: %w", err)
		}
		cancelledJobs = append(cancelledJobs, id)
	}
	rows.Close()
	for _, id := range cancelledJobs {
		res, err := tx.Exec(`UPDATE job_numbers SET status = 'cancelled', message = ?, status_code = NULL, completed_at = ?
			WHERE job_id = ? AND status IN ('processing', 'pending')`, msgCancelled, ms(now), id)
		if err != nil {
			return 0, fmt.Errorf("cancel in-flight numbers: %w", err)
		}
		n, _ := res.RowsAffected()
		if _, err := tx.Exec(jobCountsSQL, 0, 0, n, ms(now), id); err != nil {
			return 0, fmt.Errorf("cancel in-flight numbers: %w", err)
		}
	}
	res, err := tx.Exec("UPDATE job_numbers SET status = 'pending' WHERE status = 'processing'")
	if err != nil {
		return 0, fmt.Errorf("recover in-flight numbers: %w", err)
	}
	return res.RowsAffected()
}

// claimSQL marks up to ?3 due pending numbers of job ?2 as processing.
const claimSQL = `UPDATE job_numbers SET status = 'processing', started_at = coalesce(started_at, ?1)
	WHERE job_id = ?2 AND position IN (
		SELECT position FROM job_numbers
		WHERE job_id = ?2 AND status = 'pending' AND next_attempt_at <= ?1
		ORDER BY position LIMIT ?3)
	RETURNING position, number, attempts`

// claimNumbers claims up to limit due numbers, taking at most a fair share
// from each active job in turn, starting after job id `after` so that no
// job is always served last. It returns the claims in job then input order
// and the id of the last job it served.
func claimNumbers(tx *sql.Tx, now time.Time, limit, minPerJob int, after int64) ([]claim, int64, error) {
	type activeJob struct{ id, userID int64 }
	rows, err := tx.Query("SELECT id, user_id FROM jobs WHERE status IN ('pending', 'processing') ORDER BY id")
	if err != nil {
		return nil, after, fmt.Errorf("list active jobs: %w", err)
	}
	var jobs []activeJob
	for rows.Next() {
		var j activeJob
		if err := rows.Scan(&j.id, &j.userID); err != nil {
			rows.Close()
			return nil, after, fmt.Errorf("list active jobs: %w", err)
		}
		jobs = append(jobs, j)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("list active jobs: %w", err)
	}
	if len(jobs) == 0 {
		return nil, after, nil
	}
	// Rotate so the job after the last one served comes first.
	start, _ := slices.BinarySearchFunc(jobs, after+1, func(j activeJob, id int64) int { return int(j.id - id) })
	jobs = append(jobs[start:], jobs[:start]...)
	share := max(minPerJob, limit/len(jobs))

	stmt, err := tx.Prepare(claimSQL)
	if err != nil {
		return nil, after, fmt.Errorf("claim: %w", err)
	}
	defer stmt.Close()
	var claims []claim
	last := after
	for _, j := range jobs {
		if len(claims) >= limit {
			break
		}
		got, err := claimFromJob(tx, stmt, now, j.id, j.userID, min(share, limit-len(claims)))
		if err != nil {
			return nil, after, err
		}
		claims = append(claims, got...)
		last = j.id
	}
	return claims, last, nil
}

// claimFromJob claims up to n numbers of one job and marks the job started.
func claimFromJob(tx *sql.Tx, stmt *sql.Stmt, now time.Time, jobID, userID int64, n int) ([]claim, error) {
	rows, err := stmt.Query(ms(now), jobID, n)
	if err != nil {
		return nil, fmt.Errorf("claim from job %d: %w", jobID, err)
	}
	var got []claim
	for rows.Next() {
		c := claim{JobID: jobID, UserID: userID}
		if err := rows.Scan(&c.Position, &c.Number, &c.Attempts); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim from job %d: %w", jobID, err)
		}
		got = append(got, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim from job %d: %w", jobID, err)
	}
	if len(got) == 0 {
		return nil, nil
	}
	slices.SortFunc(got, func(a, b claim) int { return a.Position - b.Position })
	if _, err := tx.Exec("UPDATE jobs SET status = 'processing', started_at = ? WHERE id = ? AND status = 'pending'",
		ms(now), jobID); err != nil {
		return nil, fmt.Errorf("start job %d: %w", jobID, err)
	}
	return got, nil
}

// nextDue returns when the earliest pending number waiting for a retry
// falls due, or the zero time when none waits.
func nextDue(tx *sql.Tx, now time.Time) (time.Time, error) {
	var at sql.NullInt64
	err := tx.QueryRow("SELECT min(next_attempt_at) FROM job_numbers WHERE status = 'pending' AND next_attempt_at > ?", ms(now)).Scan(&at)
	if err != nil {
		return time.Time{}, fmt.Errorf("next due: %w", err)
	}
	return fromMs(at), nil
}

// jobCountsSQL adds successes (?1), failures (?2) and cancellations (?3)
// to job ?5 and, once every number is final, completes it at ?4 (a
// cancelled job stays cancelled) and makes its webhook due. It returns
// whether every number is final.
const jobCountsSQL = `UPDATE jobs SET
	success_count = success_count + ?1, failure_count = failure_count + ?2, cancelled_count = cancelled_count + ?3,
	status = CASE WHEN status = 'processing' AND success_count + failure_count + cancelled_count + ?1 + ?2 + ?3 >= total
		THEN 'completed' ELSE status END,
	completed_at = CASE WHEN status = 'processing' AND success_count + failure_count + cancelled_count + ?1 + ?2 + ?3 >= total
		THEN ?4 ELSE completed_at END,
	webhook_state = CASE WHEN success_count + failure_count + cancelled_count + ?1 + ?2 + ?3 >= total
		AND webhook_state = 'waiting' THEN 'pending' ELSE webhook_state END,
	webhook_next_at = CASE WHEN success_count + failure_count + cancelled_count + ?1 + ?2 + ?3 >= total
		AND webhook_state = 'waiting' THEN ?4 ELSE webhook_next_at END
	WHERE id = ?5 RETURNING success_count + failure_count + cancelled_count >= total, status`

// recordOutcome is what recordResults learned while writing.
type recordOutcome struct {
	completedJobs []int64         // jobs whose every number is now final
	jobsCompleted int             // of those, how many ended as 'completed'
	retries       int             // numbers put back to wait for another try
	finals        map[Outcome]int // final outcomes (status, code), for metrics
}

// recordResults writes a batch of worker results: an attempt row each, the
// number's new state (final, or pending again with its next try), inventory
// activations, and per job the counts and, when its last number became
// final, its completion and its webhook falling due.
func recordResults(tx *sql.Tx, results []workResult, policy retryPolicy, now time.Time) (recordOutcome, error) {
	out := recordOutcome{finals: map[Outcome]int{}}
	attemptStmt, err := tx.Prepare(`INSERT INTO attempts (job_id, position, attempt, started_at, finished_at, status_code, message)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return out, fmt.Errorf("record results: %w", err)
	}
	defer attemptStmt.Close()
	finalStmt, err := tx.Prepare(`UPDATE job_numbers SET status = ?, message = ?, status_code = ?,
		requires_identity_update = ?, needs_registration = ?, attempts = ?, completed_at = ?
		WHERE job_id = ? AND position = ? AND status = 'processing'`)
	if err != nil {
		return out, fmt.Errorf("record results: %w", err)
	}
	defer finalStmt.Close()
	retryStmt, err := tx.Prepare(`UPDATE job_numbers SET status = 'pending', attempts = ?, next_attempt_at = ?
		WHERE job_id = ? AND position = ? AND status = 'processing'`)
	if err != nil {
		return out, fmt.Errorf("record results: %w", err)
	}
	defer retryStmt.Close()

	type counts struct{ success, failure, cancelled int }
	perJob := map[int64]*counts{}
	var jobOrder []int64
	count := func(jobID int64) *counts {
		c := perJob[jobID]
		if c == nil {
			c = &counts{}
			perJob[jobID] = c
			jobOrder = append(jobOrder, jobID)
		}
		return c
	}
	cancelStmt, err := tx.Prepare(`UPDATE job_numbers SET status = 'cancelled', message = ?, status_code = NULL, completed_at = ?
		WHERE job_id = ? AND position = ? AND status = 'processing'`)
	if err != nil {
		return out, fmt.Errorf("record results: %w", err)
	}
	defer cancelStmt.Close()
	for _, r := range results {
		if r.cancelled {
			res, err := cancelStmt.Exec(msgCancelled, ms(now), r.JobID, r.Position)
			if err != nil {
				return out, fmt.Errorf("record cancellation: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				count(r.JobID).cancelled++
			}
			continue
		}
		o := r.Outcome
		attempt := r.Attempts + 1
		if _, err := attemptStmt.Exec(r.JobID, r.Position, attempt, ms(r.Started), ms(r.Finished), o.StatusCode, o.Message); err != nil {
			return out, fmt.Errorf("record attempt: %w", err)
		}
		if wait, again := policy.next(attempt, o); again {
			if _, err := retryStmt.Exec(attempt, ms(now.Add(wait)), r.JobID, r.Position); err != nil {
				return out, fmt.Errorf("schedule retry: %w", err)
			}
			out.retries++
			continue
		}
		res, err := finalStmt.Exec(o.status(), o.Message, o.StatusCode, boolInt(o.RequiresIdentityUpdate),
			boolInt(o.NeedsRegistration), attempt, ms(r.Finished), r.JobID, r.Position)
		if err != nil {
			return out, fmt.Errorf("record result: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // no longer processing (cancelled meanwhile): nothing to count
		}
		if o.Activate {
			if err := activateInventory(tx, r.UserID, r.Number); err != nil {
				return out, fmt.Errorf("activate %s: %w", r.Number, err)
			}
		}
		out.finals[Outcome{Success: o.Success, StatusCode: o.StatusCode}]++
		c := count(r.JobID)
		if o.Success {
			c.success++
		} else {
			c.failure++
		}
	}
	for _, id := range jobOrder {
		c := perJob[id]
		var done bool
		var status string
		err := tx.QueryRow(jobCountsSQL, c.success, c.failure, c.cancelled, ms(now), id).Scan(&done, &status)
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
	return out, nil
}
