package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// settleJobSQL is the one rule for how a job moves on, used by everything
// that changes a queued job's numbers (results, cancellations; a
// synchronous job is inserted as it would leave it, see
// storeCompletedJob): it adds successes (?1), failures (?2) and cancellations
// (?3) to job ?5; cancels it when ?7 is set; else marks it processing
// from ?6 (its first attempt) when it was pending, and completes it at ?4
// once every number is final. Once every number is final, whether
// completed or cancelled, its webhook falls due at ?8. It returns whether
// every number is final, and the job's status. (RETURNING may not name t,
// the FROM table, so it says "final" again on the new counts.)
const settleJobSQL = `UPDATE jobs SET
	success_count = success_count + ?1, failure_count = failure_count + ?2, cancelled_count = cancelled_count + ?3,
	status = CASE
		WHEN ?7 AND status IN ('pending', 'processing') THEN 'cancelled'
		WHEN status IN ('pending', 'processing') AND t.final THEN 'completed'
		WHEN status = 'pending' THEN 'processing'
		ELSE status END,
	started_at = coalesce(started_at, ?6),
	completed_at = CASE WHEN status IN ('pending', 'processing') AND (?7 OR t.final) THEN ?4 ELSE completed_at END,
	webhook_state = CASE WHEN t.final AND webhook_state = 'waiting' THEN 'pending' ELSE webhook_state END,
	webhook_next_at = CASE WHEN t.final AND webhook_state = 'waiting' THEN ?8 ELSE webhook_next_at END
	FROM (SELECT success_count + failure_count + cancelled_count + ?1 + ?2 + ?3 >= total AS final
		FROM jobs WHERE id = ?5) AS t
	WHERE id = ?5 RETURNING success_count + failure_count + cancelled_count >= total, status`

// settleJobPG is settleJobSQL for PostgreSQL, where another transaction
// may change the job between a subquery's snapshot and the row's lock: the
// rule reads the counts of the locked row itself (SET sees the row as it
// is before this update), so two instances recording results of one job
// never lose a count.
var _ = pgText(settleJobSQL, `UPDATE jobs SET
	success_count = success_count + $1, failure_count = failure_count + $2, cancelled_count = cancelled_count + $3,
	status = CASE
		WHEN $7 AND status IN ('pending', 'processing') THEN 'cancelled'
		WHEN status IN ('pending', 'processing') AND success_count + failure_count + cancelled_count + $1 + $2 + $3 >= total
			THEN 'completed'
		WHEN status = 'pending' THEN 'processing'
		ELSE status END,
	started_at = coalesce(started_at, $6),
	completed_at = CASE WHEN status IN ('pending', 'processing')
		AND ($7 OR success_count + failure_count + cancelled_count + $1 + $2 + $3 >= total) THEN $4 ELSE completed_at END,
	webhook_state = CASE WHEN success_count + failure_count + cancelled_count + $1 + $2 + $3 >= total
		AND webhook_state = 'waiting' THEN 'pending' ELSE webhook_state END,
	webhook_next_at = CASE WHEN success_count + failure_count + cancelled_count + $1 + $2 + $3 >= total
		AND webhook_state = 'waiting' THEN $8 ELSE webhook_next_at END
	WHERE id = $5 RETURNING success_count + failure_count + cancelled_count >= total, status`)

// The statements of the queue's reads and of cancellation.
const (
	cancelStatusSQL  = "SELECT status FROM jobs WHERE id = ?"
	cancelNumbersSQL = `UPDATE job_numbers SET status = 'cancelled', message = ?, status_code = NULL, completed_at = ?
		WHERE job_id = ? AND status = 'pending' AND position NOT IN (SELECT value FROM json_each(?))`
	unsettledCancelledSQL = `SELECT id FROM jobs INDEXED BY jobs_cancel_unsettled
		WHERE status = 'cancelled' AND total > success_count + failure_count + cancelled_count`
	cancelLeftSQL = `UPDATE job_numbers SET status = 'cancelled', message = ?, status_code = NULL, completed_at = ?
			WHERE job_id = ? AND status = 'pending'`
	markStartedSQL = `UPDATE jobs SET status = 'processing', started_at = coalesce(started_at, ?)
		WHERE id IN (SELECT value FROM json_each(?)) AND status = 'pending'`
	jobStatusesSQL  = "SELECT id, status FROM jobs WHERE id IN (SELECT value FROM json_each(?))"
	activeJobsSQL   = "SELECT id, user_id FROM jobs WHERE status IN ('pending', 'processing') ORDER BY id"
	pendingAfterSQL = `SELECT position, number, attempts, next_attempt_at FROM job_numbers
		WHERE job_id = ? AND status = 'pending' AND position > ? ORDER BY position LIMIT ?`
	queuedNumbersSQL = `SELECT coalesce(sum(total - success_count - failure_count - cancelled_count), 0)
		FROM jobs WHERE status IN ('pending', 'processing')`
)

