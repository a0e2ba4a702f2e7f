package main

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// The operations on a job that the API and the console share: each
// returns what it did or an *apiError for the client's mistakes, and never
// speaks HTTP.

// cancel cancels a job's numbers that have not started and returns the
// job as it is after, with how many numbers were cancelled. On PostgreSQL,
// when other instances hold numbers of the job, it waits (cancelAckWait
// at most) for them to cancel those their workers have not started, and
// counts those too (see store_pg_cancel.go).
func (a *app) cancel(ctx context.Context, job Job) (Job, int, error) {
	var cancelled int
	var holders cancelHolders
	acks := a.pool.cancelAcks.expect(job.ID)
	defer a.pool.cancelAcks.forget(job.ID, acks)
	err := a.writer.do(ctx, func(tx *sql.Tx) (err error) {
		// Taken inside the write, so no worker can start a number between
		// the snapshot of started numbers and the cancellation.
		started := a.pool.cancelJob(job.ID)
		if cancelled, err = a.store.cancelJobNumbers(tx, job.ID, started, a.now()); err != nil {
			return err
		}
		holders, err = a.store.announceCancel(tx, job.ID)
		return err
	})
	var finished *errJobFinished
	switch {
	case errors.As(err, &finished):
		return job, 0, newAPIError(codeConflict, "job is already "+string(finished.status)+
			"; only pending or processing jobs can be cancelled")
	case errors.Is(err, errNotFound):
		return job, 0, newAPIError(codeNotFound, "job not found")
	case err != nil:
		return job, 0, err
	}
	a.metrics.jobsFinished.WithLabelValues(string(jobCancelled)).Inc()
	a.webhooks.nudge()
	if holders.any() {
		now := time.Now()
		if late := a.pool.cancelAcks.awaitHolders(ctx, acks, holders, now.Add(unconnectedHolderWait), now.Add(cancelAckWait)); len(late) > 0 {
			a.log.Warn("instances holding numbers of a cancelled job did not confirm in time; their workers skip the numbers not started when they next check the job",
				"job", job.UUID, "instances", late)
		}
	}
	job, err = a.store.jobByID(ctx, job.ID)
	if holders.any() {
		cancelled = job.CancelledCount // theirs too: a job is cancelled once, so every cancelled number is this cancellation's
	}
	a.log.Info("job cancelled", "job", job.UUID, "numbers_cancelled", cancelled)
	return job, cancelled, err
}

// redeliver delivers a finished job's final payload again, now, and
// returns the job after the attempt with how it went. A failure is retried
// on the usual schedule.
func (a *app) redeliver(ctx context.Context, job Job) (Job, deliveryResult, error) {
	switch {
	case job.WebhookURL == "":
		return job, deliveryResult{}, newAPIError(codeConflict, "job has no webhook_url")
	case job.WebhookState == webhookWaiting || job.Status.active():
		return job, deliveryResult{}, newAPIError(codeConflict, "job is not finished yet; its webhook is sent when it is")
	}
	ctx = context.WithoutCancel(ctx)
	body, err := a.store.finalPayload(ctx, job)
	if err != nil {
		return job, deliveryResult{}, err
	}
	secrets, err := a.store.webhookSecrets(ctx, job.UserID, a.now())
	if err != nil {
		return job, deliveryResult{}, err
	}
	res, err := a.webhooks.attempt(ctx, job, secrets, body)
	if err != nil {
		return job, res, err
	}
	a.webhooks.nudge()
	job, err = a.store.jobByID(ctx, job.ID)
	return job, res, err
}
