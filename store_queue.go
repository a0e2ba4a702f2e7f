package main

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// claim is one number handed to a worker.
type claim struct {
	JobID    int64
	UserID   int64
	Position int
	Number   string
	Attempts int       // tries already recorded before this one
	DueAt    time.Time // not before this (a retry's wait)
}

// workResult is a worker's report on one claim.
type workResult struct {
	claim
	attemptRecord
	// cancelled: the job was cancelled before the worker started on this
	// number, so it was not tried.
	cancelled bool
}

// recoverCancelled cancels the numbers still pending in jobs that were
// cancelled while they were in flight in a process that then died. It runs
// once at start, before any worker.
func recoverCancelled(tx *sql.Tx, now time.Time) error {
	rows, err := tx.Query(`SELECT DISTINCT j.id FROM jobs j JOIN job_numbers n ON n.job_id = j.id
		WHERE j.status = 'cancelled' AND n.status = 'pending'`)
	if err != nil {
		return fmt.Errorf("recover cancelled jobs: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("recover cancelled jobs: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		res, err := tx.Exec(`UPDATE job_numbers SET status = 'cancelled', message = ?, status_code = NULL, completed_at = ?
			WHERE job_id = ? AND status = 'pending'`, msgCancelled, ms(now), id)
		if err != nil {
			return fmt.Errorf("recover cancelled job %d: %w", id, err)
		}
		n, _ := res.RowsAffected()
		if _, err := tx.Exec(jobCountsSQL, 0, 0, n, ms(now), id, nil); err != nil {
			return fmt.Errorf("recover cancelled job %d: %w", id, err)
		}
	}
	return nil
}

// activeJob is a job with numbers left to restore.
type activeJob struct{ id, userID int64 }

// activeJobs lists the jobs that still have numbers to restore, oldest first.
func (s *Store) activeJobs(ctx context.Context) ([]activeJob, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT id, user_id FROM jobs WHERE status IN ('pending', 'processing') ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list active jobs: %w", err)
	}
	defer rows.Close()
	var jobs []activeJob
	for rows.Next() {
		var j activeJob
		if err := rows.Scan(&j.id, &j.userID); err != nil {
			return nil, fmt.Errorf("list active jobs: %w", err)
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// pendingAfter reads up to n pending numbers of a job past position after,
// in input order. Claims are not written: the dispatcher remembers how far
// it has read each job, so nothing is handed out twice, and a process that
// dies leaves its numbers pending for the next one.
func (s *Store) pendingAfter(ctx context.Context, job activeJob, after, n int) ([]claim, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT position, number, attempts, next_attempt_at FROM job_numbers
		WHERE job_id = ? AND status = 'pending' AND position > ? ORDER BY position LIMIT ?`, job.id, after, n)
	if err != nil {
		return nil, fmt.Errorf("read pending numbers of job %d: %w", job.id, err)
	}
	defer rows.Close()
	var got []claim
	for rows.Next() {
		c := claim{JobID: job.id, UserID: job.userID}
		var due int64
		if err := rows.Scan(&c.Position, &c.Number, &c.Attempts, &due); err != nil {
			return nil, fmt.Errorf("read pending numbers of job %d: %w", job.id, err)
		}
		if due > 0 {
			c.DueAt = time.UnixMilli(due)
		}
		got = append(got, c)
	}
	return got, rows.Err()
}

// jobCountsSQL adds successes (?1), failures (?2) and cancellations (?3)
// to job ?5; marks it processing from ?6 (its first attempt) when it was
// pending; and, once every number is final, completes it at ?4 (a
// cancelled job stays cancelled) and makes its webhook due. It returns
// whether every number is final, and the job's status.
const jobCountsSQL = `UPDATE jobs SET
	success_count = success_count + ?1, failure_count = failure_count + ?2, cancelled_count = cancelled_count + ?3,
	status = CASE
		WHEN status IN ('pending', 'processing') AND success_count + failure_count + cancelled_count + ?1 + ?2 + ?3 >= total
			THEN 'completed'
		WHEN status = 'pending' THEN 'processing'
		ELSE status END,
	started_at = coalesce(started_at, ?6),
	completed_at = CASE WHEN status IN ('pending', 'processing') AND success_count + failure_count + cancelled_count + ?1 + ?2 + ?3 >= total
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
	retries       []claim         // numbers that wait for another try, with DueAt set
	finals        map[Outcome]int // final outcomes (status, code), for metrics
}
