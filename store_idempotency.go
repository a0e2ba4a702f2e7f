package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// idempotencyTTL is how long a key is remembered.
const idempotencyTTL = 24 * time.Hour

// errIdempotencyTaken is returned when another request recorded the same
// key first (two retries racing each other).
var errIdempotencyTaken = errors.New("idempotency key taken")

// idempotencyRequest is a request's key and the hash of its body.
type idempotencyRequest struct {
	key  string
	hash []byte
}

// idempotencyRecord is what was stored for a key.
type idempotencyRecord struct {
	hash      []byte
	jobID     int64     // 0 while a synchronous request holds the key
	status    int       // 0 until the answer was recorded
	response  []byte    // the answer's body
	createdAt time.Time // when the key was first seen
}

// reserveIdempotencyKey records the key, for the job jobID (0: a
// synchronous request reserving it before its restores run, linked to its
// job later by linkIdempotencyKey). A key past the TTL, or a reservation
// older than staleAfter that never got its job (its process died), is
// taken over; any other record of the key is errIdempotencyTaken.
func (s *Store) reserveIdempotencyKey(tx *sql.Tx, userID int64, req *idempotencyRequest, jobID int64, now time.Time, staleAfter time.Duration) error {
	if _, err := tx.Exec(s.q(`DELETE FROM idempotency_keys WHERE user_id = ? AND key = ?
		AND (created_at < ? OR (job_id IS NULL AND created_at < ?))`),
		userID, req.key, ms(now.Add(-idempotencyTTL)), ms(now.Add(-staleAfter))); err != nil {
		return fmt.Errorf("expire idempotency key: %w", err)
	}
	var job any
	if jobID != 0 {
		job = jobID
	}
	_, err := tx.Exec(s.q("INSERT INTO idempotency_keys (user_id, key, body_hash, job_id, created_at) VALUES (?, ?, ?, ?, ?)"),
		userID, req.key, req.hash, job, ms(now))
	if isUniqueViolation(err) {
		return errIdempotencyTaken
	}
	return err
}

// linkIdempotencyKey gives a reserved key its job, in the transaction
// that stores the job.
func (s *Store) linkIdempotencyKey(tx *sql.Tx, userID int64, key string, jobID int64) error {
	_, err := tx.Exec(s.q("UPDATE idempotency_keys SET job_id = ? WHERE user_id = ? AND key = ?"), jobID, userID, key)
	return err
}

// releaseIdempotencyKey forgets a reservation whose request failed before
// storing a job, so that the client's retry runs anew.
func (s *Store) releaseIdempotencyKey(tx *sql.Tx, userID int64, key string) error {
	_, err := tx.Exec(s.q("DELETE FROM idempotency_keys WHERE user_id = ? AND key = ? AND job_id IS NULL"), userID, key)
	return err
}

// saveIdempotencyAnswer stores the answer given for a key, for replays.
func (s *Store) saveIdempotencyAnswer(tx *sql.Tx, userID int64, key string, status int, body []byte) error {
	_, err := tx.Exec(s.q("UPDATE idempotency_keys SET http_status = ?, response = ? WHERE user_id = ? AND key = ?"),
		status, body, userID, key)
	return err
}

// expireIdempotencyKeys deletes the keys past the TTL.
func (s *Store) expireIdempotencyKeys(tx *sql.Tx, now time.Time) error {
	_, err := tx.Exec(s.q("DELETE FROM idempotency_keys WHERE created_at < ?"), ms(now.Add(-idempotencyTTL)))
	return err
}

// idempotencyRecord returns the live record of a user's key, if any.
func (s *Store) idempotencyRecord(ctx context.Context, userID int64, key string, now time.Time) (idempotencyRecord, bool, error) {
	var rec idempotencyRecord
	var job, status, created sql.NullInt64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT body_hash, job_id, http_status, response, created_at FROM idempotency_keys
		WHERE user_id = ? AND key = ? AND created_at >= ?`), userID, key, ms(now.Add(-idempotencyTTL))).
		Scan(&rec.hash, &job, &status, &rec.response, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("read idempotency key: %w", err)
	}
	rec.jobID, rec.status, rec.createdAt = job.Int64, int(status.Int64), fromMs(created)
	return rec, true, nil
}
