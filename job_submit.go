package main

import "context"

// submitted is what submitting a restore did: the job, restored now (with
// its results and the error of the first webhook attempt, if it failed) or
// queued.
type submitted struct {
	job          Job
	queued       bool
	results      []NumberResult // restored now only
	webhookError string
}

// startJob restores a validated request's numbers now when they are at most
// -sync-limit, else queues them. The API renders what it returns as its
// 200 or 202, and the console as a page; neither decides anything else.
func (a *app) startJob(ctx context.Context, user User, req bulkRequest, idem *idempotencyRequest) (submitted, error) {
	if len(req.Numbers) <= a.cfg.syncLimit {
		job, results, webhookErr, err := a.runSync(ctx, user, req, idem)
		return submitted{job: job, results: results, webhookError: webhookErr}, err
	}
	job, err := a.enqueue(ctx, user, req, idem)
	return submitted{job: job, queued: true}, err
}