// pgProcessing is, in PostgreSQL, a pending number some instance is
// restoring: claimed under a live lease and not waiting for a retry. Every
// other pending number may be cancelled at once.
const pgProcessing = `(lease_until >= bulkrestore_now_ms() AND next_attempt_at <= bulkrestore_now_ms())`

// pgOthersProcessing is a pending number another live instance holds for
// its workers (pgProcessing, claimed by someone else). A read shows it as
// processing; this instance's own claims it leaves pending, for its
// registry to say which of them a worker has started (app.currentResult).
const pgOthersProcessing = `(claimed_by <> ` + pgMe + ` AND ` + pgProcessing + `)`

// The queue's statements in PostgreSQL. A cancellation, and the sweep of
// cancelled jobs that still have numbers, lock the job row first (as every
// write of a job's numbers does, in the order of the job ids); it cancels this instance's numbers that no worker has started, as
// on SQLite, and leaves those another live instance holds to that
// instance, which records them when restored or cancels them when its
// workers learn of the cancellation. Several jobs are locked in id order,
// so two instances never wait for each other in a circle.
var (
	_ = pgText(cancelStatusSQL, "SELECT status FROM jobs WHERE id = $1 FOR UPDATE")
	_ = pgText(cancelNumbersSQL, `UPDATE job_numbers SET status = 'cancelled', message = $1, status_code = NULL,
		completed_at = $2, claimed_by = NULL, lease_until = NULL
		WHERE job_id = $3 AND status = 'pending' AND position <> ALL(ARRAY(SELECT json_array_elements_text($4::json)::int))
		AND NOT coalesce(claimed_by <> `+pgMe+` AND `+pgProcessing+`, false)`)
	_ = pgText(unsettledCancelledSQL, `SELECT id FROM jobs
		WHERE status = 'cancelled' AND total > success_count + failure_count + cancelled_count ORDER BY id FOR UPDATE`)
	_ = pgText(cancelLeftSQL, `UPDATE job_numbers SET status = 'cancelled', message = $1, status_code = NULL,
		completed_at = $2, claimed_by = NULL, lease_until = NULL
		WHERE job_id = $3 AND status = 'pending' AND NOT coalesce(`+pgProcessing+`, false)`)
	_ = pgText(markStartedSQL, `UPDATE jobs SET status = 'processing', started_at = coalesce(started_at, $1)
		WHERE id IN (SELECT id FROM jobs WHERE id = ANY(ARRAY(SELECT json_array_elements_text($2::json)::bigint))
			AND status = 'pending' ORDER BY id FOR UPDATE) AND status = 'pending'`)
	_ = pgText(jobStatusesSQL, "SELECT id, status FROM jobs WHERE id = ANY(ARRAY(SELECT json_array_elements_text($1::json)::bigint))")
)

// jobSettlement is what a write adds to one job.
type jobSettlement struct {
	success, failure, cancelled int
	cancel                      bool      // the job is being cancelled
	firstStart                  time.Time // the earliest attempt, if any
	now                         time.Time
	webhookDue                  time.Time // when the webhook falls due if the job is final now
}

// settledJob is a job's state after settleJob.
type settledJob struct {
	final  bool // every number is final
	status jobStatus
}

// settleJob applies settleJobSQL to one job.
func (s *Store) settleJob(tx *sql.Tx, jobID int64, js jobSettlement) (settledJob, error) {
	var out settledJob
	err := s.wq.queryRowTx(tx, settleJobSQL, js.success, js.failure, js.cancelled, ms(js.now), jobID,
		nullTime(js.firstStart), js.cancel, ms(js.webhookDue)).Scan(&out.final, &out.status)
	if err != nil {
		return out, fmt.Errorf("settle job %d: %w", jobID, err)
	}
	return out, nil
}

// errJobFinished is returned when cancelling a job that has already ended;
// it carries the status the job had.
type errJobFinished struct{ status jobStatus }

// Error implements error.
func (e *errJobFinished) Error() string { return "job already " + string(e.status) }

