package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
)

// jobLinkColumns are the columns of a job's retry links that scanJob
// reads after the others: the job it retries, and the uuids of the jobs
// that retried it as a JSON array in creation order (one probe of the
// partial index jobs_retry_of; the alias keeps "jobs" naming the outer
// row).
const jobLinkColumns = `retry_of,
	(SELECT json_group_array(r.uuid ORDER BY r.id) FROM jobs r WHERE r.retry_of = jobs.uuid)`

// jobLinkColumnsPG is jobLinkColumns in PostgreSQL's dialect.
const jobLinkColumnsPG = `retry_of,
	(SELECT json_agg(r.uuid ORDER BY r.id)::text FROM jobs r WHERE r.retry_of = jobs.uuid)`

// jobLinks is what scanJob reads of jobLinkColumns.
type jobLinks struct {
	retryOf   sql.NullString
	retriedBy sql.NullString // a JSON array of uuids
}

// apply sets the job's RetryOf and RetriedBy.
func (l jobLinks) apply(j *Job) error {
	j.RetryOf = l.retryOf.String
	j.RetriedBy = nil
	if l.retriedBy.String == "" || l.retriedBy.String == "[]" {
		return nil
	}
	if err := json.Unmarshal([]byte(l.retriedBy.String), &j.RetriedBy); err != nil {
		return fmt.Errorf("read retried_by of job %s: %w", j.UUID, err)
	}
	return nil
}

// linkRetry records, in the transaction that stores a new job, that it
// retries the failures of the job retryOf (a uuid).
func (s *Store) linkRetry(tx *sql.Tx, jobID int64, retryOf string) error {
	if _, err := tx.Exec(s.q("UPDATE jobs SET retry_of = ? WHERE id = ?"), retryOf, jobID); err != nil {
		return fmt.Errorf("link retry: %w", err)
	}
	return nil
}

// failedNumbers returns a job's numbers whose final status is failed, in
// input order; with codes, only those that failed with one of them. It
// scans the job's rows in key order (no index on status: see schema.sql).
func (s *Store) failedNumbers(ctx context.Context, jobID int64, codes []int) ([]string, error) {
	query := "SELECT number FROM job_numbers WHERE job_id = ? AND status = 'failed'"
	args := []any{jobID}
	if len(codes) > 0 {
		list, err := json.Marshal(codes)
		if err != nil {
			return nil, err
		}
		query += " AND status_code " + s.inJSON("?", "int")
		args = append(args, string(list))
	}
	rows, err := s.r.QueryContext(ctx, s.q(query+" ORDER BY position"), args...)
	if err != nil {
		return nil, fmt.Errorf("read failed numbers: %w", err)
	}
	defer rows.Close()
	var numbers []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("read failed numbers: %w", err)
		}
		numbers = append(numbers, n)
	}
	return numbers, rows.Err()
}
