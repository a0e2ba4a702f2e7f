package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
)

// errTooManyActiveJobs is returned when a user already has -max-active-jobs
// queued jobs unfinished.
var errTooManyActiveJobs = errors.New("too many active jobs")

// bulkRestore is POST /v3/bulk_restore: a job, or with dry_run what one
// would give now.
func (a *app) bulkRestore(w http.ResponseWriter, r *http.Request) {
	req, err := parseBulkRequest(w, r, a.limits())
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if req.DryRun {
		// No Idempotency-Key is checked or recorded: a dry run changes
		// nothing, so repeating it is always safe.
		res, err := a.dryRun(r.Context(), currentUser(r), req.Numbers.strings())
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
		return
	}
	a.submit(w, r, req)
}

// submit creates the job of a validated request (a new one, or a retry of
// another job's failures) and answers: 200 with the results at or below
// -sync-limit numbers, else 202 with its Location. A repeat under the same
// Idempotency-Key gets the first answer again.
func (a *app) submit(w http.ResponseWriter, r *http.Request, req bulkRequest) {
	user := currentUser(r)
	key, hasKey := r.Header.Get("Idempotency-Key"), len(r.Header.Values("Idempotency-Key")) > 0
	if hasKey && !idempotencyKeyPattern.MatchString(key) {
		writeError(w, r, a.log, newAPIError(codeInvalid, "Idempotency-Key must be 1 to 255 of A-Z a-z 0-9 _ : -"))
		return
	}
	var idem *idempotencyRequest
	runsNow := len(req.Numbers) <= a.cfg.syncLimit
	if hasKey {
		idem = &idempotencyRequest{key: key, hash: req.BodyHash}
		if a.idempotentAnswer(w, r, user, idem, runsNow) {
			return
		}
	}
	status, body, job, err := a.createJob(r.Context(), user, req, idem)
	if err != nil && idem != nil && runsNow {
		a.releaseIdempotentKey(r.Context(), user.ID, idem)
	}
	switch {
	case errors.Is(err, errIdempotencyTaken) && a.idempotentAnswer(w, r, user, idem, false):
		return
	case isForeignKeyViolation(err):
		a.unauthorized(w, r, "user "+user.Name+" was deleted while the request ran")
		return
	case errors.Is(err, errTooManyActiveJobs):
		a.tooManyRequests(w, r, 30*time.Second, fmt.Sprintf(
			"you have %d queued jobs unfinished; wait for one to complete (or cancel one)", a.cfg.maxActiveJobs))
		return
	case err != nil:
		writeError(w, r, a.log, err)
		return
	}
	if idem != nil {
		a.saveIdempotentAnswer(r.Context(), user.ID, idem, status, body)
	}
	if status == http.StatusAccepted {
		w.Header().Set("Location", statusPath(job.UUID))
	}
	writeRaw(w, status, body)
}

// statusPath is where a job's status is polled.
func statusPath(jobUUID string) string {
	return "/v3/bulk_restore_status?job_uuid=" + jobUUID
}

// createJob submits a request and renders the answer: 200 with the
// results, or 202.
func (a *app) createJob(ctx context.Context, user User, req bulkRequest, idem *idempotencyRequest) (int, []byte, Job, error) {
	sub, err := a.startJob(ctx, user, req, idem)
	if err != nil {
		return 0, nil, Job{}, err
	}
	if sub.queued {
		body, err := queuedBody(sub.job)
		return http.StatusAccepted, body, sub.job, err
	}
	body, err := jobPayload{kind: finalPayload, job: sub.job, results: sliceSource(sub.results), webhookError: sub.webhookError}.bytes()
	return http.StatusOK, body, sub.job, err
}

// queuedJSON is the 202 body.
type queuedJSON struct {
	JobUUID      string    `json:"job_uuid"`
	Status       jobStatus `json:"status"`
	TotalNumbers int       `json:"total_numbers"`
	WebhookURL   *string   `json:"webhook_url"`
	RetryOf      string    `json:"retry_of,omitempty"` // a retry of this job's failures
	Message      string    `json:"message"`
}

// queuedBody renders the 202 body of a queued job.
func queuedBody(job Job) ([]byte, error) {
	msg := "Restore job queued. Poll " + statusPath(job.UUID) + " for results."
	if job.WebhookURL != "" {
		msg = "Restore job queued. Results will be POSTed to " + job.WebhookURL
	}
	body, err := json.Marshal(queuedJSON{
		JobUUID: job.UUID, Status: jobPending, TotalNumbers: job.Total,
		WebhookURL: nullableString(job.WebhookURL), RetryOf: job.RetryOf, Message: msg,
	})
	return append(body, '\n'), err
}

// limits are the request limits of this server.
func (a *app) limits() requestLimits {
	return requestLimits{maxBody: a.cfg.maxBody, maxNumbers: a.cfg.maxNumbers, allowPrivate: a.cfg.allowPrivateWebhooks()}
}

// newJob is the job a request makes, before it is stored.
func (a *app) newJob(user User, req bulkRequest) Job {
	return Job{UUID: uuid.NewString(), UserID: user.ID, WebhookURL: req.WebhookURL, RetryOf: req.RetryOf, CreatedAt: a.now()}
}