// cancelJobNumbers cancels the numbers of a job that have not started (all
// its pending numbers but those at the started positions, which are being
// restored right now and are counted as usual when they finish). The job
// becomes 'cancelled' at once; its webhook falls due when no number is in
// flight. A job that has already finished is an *errJobFinished, decided
// inside the transaction, so that of two cancellations racing, the loser
// learns the truth.
func (s *Store) cancelJobNumbers(tx *sql.Tx, jobID int64, started []int, now time.Time) (cancelled int, err error) {
	var status jobStatus
	if err := tx.QueryRow(s.q(cancelStatusSQL), jobID).Scan(&status); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, errNotFound
		}
		return 0, fmt.Errorf("cancel job: %w", err)
	}
	if !status.active() {
		return 0, &errJobFinished{status: status}
	}
	cancelled, err = execCount(tx, s.q(cancelNumbersSQL), msgCancelled, ms(now), jobID, jsonList(append([]int{}, started...)))
	if err != nil {
		return 0, fmt.Errorf("cancel numbers: %w", err)
	}
	return cancelled, s.settleCancelled(tx, jobID, jobSettlement{cancelled: cancelled, cancel: true, firstStart: now, now: now, webhookDue: now})
}

// settleCancelled settles a job after a cancellation's write and, if that
// made it final, wakes the webhook senders of every instance: its webhook
// is due.
func (s *Store) settleCancelled(tx *sql.Tx, jobID int64, js jobSettlement) error {
	settled, err := s.settleJob(tx, jobID, js)
	if err == nil && settled.final {
		err = s.notify(tx, pgWebhookChannel)
	}
	return err
}

// recoverCancelled cancels the numbers still pending in jobs that were
// cancelled while they were in flight in a process that then died. It runs
// once at start, before any worker, and reads only such jobs (an index
// holds them), however many jobs the file keeps.
func (s *Store) recoverCancelled(tx *sql.Tx, now time.Time) error {
	rows, err := tx.Query(s.q(unsettledCancelledSQL))
	if err != nil {
		return fmt.Errorf("recover cancelled jobs: %w", err)
	}
	ids, err := scanColumn[int64](rows)
	if err != nil {
		return fmt.Errorf("recover cancelled jobs: %w", err)
	}
	for _, id := range ids {
		n, err := execCount(tx, s.q(cancelLeftSQL), msgCancelled, ms(now), id)
		if err != nil {
			return fmt.Errorf("recover cancelled job %d: %w", id, err)
		}
		if err := s.settleCancelled(tx, id, jobSettlement{cancelled: n, now: now, webhookDue: now}); err != nil {
			return err
		}
	}
	return nil
}

// scanColumn reads a column of values (ids, names) and closes rows.
func scanColumn[T any](rows *sql.Rows) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// markJobsStarted marks pending jobs as processing; a job that completed
// meanwhile is left alone.
func (s *Store) markJobsStarted(tx *sql.Tx, ids []int64, now time.Time) error {
	_, err := tx.Exec(s.q(markStartedSQL), ms(now), jsonList(ids))
	return err
}

// jobStatuses returns the status of each of the jobs that exists.
func (s *Store) jobStatuses(ctx context.Context, ids []int64) (map[int64]jobStatus, error) {
	rows, err := s.r.QueryContext(ctx, s.q(jobStatusesSQL), jsonList(ids))
	if err != nil {
		return nil, fmt.Errorf("job statuses: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]jobStatus, len(ids))
	for rows.Next() {
		var id int64
		var st jobStatus
		if err := rows.Scan(&id, &st); err != nil {
			return nil, fmt.Errorf("job statuses: %w", err)
		}
		out[id] = st
	}
	return out, rows.Err()
}

// activeJob is a job with numbers left to restore.
type activeJob struct{ id, userID int64 }

// activeJobs lists the jobs that still have numbers to restore, oldest first.
func (s *Store) activeJobs(ctx context.Context) ([]activeJob, error) {
	rows, err := s.r.QueryContext(ctx, s.q(activeJobsSQL))
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
	rows, err := s.r.QueryContext(ctx, s.q(pendingAfterSQL), job.id, after, n)
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

// queuedNumbers counts the pending numbers, for the gauge.
func (s *Store) queuedNumbers() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int64
	if err := s.r.QueryRowContext(ctx, s.q(queuedNumbersSQL)).Scan(&n); err != nil {
		return -1
	}
	return float64(n)
}
