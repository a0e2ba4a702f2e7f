package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Job is one bulk restore request and its webhook delivery state.
type Job struct {
	ID                 int64
	UUID               string
	UserID             int64
	Status             jobStatus
	Total              int
	SuccessCount       int
	FailureCount       int
	CancelledCount     int
	WebhookURL         string // empty when none was given
	CreatedAt          time.Time
	StartedAt          time.Time
	CompletedAt        time.Time
	WebhookState       webhookState
	WebhookAttempts    int
	WebhookDeliveredAt time.Time
	WebhookError       string
	RetryOf            string   // the job whose failures this one retries, if any
	RetriedBy          []string // the jobs that retried this one's failures, oldest first
}

// NumberResult is the current state of one number of a job.
type NumberResult struct {
	Position               int
	Number                 string
	Status                 numberStatus
	Message                string // empty until the number has an outcome
	StatusCode             int    // zero until the number has an outcome
	RequiresIdentityUpdate bool
	NeedsRegistration      bool
	Attempts               int
	StartedAt              time.Time
	CompletedAt            time.Time
}

// nullTime stores a time, the zero time as NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ms(t)
}

// nullString stores a string, the empty string as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Statements that create jobs, kept prepared (see writeStatements).
const (
	insertJobSQL = `INSERT INTO jobs (uuid, user_id, status, total, success_count, failure_count,
		webhook_url, created_at, started_at, completed_at, webhook_state, webhook_next_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// insertQueuedNumbersSQL takes a run of numbers as a JSON array, the
	// first at position ?3: json_each's key is the offset in the run.
	insertQueuedNumbersSQL = `INSERT INTO job_numbers (job_id, position, number, status)
		SELECT ?1, ?3 + key, value, 'pending' FROM json_each(?2)`
)

// The job inserts in PostgreSQL: the numbers of a JSON array with their
// index (WITH ORDINALITY counts from 1), and the job's id returned.
var (
	insertJobPG = pgText(insertJobSQL, `INSERT INTO jobs (uuid, user_id, status, total, success_count, failure_count,
		webhook_url, created_at, started_at, completed_at, webhook_state, webhook_next_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`)
	_ = pgText(insertQueuedNumbersSQL, `INSERT INTO job_numbers (job_id, position, number, status)
		SELECT $1, $3::int + ord - 1, value, 'pending' FROM json_array_elements_text($2::json) WITH ORDINALITY AS t(value, ord)`)
	_ = pgText(countActiveJobsSQL, `SELECT count(*) FROM jobs WHERE user_id = $1 AND status IN ('pending', 'processing')`)
)

// insertJobRow inserts the job row and sets j.ID; webhookDue is when its
// webhook falls due (the zero time while it is not due).
func (s *Store) insertJobRow(tx *sql.Tx, j *Job, webhookDue time.Time) error {
	args := jobRowArgs(j, webhookDue)
	if s.pg != nil { // no LastInsertId: the statement returns the id
		if err := tx.QueryRow(insertJobPG, args...).Scan(&j.ID); err != nil {
			return fmt.Errorf("insert job: %w", err)
		}
		return nil
	}
	res, err := s.wq.exec(tx, insertJobSQL, args...)
	if err != nil {
		return fmt.Errorf("insert job: %w", err)
	}
	j.ID, err = res.LastInsertId()
	return err
}

// jobRowArgs are the arguments of insertJobSQL for j.
func jobRowArgs(j *Job, webhookDue time.Time) []any {
	return []any{j.UUID, j.UserID, j.Status, j.Total, j.SuccessCount, j.FailureCount, nullString(j.WebhookURL),
		ms(j.CreatedAt), nullTime(j.StartedAt), nullTime(j.CompletedAt), j.WebhookState, nullTime(webhookDue)}
}

// queuedNumbersRun is how many numbers one statement of insertQueuedJob
// inserts: enough that statements cost nothing next to the rows, few
// enough that a job of a million numbers never sits in memory as one JSON
// text (and again inside SQLite).
const queuedNumbersRun = 10000

// insertQueuedJob stores a new pending job and all its numbers. The numbers
// go in as JSON arrays of a run each, one statement a run (json_each's key
// is the offset), which is several times faster than multi-row VALUES.
func (s *Store) insertQueuedJob(tx *sql.Tx, j *Job, numbers numberList) error {
	j.Status = jobPending
	j.Total = len(numbers)
	j.WebhookState = initialWebhookState(j.WebhookURL)
	if err := s.insertJobRow(tx, j, time.Time{}); err != nil {
		return err
	}
	var buf []byte
	for first := 0; first < len(numbers); first += queuedNumbersRun {
		buf = numbers[first:min(first+queuedNumbersRun, len(numbers))].appendJSON(buf[:0])
		if _, err := s.wq.exec(tx, insertQueuedNumbersSQL, j.ID, string(buf), first); err != nil { // TEXT: a BLOB would read as JSONB
			return fmt.Errorf("insert numbers: %w", err)
		}
	}
	return s.notify(tx, pgWorkChannel)
}

// jobColumns are the columns scanJob reads, in order.
const jobColumns = `id, uuid, user_id, status, total, success_count, failure_count, cancelled_count, webhook_url,
	created_at, started_at, completed_at, webhook_state, webhook_attempts, webhook_delivered_at, webhook_error, ` +
	jobLinkColumns

// jobColumnsPG is jobColumns in PostgreSQL's dialect.
const jobColumnsPG = `id, uuid, user_id, status, total, success_count, failure_count, cancelled_count, webhook_url,
	created_at, started_at, completed_at, webhook_state, webhook_attempts, webhook_delivered_at, webhook_error, ` +
	jobLinkColumnsPG

// rowScanner is what *sql.Row and *sql.Rows have in common.
type rowScanner interface{ Scan(dest ...any) error }

// scanJob reads one row of jobColumns.
func scanJob(row rowScanner) (Job, error) {
	var j Job
	var url, werr sql.NullString
	var created, started, completed, delivered sql.NullInt64
	var links jobLinks
	err := row.Scan(&j.ID, &j.UUID, &j.UserID, &j.Status, &j.Total, &j.SuccessCount, &j.FailureCount, &j.CancelledCount, &url,
		&created, &started, &completed, &j.WebhookState, &j.WebhookAttempts, &delivered, &werr, &links.retryOf, &links.retriedBy)
	if err != nil {
		return Job{}, err
	}
	if err := links.apply(&j); err != nil {
		return Job{}, err
	}
	j.WebhookURL, j.WebhookError = url.String, werr.String
	j.CreatedAt, j.StartedAt, j.CompletedAt, j.WebhookDeliveredAt =
		fromMs(created), fromMs(started), fromMs(completed), fromMs(delivered)
	return j, nil
}

// jobForUser returns the user's job with that UUID; another user's job is
// errNotFound, like a job that does not exist.
func (s *Store) jobForUser(ctx context.Context, userID int64, uuid string) (Job, error) {
	j, err := scanJob(s.rq.queryRow(ctx, "SELECT "+s.jobCols()+" FROM jobs WHERE uuid = ? AND user_id = ?", uuid, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, errNotFound
	}
	if err != nil {
		return Job{}, fmt.Errorf("read job: %w", err)
	}
	return j, nil
}

// jobByID returns a job by its row id.
func (s *Store) jobByID(ctx context.Context, id int64) (Job, error) {
	j, err := scanJob(s.r.QueryRowContext(ctx, s.q("SELECT "+s.jobCols()+" FROM jobs WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, errNotFound
	}
	if err != nil {
		return Job{}, fmt.Errorf("read job: %w", err)
	}
	return j, nil
}

// resultColumns are the columns scanResult reads, in order.
const resultColumns = `position, number, status, message, status_code, requires_identity_update,
	needs_registration, attempts, started_at, completed_at`

// resultColumnsPG is resultColumns in PostgreSQL's dialect, where a number
// another live instance holds for its workers is told apart from a pending
// one as it is read (pgOthersProcessing).
const resultColumnsPG = `position, number, CASE WHEN status = 'pending' AND ` + pgOthersProcessing + `
	THEN 'processing' ELSE status END, message, status_code,
	requires_identity_update, needs_registration, attempts, started_at, completed_at`

// scanResult reads one row of resultColumns, after columns of its own
// into lead (a join's).
func scanResult(row rowScanner, lead ...any) (NumberResult, error) {
	var r NumberResult
	var msg sql.NullString
	var code, started, completed sql.NullInt64
	err := row.Scan(append(lead, &r.Position, &r.Number, &r.Status, &msg, &code, &r.RequiresIdentityUpdate,
		&r.NeedsRegistration, &r.Attempts, &started, &completed)...)
	r.Message, r.StatusCode = msg.String, int(code.Int64)
	r.StartedAt, r.CompletedAt = fromMs(started), fromMs(completed)
	return r, err
}

// resultColumnsOf is resultColumns qualified by a table's alias, for a
// join whose other table has columns of the same names.
func resultColumnsOf(alias string) string {
	cols := strings.Split(resultColumns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// resultRead says which of a job's results a read visits: all of them,
// one number, or those in some stored statuses; from a position on, with
// a number of matches passed over and a bound on those visited.
type resultRead struct {
	number   string         // only this number, found through job_numbers_number
	statuses []numberStatus // only rows stored in these statuses; nil: any
	from     int            // the first position read
	skip     int            // matching rows passed over before the first visited
	limit    int            // most rows visited; negative: no bound
}

// query is the SELECT of a read and its arguments. Positions are dense (0
// to total-1: both inserts number a job's rows by their index in its
// list), so the rows after offset are a seek on the primary key, from, and
// not rows read and dropped; only a status filter, which no index serves,
// reads the job from its start and passes over skip matches.
func (rd resultRead) query(s *Store, jobID int64) (string, []any) {
	query := "SELECT " + s.resultCols() + " FROM job_numbers WHERE job_id = ?"
	args := []any{jobID}
	if rd.number != "" {
		// Without statistics SQLite would rather scan the job's range of
		// the primary key than probe the index.
		query = "SELECT " + s.resultCols() + " FROM job_numbers" + s.indexedBy("job_numbers_number") + " WHERE job_id = ? AND number = ?"
		args = append(args, rd.number)
	}
	if rd.statuses != nil {
		query += " AND status " + s.inJSON("?", "text")
		names := make([]string, len(rd.statuses))
		for i, st := range rd.statuses {
			names[i] = string(st)
		}
		args = append(args, jsonList(names))
	}
	if rd.from > 0 {
		query += " AND position >= ?"
		args = append(args, rd.from)
	}
	query += " ORDER BY position"
	if rd.limit >= 0 || rd.skip > 0 {
		query += " LIMIT " + s.limitParam() + " OFFSET ?"
		args = append(args, rd.limit, rd.skip)
	}
	return query, args
}

// readResults calls fn for the job's results that rd selects, in input
// order, one row at a time, so a job of any size is read in constant
// memory. fn's first error ends the read and is returned.
func (s *Store) readResults(ctx context.Context, jobID int64, rd resultRead, fn func(NumberResult) error) error {
	query, args := rd.query(s, jobID)
	stmt, err := s.rq.get(query)
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanResult(rows)
		if err != nil {
			return fmt.Errorf("read results: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// eachResult calls fn for the job's numbers in input order: with number
// set, only that number's row; limit >= 0 bounds the rows after offset (a
// negative limit is no bound).
func (s *Store) eachResult(ctx context.Context, jobID int64, number string, offset, limit int, fn func(NumberResult) error) error {
	rd := resultRead{number: number, from: offset, limit: limit}
	if number != "" {
		rd.from, rd.skip = 0, offset // offset counts the number's rows, not positions
	}
	return s.readResults(ctx, jobID, rd, fn)
}

// countActiveJobsSQL counts a user's unfinished jobs.
const countActiveJobsSQL = `SELECT count(*) FROM jobs INDEXED BY jobs_user_active
		WHERE user_id = ? AND status IN ('pending', 'processing')`

// countActiveJobs counts a user's unfinished jobs, from the
// jobs_user_active index. On PostgreSQL it first locks the user's row, so
// that the submits of one user, on any instance, count one after another.
func (s *Store) countActiveJobs(tx *sql.Tx, userID int64) (int, error) {
	var n int
	if s.pg != nil {
		if _, err := tx.Exec("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", userID); err != nil {
			return 0, err
		}
	}
	err := tx.QueryRow(s.q(countActiveJobsSQL), userID).Scan(&n)
	return n, err
}

// listJobs returns up to limit of a user's jobs with ids below beforeID,
// newest first, optionally of one status.
func (s *Store) listJobs(ctx context.Context, userID int64, status jobStatus, beforeID int64, limit int) ([]Job, error) {
	listed, err := s.listAllJobs(ctx, userID, status, beforeID, limit)
	jobs := make([]Job, len(listed))
	for i, j := range listed {
		jobs[i] = j.Job
	}
	return jobs, err
}
