package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The reads of the admin API across users: users with their counts, and
// every user's jobs.

// UserSummary is a user with the counts the admin list shows.
type UserSummary struct {
	User
	Jobs             int // every job the user has
	ActiveJobs       int // pending or processing
	InventoryNumbers int
}

// userSummariesSQL lists the users with their counts.
const userSummariesSQL = `SELECT id, name, created_at,
		(SELECT count(*) FROM jobs INDEXED BY jobs_user WHERE user_id = users.id),
		(SELECT count(*) FROM jobs INDEXED BY jobs_user_active WHERE user_id = users.id AND status IN ('pending', 'processing')),
		(SELECT count(*) FROM inventory WHERE user_id = users.id)
		FROM users ORDER BY name`

var _ = pgText(userSummariesSQL, `SELECT id, name, created_at,
	(SELECT count(*) FROM jobs WHERE user_id = users.id),
	(SELECT count(*) FROM jobs WHERE user_id = users.id AND status IN ('pending', 'processing')),
	(SELECT count(*) FROM inventory WHERE user_id = users.id)
	FROM users ORDER BY name`)

// listUserSummaries returns every user, by name, with its counts. Each
// count reads one range of an index (jobs_user, jobs_user_active, the
// inventory's key), the user's own rows only, never every job.
func (s *Store) listUserSummaries(ctx context.Context) ([]UserSummary, error) {
	rows, err := s.r.QueryContext(ctx, s.q(userSummariesSQL))
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var users []UserSummary
	for rows.Next() {
		var u UserSummary
		var created sql.NullInt64
		if err := rows.Scan(&u.ID, &u.Name, &created, &u.Jobs, &u.ActiveJobs, &u.InventoryNumbers); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		u.CreatedAt = fromMs(created)
		users = append(users, u)
	}
	return users, rows.Err()
}

// UserJob is a job with its user's name, an entry of the admin job list.
type UserJob struct {
	Job
	Username string
}

// withUsername scans a row of jobColumns followed by the user's name.
type withUsername struct {
	rowScanner
	name *string
}

// Scan implements rowScanner: scanJob's columns, then the name.
func (w withUsername) Scan(dest ...any) error { return w.rowScanner.Scan(append(dest, w.name)...) }

// listAllJobs returns up to limit jobs with ids below beforeID, newest
// first, of every user (or of userID, when not 0), optionally of one status.
func (s *Store) listAllJobs(ctx context.Context, userID int64, status jobStatus, beforeID int64, limit int) ([]UserJob, error) {
	query := "SELECT " + s.jobCols() + ", (SELECT name FROM users WHERE users.id = jobs.user_id) FROM jobs WHERE id < ?"
	args := []any{beforeID}
	if userID != 0 {
		query += " AND user_id = ?"
		args = append(args, userID)
	}
	if status != "" {
		query += " AND status = ?"
		args = append(args, status)
	}
	rows, err := s.r.QueryContext(ctx, s.q(query+" ORDER BY id DESC LIMIT ?"), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var jobs []UserJob
	for rows.Next() {
		var j UserJob
		if j.Job, err = scanJob(withUsername{rows, &j.Username}); err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// jobIDByUUID returns the row id of the job with that UUID, whoever's it
// is, or errNotFound.
func (s *Store) jobIDByUUID(ctx context.Context, uuid string) (int64, error) {
	var id int64
	err := s.r.QueryRowContext(ctx, s.q("SELECT id FROM jobs WHERE uuid = ?"), uuid).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errNotFound
	}
	return id, err
}

// userIDInTx returns the id of the named user inside a write, or
// errNotFound: what a write that was prepared outside it (an import)
// checks again, since the user may have been deleted meanwhile.
func (s *Store) userIDInTx(tx *sql.Tx, name string) (int64, error) {
	var id int64
	err := tx.QueryRow(s.q("SELECT id FROM users WHERE name = ?"), name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errNotFound
	}
	return id, err
}
