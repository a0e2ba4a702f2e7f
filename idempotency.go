package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// idempotencyKeyPattern is what an Idempotency-Key header may hold.
var idempotencyKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_:-]{1,255}$`)

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
	hash     []byte
	jobID    int64
	status   int    // 0 until the answer was recorded
	response []byte // the answer's body
}

// reserveIdempotencyKey records the key for a job in the transaction that
// creates the job, so a job and its key are committed together or not at
// all. A key older than the TTL is forgotten first.
func reserveIdempotencyKey(tx *sql.Tx, userID int64, req *idempotencyRequest, jobID int64, now time.Time) error {
	if _, err := tx.Exec("DELETE FROM idempotency_keys WHERE user_id = ? AND key = ? AND created_at < ?",
		userID, req.key, ms(now.Add(-idempotencyTTL))); err != nil {
		return fmt.Errorf("expire idempotency key: %w", err)
	}
	_, err := tx.Exec("INSERT INTO idempotency_keys (user_id, key, body_hash, job_id, created_at) VALUES (?, ?, ?, ?, ?)",
		userID, req.key, req.hash, jobID, ms(now))
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return errIdempotencyTaken
	}
	return err
}

// idempotencyRecord returns the live record of a user's key, if any.
func (s *Store) idempotencyRecord(ctx context.Context, userID int64, key string, now time.Time) (idempotencyRecord, bool, error) {
	var rec idempotencyRecord
	var status sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT body_hash, job_id, http_status, response FROM idempotency_keys
		WHERE user_id = ? AND key = ? AND created_at >= ?`, userID, key, ms(now.Add(-idempotencyTTL))).
		Scan(&rec.hash, &rec.jobID, &status, &rec.response)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("read idempotency key: %w", err)
	}
	rec.status = int(status.Int64)
	return rec, true, nil
}

// saveIdempotentAnswer stores the answer given for a key, for replays.
func (a *app) saveIdempotentAnswer(ctx context.Context, userID int64, req *idempotencyRequest, status int, body []byte) {
	err := a.writer.do(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		_, err := tx.Exec("UPDATE idempotency_keys SET http_status = ?, response = ? WHERE user_id = ? AND key = ?",
			status, body, userID, req.key)
		return err
	})
	if err != nil {
		// The key still maps to the job; a replay rebuilds the answer from it.
		a.log.Warn("store idempotent answer", "err", err)
	}
}

// replayIdempotent answers a request whose key was seen before and reports
// whether it did: the original answer for the same body, 422 for another.
func (a *app) replayIdempotent(w http.ResponseWriter, r *http.Request, user User, req *idempotencyRequest) bool {
	rec, found, err := a.store.idempotencyRecord(r.Context(), user.ID, req.key, a.now())
	if err != nil {
		writeError(w, r, a.log, err)
		return true
	}
	if !found {
		return false
	}
	if !bytes.Equal(rec.hash, req.hash) {
		writeError(w, r, a.log, newAPIError(codeUnprocessable,
			"Idempotency-Key "+req.key+" was already used with a different request body"))
		return true
	}
	job, err := a.store.jobByID(r.Context(), rec.jobID)
	if err != nil {
		writeError(w, r, a.log, err)
		return true
	}
	status, body := rec.status, rec.response
	if status == 0 {
		// The process stopped between committing the job and recording the
		// answer: rebuild it from the job as it is now.
		if status, body, err = a.describeJob(r.Context(), job); err != nil {
			writeError(w, r, a.log, err)
			return true
		}
	}
	w.Header().Set("Idempotent-Replayed", "true")
	if status == http.StatusAccepted {
		w.Header().Set("Location", statusPath(job.UUID))
	}
	writeRaw(w, status, body)
	return true
}

// describeJob renders the answer a job's creation would give now: 202 while
// it is queued, the final payload once it has finished.
func (a *app) describeJob(ctx context.Context, job Job) (int, []byte, error) {
	if job.Status == "pending" || job.Status == "processing" {
		body, err := queuedBody(job)
		return http.StatusAccepted, body, err
	}
	body, err := a.store.finalPayload(ctx, job)
	return http.StatusOK, body, err
}

// writeRaw writes an already rendered JSON body.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
