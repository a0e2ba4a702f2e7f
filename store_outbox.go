package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// dueWebhooks returns up to limit jobs whose webhook is due at now, the
// longest due first, and when the next one not yet due falls due (zero if
// none).
func (s *Store) dueWebhooks(ctx context.Context, now time.Time, limit int) ([]int64, time.Time, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id FROM jobs WHERE webhook_state = 'pending' AND webhook_next_at <= ?
		ORDER BY webhook_next_at LIMIT ?`), ms(now), limit)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("due webhooks: %w", err)
	}
	ids, err := scanColumn[int64](rows)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("due webhooks: %w", err)
	}
	var next sql.NullInt64
	err = s.r.QueryRowContext(ctx,
		"SELECT min(webhook_next_at) FROM jobs WHERE webhook_state = 'pending' AND webhook_next_at > ?", ms(now)).Scan(&next)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("next due webhook: %w", err)
	}
	return ids, fromMs(next), nil
}

// webhookAttemptsSQL reads a job's count of delivery attempts; PostgreSQL
// locks the row, so that two attempts recorded at once count one after
// the other.
const webhookAttemptsSQL = "SELECT webhook_attempts FROM jobs WHERE id = ?"

var _ = pgText(webhookAttemptsSQL, `SELECT webhook_attempts FROM jobs WHERE id = $1 FOR UPDATE`)

// recordWebhookAttempt stores one delivery attempt and the job's new
// delivery state: delivered, given up (a final failure, or the last
// attempt policy allows), or due again after the policy's backoff. A job
// that no longer exists is errNotFound.
func (s *Store) recordWebhookAttempt(tx *sql.Tx, jobID int64, at time.Time, res deliveryResult, policy retryPolicy, now time.Time) error {
	var attempts int
	err := tx.QueryRow(s.q(webhookAttemptsSQL), jobID).Scan(&attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	attempts++
	var status any
	if res.HTTPStatus != 0 {
		status = res.HTTPStatus
	}
	if _, err := tx.Exec(s.q(`INSERT INTO webhook_attempts (job_id, attempt, at, http_status, error, duration_ms)
		VALUES (?, ?, ?, ?, ?, ?)`), jobID, attempts, ms(at), status, nullString(res.Err), res.Duration.Milliseconds()); err != nil {
		return err
	}
	state, next, delivered := webhookPending, any(nil), any(nil)
	switch {
	case res.ok():
		state, delivered = webhookDelivered, ms(now)
	case res.Final || attempts >= policy.maxAttempts:
		state = webhookFailed
	default:
		next = ms(now.Add(backoff(policy.base, policy.max, attempts)))
	}
	_, err = tx.Exec(s.q(`UPDATE jobs SET webhook_attempts = ?, webhook_state = ?, webhook_next_at = ?,
		webhook_delivered_at = coalesce(?, webhook_delivered_at), webhook_error = ? WHERE id = ?`),
		attempts, state, next, delivered, nullString(res.Err), jobID)
	return err
}

// webhookSecrets returns the secrets a user's messages are signed with: the
// current one and, for a day after a rotation, the previous one.
func (s *Store) webhookSecrets(ctx context.Context, userID int64, now time.Time) ([]string, error) {
	var secret string
	var previous sql.NullString
	var until sql.NullInt64
	err := s.rq.queryRow(ctx, "SELECT webhook_secret, previous_secret, previous_until FROM users WHERE id = ?", userID).
		Scan(&secret, &previous, &until)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	secrets := []string{secret}
	if previous.Valid && until.Valid && until.Int64 > ms(now) {
		secrets = append(secrets, previous.String)
	}
	return secrets, nil
}

// attemptLogSQL reads job ?1's last ?2 delivery attempts, oldest first.
const attemptLogSQL = `SELECT attempt, at, http_status, error, duration_ms FROM
		(SELECT * FROM webhook_attempts WHERE job_id = ? ORDER BY attempt DESC LIMIT ?) ORDER BY attempt`

var _ = pgText(attemptLogSQL, `SELECT attempt, at, http_status, error, duration_ms FROM
	(SELECT * FROM webhook_attempts WHERE job_id = $1 ORDER BY attempt DESC LIMIT $2) AS last ORDER BY attempt`)

// webhookAttemptLog returns a job's last n delivery attempts, oldest first.
func (s *Store) webhookAttemptLog(ctx context.Context, jobID int64, n int) ([]webhookAttemptJSON, error) {
	rows, err := s.r.QueryContext(ctx, s.q(attemptLogSQL), jobID, n)
	if err != nil {
		return nil, fmt.Errorf("webhook attempt log: %w", err)
	}
	defer rows.Close()
	log := []webhookAttemptJSON{}
	for rows.Next() {
		var e webhookAttemptJSON
		var at sql.NullInt64
		var status sql.NullInt64
		var errText sql.NullString
		if err := rows.Scan(&e.Attempt, &at, &status, &errText, &e.DurationMs); err != nil {
			return nil, fmt.Errorf("webhook attempt log: %w", err)
		}
		e.At = jsonTime(fromMs(at))
		if status.Valid {
			code := int(status.Int64)
			e.HTTPStatus = &code
		}
		e.Error = nullableString(errText.String)
		log = append(log, e)
	}
	return log, rows.Err()
}
