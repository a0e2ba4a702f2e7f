package main

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// nextExpiredSQL finds the oldest finished job completed before ?1 whose
// webhook is settled.
const nextExpiredSQL = `SELECT id FROM jobs INDEXED BY jobs_finished
		WHERE status IN ('completed', 'cancelled') AND completed_at < ?
		AND webhook_state NOT IN ('pending', 'waiting') ORDER BY completed_at LIMIT 1`

var _ = pgText(nextExpiredSQL, `SELECT id FROM jobs WHERE status IN ('completed', 'cancelled') AND completed_at < $1
	AND webhook_state NOT IN ('pending', 'waiting') ORDER BY completed_at LIMIT 1`)

// nextExpiredJob returns a finished job that completed before cutoff and
// whose webhook is settled (delivered, given up or none), if any. The
// jobs_finished index makes this one probe however many jobs are kept.
func (s *Store) nextExpiredJob(ctx context.Context, cutoff time.Time) (int64, bool, error) {
	var id int64
	err := s.r.QueryRowContext(ctx, s.q(nextExpiredSQL), ms(cutoff)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// chunkBoundSQL is the last position of job ?1's first ?2 numbers.
const chunkBoundSQL = "SELECT max(position) FROM (SELECT position FROM job_numbers WHERE job_id = ? ORDER BY position LIMIT ?)"

var _ = pgText(chunkBoundSQL, `SELECT max(position) FROM (SELECT position FROM job_numbers WHERE job_id = $1 ORDER BY position LIMIT $2) AS chunk`)

// deleteJobChunk deletes up to chunk numbers of a job, with their
// attempts, and the job row itself once none is left; it reports whether
// the job is gone.
func (s *Store) deleteJobChunk(tx *sql.Tx, jobID int64, chunk int) (bool, error) {
	var bound sql.NullInt64
	err := tx.QueryRow(s.q(chunkBoundSQL),
		jobID, chunk).Scan(&bound)
	if err != nil {
		return false, err
	}
	if !bound.Valid {
		_, err := tx.Exec(s.q("DELETE FROM jobs WHERE id = ?"), jobID)
		return true, err
	}
	if _, err := tx.Exec(s.q("DELETE FROM attempts WHERE job_id = ? AND position <= ?"), jobID, bound.Int64); err != nil {
		return false, err
	}
	_, err = tx.Exec(s.q("DELETE FROM job_numbers WHERE job_id = ? AND position <= ?"), jobID, bound.Int64)
	return false, err
}
