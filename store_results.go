package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Statements of recordResults. Final results and cancellations are written
// by group (see outcomeGroup): one statement for every run of numbers that
// write the same values but for their position. UPDATE ... FROM json_each
// with a row of values per number measured slower, as SQLite materialises
// the join and extracts every column from JSON (see BENCHMARKS.md).
// Retries are rare and carry a due time of their own, so they go one row
// at a time, with statements prepared only when a batch has one.
const (
	// liveJobsSQL keeps, of the jobs given as a JSON array, those that
	// still exist (a job goes with its user).
	liveJobsSQL = `SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each(?))`
	// insertAttemptGroupSQL: ?1 job, ?2 JSON array of positions.
	insertAttemptGroupSQL = `INSERT INTO attempts (job_id, position, attempt, started_at, finished_at, status_code, message)
		SELECT ?1, value, ?3, ?4, ?5, ?6, ?7 FROM json_each(?2)`
	// finalGroupSQL: ?1 job, ?2 JSON array of positions; a number
	// cancelled meanwhile is left as it is.
	finalGroupSQL = `UPDATE job_numbers SET status = ?3, message = ?4, status_code = ?5,
		requires_identity_update = ?6, needs_registration = ?7, attempts = ?8,
		started_at = coalesce(started_at, ?9), completed_at = ?10
		WHERE job_id = ?1 AND status = 'pending' AND position IN (SELECT value FROM json_each(?2))
		RETURNING number`
	// cancelGroupSQL: ?1 job, ?2 JSON array of positions not tried because
	// the job was cancelled; those the cancellation marked already are left.
	cancelGroupSQL = `UPDATE job_numbers SET status = 'cancelled', message = ?3, status_code = NULL, completed_at = ?4
		WHERE job_id = ?1 AND status = 'pending' AND position IN (SELECT value FROM json_each(?2))`
	insertAttemptSQL = `INSERT INTO attempts (job_id, position, attempt, started_at, finished_at, status_code, message)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	retryResultSQL = `UPDATE job_numbers SET attempts = ?, next_attempt_at = ?, started_at = coalesce(started_at, ?)
		WHERE job_id = ? AND position = ? AND status = 'pending'`
)

// The recorder's statements in PostgreSQL. The job rows of a batch are
// locked first, in id order, so that two instances (or a cancellation)
// never wait for each other in a circle. A result is written only to a
// number this instance still holds (claimed_by), checked by the write
// itself, row by row: an instance whose lease ran out and whose number
// another took over writes nothing of its late result, so a number is
// never recorded twice. A final result gives its number's claim up; a
// retry keeps it (the number waits in this instance's retry queue).
var (
	_ = pgText(liveJobsSQL, "SELECT id FROM jobs WHERE id = ANY(ARRAY(SELECT json_array_elements_text($1::json)::bigint)) ORDER BY id FOR UPDATE")
	_ = pgText(insertAttemptGroupSQL, `INSERT INTO attempts (job_id, position, attempt, started_at, finished_at, status_code, message)
		SELECT $1, n.position, $3, $4, $5, $6, $7 FROM job_numbers AS n
		WHERE n.job_id = $1 AND n.position = ANY(ARRAY(SELECT json_array_elements_text($2::json)::int))
		AND n.status = 'pending' AND n.claimed_by = `+pgMe)
	_ = pgText(insertAttemptSQL, `INSERT INTO attempts (job_id, position, attempt, started_at, finished_at, status_code, message)
		SELECT $1, $2, $3, $4, $5, $6, $7 FROM job_numbers
		WHERE job_id = $1 AND position = $2 AND status = 'pending' AND claimed_by = `+pgMe)
	_ = pgText(retryResultSQL, `UPDATE job_numbers SET attempts = $1, next_attempt_at = $2, started_at = coalesce(started_at, $3)
		WHERE job_id = $4 AND position = $5 AND status = 'pending' AND claimed_by = `+pgMe)
	_ = pgText(finalGroupSQL, `UPDATE job_numbers SET status = $3, message = $4, status_code = $5,
		requires_identity_update = $6, needs_registration = $7, attempts = $8,
		started_at = coalesce(started_at, $9), completed_at = $10, claimed_by = NULL, lease_until = NULL
		WHERE job_id = $1 AND status = 'pending' AND position = ANY(ARRAY(SELECT json_array_elements_text($2::json)::int))
		AND claimed_by = `+pgMe+` RETURNING number`)
	_ = pgText(cancelGroupSQL, `UPDATE job_numbers SET status = 'cancelled', message = $3, status_code = NULL, completed_at = $4,
		claimed_by = NULL, lease_until = NULL
		WHERE job_id = $1 AND status = 'pending' AND position = ANY(ARRAY(SELECT json_array_elements_text($2::json)::int))
		AND claimed_by = `+pgMe)
)

// recordOutcome is what recordResults learned while writing.
type recordOutcome struct {
	completedJobs []int64         // jobs whose every number is now final
	jobsCompleted int             // of those, how many ended as 'completed'
	goneJobs      []int64         // jobs deleted meanwhile: their results were dropped
	retries       []claim         // numbers that wait for another try, with DueAt set
	finals        map[Outcome]int // final outcomes (status, code), for metrics
	// dropped counts the results not recorded because their number was no
	// longer pending under this process's claim: cancelled meanwhile, or,
	// on PostgreSQL, taken over by another instance once this one's lease
	// ran out.
	dropped int
}

// outcomeGroup is a set of results that write the same values but for
// their position: a worker's batch restored together shares its times and,
// mostly, its outcome.
type outcomeGroup struct {
	job, user         int64
	attempt           int
	started, finished int64
	status            numberStatus
	message           string
	code              int
	riu, nr, activate bool
}

// resultPlan is what a batch of results will write, worked out before any
// statement runs: final results by group, retries one by one, and the
// numbers skipped because their job was cancelled, by job.
type resultPlan struct {
	jobs       []int64                    // in order of first appearance
	groups     ordered[outcomeGroup, int] // positions
	retries    []claim                    // with Attempts counting this one and DueAt set
	retried    []workResult
	cancelled  map[int64][]int
	firstStart map[int64]time.Time // per job, the earliest attempt of the batch
}

// planResults decides, for each result, whether it is final, waits for
// another try under policy, or was cancelled untried.
func planResults(results []workResult, policy retryPolicy, now time.Time) resultPlan {
	p := resultPlan{cancelled: map[int64][]int{}, firstStart: map[int64]time.Time{}}
	seen := map[int64]bool{}
	for _, r := range results {
		if !seen[r.JobID] {
			seen[r.JobID] = true
			p.jobs = append(p.jobs, r.JobID)
		}
		if r.cancelled {
			p.cancelled[r.JobID] = append(p.cancelled[r.JobID], r.Position)
			continue
		}
		if t, ok := p.firstStart[r.JobID]; !ok || r.Started.Before(t) {
			p.firstStart[r.JobID] = r.Started
		}
		o, attempt := r.Outcome, r.Attempts+1
		if wait, again := policy.next(attempt, o); again {
			retry := r.claim
			retry.Attempts, retry.DueAt = attempt, now.Add(wait)
			p.retries = append(p.retries, retry)
			p.retried = append(p.retried, r)
			continue
		}
		g := outcomeGroup{job: r.JobID, user: r.UserID, attempt: attempt, started: ms(r.Started), finished: ms(r.Finished),
			status: o.status(), message: o.Message, code: o.StatusCode,
			riu: o.RequiresIdentityUpdate, nr: o.NeedsRegistration, activate: o.Activate}
		p.groups.add(g, r.Position)
	}
	return p
}

// jobDelta is what a batch adds to one job's counts.
type jobDelta struct{ success, failure, cancelled int }

// add counts n numbers that ended as o, here and in finals (by status
// and code); a negative n takes them back.
func (d *jobDelta) add(o Outcome, n int, finals map[Outcome]int) {
	finals[Outcome{Success: o.Success, StatusCode: o.StatusCode}] += n
	if o.Success {
		d.success += n
	} else {
		d.failure += n
	}
}

// settleActivations activates the rows of the numbers a batch restored
// from released and writes, over the results just recorded, the outcome
// of each whose activation was lost, moving its count where it now
// belongs. The lost ones' positions are found in the batch's results.
func (s *Store) settleActivations(tx *sql.Tx, acts []activation, results []workResult, deltas map[int64]*jobDelta, finals map[Outcome]int) error {
	lost, err := s.activate(tx, acts)
	if err != nil || len(lost) == 0 {
		return err
	}
	type jobNumber struct {
		job    int64
		number string
	}
	positions := make(map[jobNumber]int, len(results))
	for _, r := range results {
		positions[jobNumber{r.JobID, r.Number}] = r.Position
	}
	for i := range lost {
		lost[i].position = positions[jobNumber{lost[i].job, lost[i].number}]
	}
	if err := s.rewriteLost(tx, lost); err != nil {
		return err
	}
	for _, l := range lost {
		deltas[l.job].add(l.recorded, -1, finals)
		deltas[l.job].add(l.outcome, 1, finals)
	}
	return nil
}

// recordResults writes a batch of worker results: an attempt row each, the
// number's new state (final, or pending with its next try), inventory
// activations, and per job the counts and, when its last number became
// final, its completion and its webhook falling due. Results of jobs that
// no longer exist (deleted with their user) are dropped and reported.
func (s *Store) recordResults(tx *sql.Tx, results []workResult, policy retryPolicy, now time.Time) (recordOutcome, error) {
	out := recordOutcome{finals: map[Outcome]int{}}
	results, gone, err := s.keepLiveJobs(tx, results)
	if err != nil {
		return out, err
	}
	out.goneJobs = gone
	plan := planResults(results, policy, now)
	deltas := map[int64]*jobDelta{}
	for _, id := range plan.jobs {
		deltas[id] = &jobDelta{}
	}
	for job, positions := range plan.cancelled {
		n, err := execCount(tx, s.q(cancelGroupSQL), job, jsonList(positions), msgCancelled, ms(now))
		if err != nil {
			return out, fmt.Errorf("record cancellations: %w", err)
		}
		deltas[job].cancelled += n
	}
	if out.retries, err = s.recordRetries(tx, plan.retried, plan.retries); err != nil {
		return out, err
	}
	out.dropped += len(plan.retries) - len(out.retries)
	var acts []activation // numbers restored from released
	for _, g := range plan.groups.order {
		finalised, err := s.recordGroup(tx, g, plan.groups.m[g])
		if err != nil {
			return out, err
		}
		out.dropped += len(plan.groups.m[g]) - len(finalised)
		counted := Outcome{Success: g.status == numberSuccess, StatusCode: g.code}
		deltas[g.job].add(counted, len(finalised), out.finals)
		if g.activate {
			for _, n := range finalised {
				acts = append(acts, activation{user: g.user, job: g.job, attempt: g.attempt, number: n, recorded: counted})
			}
		}
	}
	if err := s.settleActivations(tx, acts, results, deltas, out.finals); err != nil {
		return out, err
	}
	for _, id := range plan.jobs {
		d := deltas[id]
		settled, err := s.settleJob(tx, id, jobSettlement{
			success: d.success, failure: d.failure, cancelled: d.cancelled,
			firstStart: plan.firstStart[id], now: now, webhookDue: now,
		})
		if err != nil {
			return out, err
		}
		if settled.final {
			out.completedJobs = append(out.completedJobs, id)
			if settled.status == jobCompleted {
				out.jobsCompleted++
			}
		}
	}
	if len(out.completedJobs) > 0 { // their webhooks may be due: wake the senders of every instance
		return out, s.notify(tx, pgWebhookChannel)
	}
	return out, nil
}

// keepLiveJobs drops the results of jobs that no longer exist and returns
// the rest, with the ids of the jobs dropped.
func (s *Store) keepLiveJobs(tx *sql.Tx, results []workResult) ([]workResult, []int64, error) {
	var ids []int64
	seen := map[int64]bool{}
	for _, r := range results {
		if !seen[r.JobID] {
			seen[r.JobID] = true
			ids = append(ids, r.JobID)
		}
	}
	rows, err := s.wq.queryTx(tx, liveJobsSQL, jsonList(ids))
	if err != nil {
		return nil, nil, fmt.Errorf("check jobs: %w", err)
	}
	live := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("check jobs: %w", err)
		}
		live[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("check jobs: %w", err)
	}
	if len(live) == len(ids) {
		return results, nil, nil
	}
	var gone []int64
	for _, id := range ids {
		if !live[id] {
			gone = append(gone, id)
		}
	}
	kept := make([]workResult, 0, len(results))
	for _, r := range results {
		if live[r.JobID] {
			kept = append(kept, r)
		}
	}
	return kept, gone, nil
}

// recordGroup writes the attempt rows and final states of one group and
// returns the numbers it finalised (those cancelled meanwhile are left as
// they are).
func (s *Store) recordGroup(tx *sql.Tx, g outcomeGroup, positions []int) ([]string, error) {
	list := jsonList(positions)
	if g.attempt > 1 { // a first try is recorded by its number's row alone (see number_attempts)
		if _, err := s.wq.exec(tx, insertAttemptGroupSQL, g.job, list, g.attempt, g.started, g.finished, g.code, g.message); err != nil {
			return nil, fmt.Errorf("record attempts: %w", err)
		}
	}
	rows, err := s.wq.queryTx(tx, finalGroupSQL, g.job, list, g.status, g.message, g.code,
		boolInt(g.riu), boolInt(g.nr), g.attempt, g.started, g.finished)
	if err != nil {
		return nil, fmt.Errorf("record results: %w", err)
	}
	numbers, err := scanColumn[string](rows)
	if err != nil {
		return nil, fmt.Errorf("record results: %w", err)
	}
	return numbers, nil
}

// recordRetries writes each transient failure's attempt and when its
// number is due again; results[i] is the attempt that made retries[i]. It
// returns the retries scheduled: a number no longer pending (under this
// process's claim, on PostgreSQL) waits for no retry here.
func (s *Store) recordRetries(tx *sql.Tx, results []workResult, retries []claim) ([]claim, error) {
	if len(retries) == 0 {
		return nil, nil
	}
	attempt, err := tx.Prepare(s.q(insertAttemptSQL))
	if err != nil {
		return nil, fmt.Errorf("record attempt: %w", err)
	}
	defer attempt.Close()
	schedule, err := tx.Prepare(s.q(retryResultSQL))
	if err != nil {
		return nil, fmt.Errorf("schedule retry: %w", err)
	}
	defer schedule.Close()
	scheduled := retries[:0:0]
	for i, r := range results {
		c, o := retries[i], r.Outcome
		if _, err := attempt.Exec(c.JobID, c.Position, c.Attempts, ms(r.Started), ms(r.Finished), o.StatusCode, o.Message); err != nil {
			return nil, fmt.Errorf("record attempt: %w", err)
		}
		res, err := schedule.Exec(c.Attempts, ms(c.DueAt), ms(r.Started), c.JobID, c.Position)
		if err != nil {
			return nil, fmt.Errorf("schedule retry: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			scheduled = append(scheduled, c)
		}
	}
	return scheduled, nil
}

// execCount runs a statement and returns how many rows it changed.
func execCount(tx *sql.Tx, query string, args ...any) (int, error) {
	res, err := tx.Exec(query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// jsonList renders values as a JSON array, for json_each.
func jsonList[T int | int64 | string](values []T) string {
	b, _ := json.Marshal(values) // ints and strings always marshal
	return string(b)
}
