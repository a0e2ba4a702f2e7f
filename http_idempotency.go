package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/http"
	"regexp"
	"time"
)

// idempotencyKeyPattern is what an Idempotency-Key header may hold.
var idempotencyKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_:-]{1,255}$`)

// defaultIdempotencyWait bounds how long a request waits for the answer of
// an earlier request with the same key that is still running, before it is
// told to retry (409 with Retry-After); app.idempotencyWait is set from it.
const defaultIdempotencyWait = 10 * time.Second

// idempotentAnswer handles a request's Idempotency-Key before any work and
// reports whether it answered the request: a repeat gets the first
// request's answer (after waiting, within a.idempotencyWait, for a first one
// still running), another body under the same key is 422. With reserve
// (a synchronous request, whose restores run before its job is stored) it
// reserves the key first, so that a duplicate arriving while the restores
// run waits for their answer and never restores anything itself.
func (a *app) idempotentAnswer(w http.ResponseWriter, r *http.Request, user User, req *idempotencyRequest, reserve bool) bool {
	deadline := time.Now().Add(a.idempotencyWait)
	wait := 20 * time.Millisecond
	for range 1000 { // bounded by the deadline long before
		rec, found, err := a.store.idempotencyRecord(r.Context(), user.ID, req.key, a.now())
		if err != nil {
			writeError(w, r, a.log, err)
			return true
		}
		if found {
			if !bytes.Equal(rec.hash, req.hash) {
				writeError(w, r, a.log, newAPIError(codeUnprocessable,
					"Idempotency-Key "+req.key+" was already used with a different request body"))
				return true
			}
			if rec.jobID != 0 || rec.status != 0 {
				a.replayIdempotent(w, r, rec)
				return true
			}
			if a.now().Sub(rec.createdAt) < a.syncBudget() { // its request is still running
				if time.Now().After(deadline) || !sleepUntil(r.Context(), nil, time.Now().Add(wait)) {
					w.Header().Set("Retry-After", retryAfterSeconds(time.Second))
					writeError(w, r, a.log, newAPIError(codeConflict,
						"a request with Idempotency-Key "+req.key+" is still in progress; retry shortly for its answer"))
					return true
				}
				wait = min(2*wait, 250*time.Millisecond)
				continue
			}
			// Reserved by a request that died before storing its job: taken over below.
		}
		if !reserve {
			return false
		}
		err = a.writer.do(r.Context(), func(tx *sql.Tx) error {
			return a.store.reserveIdempotencyKey(tx, user.ID, req, 0, a.now(), a.syncBudget())
		})
		if !errors.Is(err, errIdempotencyTaken) {
			if err != nil {
				writeError(w, r, a.log, err)
				return true
			}
			return false
		}
		// Another request reserved it meanwhile: look again.
	}
	writeError(w, r, a.log, errors.New("idempotency key: no answer after many tries"))
	return true
}

// syncBudget is the longest a synchronous request may take: every attempt
// of a number with the waits between them, and the first webhook attempt.
// A key reserved longer ago than this without a job was left by a request
// that died.
func (a *app) syncBudget() time.Duration {
	n := time.Duration(a.cfg.restoreMaxAttempts)
	return n*a.cfg.restoreTimeout + (n-1)*a.retry.max + a.cfg.webhookTimeout + 30*time.Second
}

// saveIdempotentAnswer stores the answer given for a key, for replays.
func (a *app) saveIdempotentAnswer(ctx context.Context, userID int64, req *idempotencyRequest, status int, body []byte) {
	err := a.writer.do(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		return a.store.saveIdempotencyAnswer(tx, userID, req.key, status, body)
	})
	if err != nil {
		// The key still maps to the job; a replay rebuilds the answer from it.
		a.log.Warn("store idempotent answer", "err", err)
	}
}

// releaseIdempotentKey forgets a synchronous request's reservation after
// the request failed, so that a retry runs anew instead of waiting.
func (a *app) releaseIdempotentKey(ctx context.Context, userID int64, req *idempotencyRequest) {
	err := a.writer.do(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		return a.store.releaseIdempotencyKey(tx, userID, req.key)
	})
	if err != nil {
		a.log.Warn("release idempotency key", "err", err)
	}
}

// replayIdempotent answers with the answer recorded for a key.
func (a *app) replayIdempotent(w http.ResponseWriter, r *http.Request, rec idempotencyRecord) {
	job, err := a.store.jobByID(r.Context(), rec.jobID)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	status, body := rec.status, rec.response
	if status == 0 {
		// The process stopped between committing the job and recording the
		// answer: rebuild it from the job as it is now.
		if status, body, err = a.describeJob(r.Context(), job); err != nil {
			writeError(w, r, a.log, err)
			return
		}
	}
	w.Header().Set("Idempotent-Replayed", "true")
	if status == http.StatusAccepted {
		w.Header().Set("Location", statusPath(job.UUID))
	}
	writeRaw(w, status, body)
}

// describeJob renders the answer a job's creation would give now: 202 while
// it is queued, the final payload once it has finished.
func (a *app) describeJob(ctx context.Context, job Job) (int, []byte, error) {
	if job.Status.active() {
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
