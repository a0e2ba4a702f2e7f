package main

import (
	"context"
	"fmt"
)

// historyEntry is a number's row in one job of its history.
type historyEntry struct {
	JobID     int64
	JobUUID   string
	JobStatus jobStatus
	Result    NumberResult
}

// numberHistorySQL reads a user's jobs that hold a number, newest first,
// from below a job id. It walks job_numbers_number from the number's newest
// job down (CROSS JOIN keeps that order: the other way round, SQLite would
// read every row of every job of the user) and keeps the user's jobs, so
// its cost is the entries of the page, plus those of other users' jobs
// passed over on the way.
var numberHistorySQL = `SELECT n.job_id, j.uuid, j.status, ` + resultColumnsOf("n") + `
	FROM job_numbers AS n INDEXED BY job_numbers_number CROSS JOIN jobs AS j ON j.id = n.job_id
	WHERE n.number = ?1 AND n.job_id < ?2 AND j.user_id = ?3
	ORDER BY n.job_id DESC LIMIT ?4`

// numberHistoryPG is numberHistorySQL in PostgreSQL, whose planner walks
// job_numbers_number for the number by its own choice.
var _ = pgText(numberHistorySQL, `SELECT n.job_id, j.uuid, j.status, n.position, n.number,
	CASE WHEN n.status = 'pending' AND `+pgOthersProcessing+` THEN 'processing' ELSE n.status END,
	n.message, n.status_code, n.requires_identity_update, n.needs_registration, n.attempts, n.started_at, n.completed_at
	FROM job_numbers AS n JOIN jobs AS j ON j.id = n.job_id
	WHERE n.number = $1 AND n.job_id < $2 AND j.user_id = $3
	ORDER BY n.job_id DESC LIMIT $4`)

// numberHistory returns up to limit of the user's jobs holding number whose
// ids are below beforeID, newest first.
func (s *Store) numberHistory(ctx context.Context, userID int64, number string, beforeID int64, limit int) ([]historyEntry, error) {
	stmt, err := s.rq.get(numberHistorySQL)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	rows, err := stmt.QueryContext(ctx, number, beforeID, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	var out []historyEntry
	for rows.Next() {
		var e historyEntry
		e.Result, err = scanResult(rows, &e.JobID, &e.JobUUID, &e.JobStatus)
		if err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
