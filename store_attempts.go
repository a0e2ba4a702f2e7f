package main

import (
	"context"
	"fmt"
	"time"
)

// numberAttempt is one try of one number of a job.
type numberAttempt struct {
	Attempt    int
	StartedAt  time.Time
	FinishedAt time.Time
	StatusCode int
	Message    string
}

// numberAttempts returns every attempt of the number at position in a job,
// in order.
func (s *Store) numberAttempts(ctx context.Context, jobID int64, position int) ([]numberAttempt, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT attempt, started_at, finished_at, status_code, message
		FROM number_attempts WHERE job_id = ? AND position = ? ORDER BY attempt`), jobID, position)
	if err != nil {
		return nil, fmt.Errorf("read attempts: %w", err)
	}
	defer rows.Close()
	var out []numberAttempt
	for rows.Next() {
		var a numberAttempt
		var started, finished int64
		if err := rows.Scan(&a.Attempt, &started, &finished, &a.StatusCode, &a.Message); err != nil {
			return nil, fmt.Errorf("read attempts: %w", err)
		}
		a.StartedAt, a.FinishedAt = time.UnixMilli(started).UTC(), time.UnixMilli(finished).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}