// storeRetryLink records, in the transaction that stores a job, the job
// whose failures it retries, if any.
func (a *app) storeRetryLink(tx *sql.Tx, job Job) error {
	if job.RetryOf == "" {
		return nil
	}
	return a.store.linkRetry(tx, job.ID, job.RetryOf)
}

// enqueue commits a job and all its numbers, then wakes the dispatcher.
func (a *app) enqueue(ctx context.Context, user User, req bulkRequest, idem *idempotencyRequest) (Job, error) {
	numbers := req.Numbers
	job := a.newJob(user, req)
	write := a.writer.do
	if len(numbers) > queuedNumbersRun { // see writeOp.alone
		write = a.writer.doAlone
	}
	err := write(ctx, func(tx *sql.Tx) error {
		if a.cfg.maxActiveJobs > 0 {
			active, err := a.store.countActiveJobs(tx, user.ID)
			if err != nil {
				return err
			}
			if active >= a.cfg.maxActiveJobs {
				return errTooManyActiveJobs
			}
		}
		if err := a.store.insertQueuedJob(tx, &job, numbers); err != nil {
			return err
		}
		if err := a.storeRetryLink(tx, job); err != nil {
			return err
		}
		if idem != nil {
			return a.store.reserveIdempotencyKey(tx, user.ID, idem, job.ID, job.CreatedAt, a.syncBudget())
		}
		return nil
	})
	if err != nil {
		return Job{}, fmt.Errorf("queue job: %w", err)
	}
	a.log.Info("job queued", "job", job.UUID, "user", user.Name, "numbers", len(numbers), "retry_of", job.RetryOf)
	a.pool.nudge()
	return job, nil
}

// runSync restores a few numbers now, concurrently, stores the finished
// job, and makes the first webhook attempt. It returns the job, its results
// and the webhook error, if the attempt failed.
func (a *app) runSync(ctx context.Context, user User, req bulkRequest, idem *idempotencyRequest) (Job, []NumberResult, string, error) {
	// A client that hangs up does not cut the restores short: they are
	// recorded whole either way.
	work := context.WithoutCancel(ctx)
	numbers, webhookURL := req.Numbers.strings(), req.WebhookURL // -sync-limit numbers at most
	job := a.newJob(user, req)
	done := make([]completedNumber, len(numbers))
	onPanic := func(v any, stack []byte) { a.log.Error("restore panicked", "panic", v, "stack", string(stack)) }
	if b, ok := a.backend.(batchRestorer); ok {
		// One call for every first attempt; any retries go on one by one.
		start := time.Now()
		outcomes := safeRestoreBatch(work, b, user.ID, numbers, onPanic)
		end := time.Now()
		for i, n := range numbers {
			done[i] = completedNumber{Number: n, Attempts: []attemptRecord{{Started: start, Finished: end, Outcome: outcomes[i]}}}
		}
	}
	var wg sync.WaitGroup
	for i, n := range numbers {
		wg.Go(func() {
			done[i] = completedNumber{Number: n, Attempts: restoreWithRetries(work, a.backend, a.retry, user.ID, n, done[i].Attempts, onPanic)}
		})
	}
	wg.Wait()
	lease := a.now().Add(a.cfg.webhookTimeout + 30*time.Second)
	idemKey := ""
	if idem != nil {
		idemKey = idem.key
	}
	err := a.store.storeCompletedJob(work, a.writer, &job, done, lease, idemKey)
	if err != nil {
		return Job{}, nil, "", fmt.Errorf("store job: %w", err)
	}
	a.metrics.jobsFinished.WithLabelValues(string(jobCompleted)).Inc()
	for _, d := range done {
		a.metrics.numbersFinishedAs(d.outcome(), 1)
	}
	a.log.Info("job completed", "job", job.UUID, "user", user.Name, "numbers", len(numbers),
		"succeeded", job.SuccessCount, "failed", job.FailureCount)
	results := make([]NumberResult, len(done))
	for i, d := range done {
		o := d.outcome()
		results[i] = NumberResult{
			Position: i, Number: d.Number, Status: o.status(), Message: o.Message, StatusCode: o.StatusCode,
			RequiresIdentityUpdate: o.RequiresIdentityUpdate, NeedsRegistration: o.NeedsRegistration,
			Attempts: len(d.Attempts), StartedAt: d.Attempts[0].Started, CompletedAt: d.Attempts[len(d.Attempts)-1].Finished,
		}
	}
	if webhookURL == "" {
		return job, results, "", nil
	}
	body, err := jobPayload{kind: finalPayload, job: job, results: sliceSource(results)}.bytes()
	if err != nil {
		return Job{}, nil, "", err
	}
	secrets, err := a.store.webhookSecrets(work, user.ID, a.now())
	if err != nil {
		return Job{}, nil, "", err
	}
	res, err := a.webhooks.attempt(work, job, secrets, body)
	if err != nil {
		a.log.Error("inline webhook attempt", "job", job.UUID, "err", err)
	}
	a.webhooks.nudge() // schedules the retry, if one is due
	return job, results, res.Err, nil
}
