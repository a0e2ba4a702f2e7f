package main

import "slices"

// jobStatus is where a job is in its life: pending (queued, nothing tried),
// processing (under way), then completed (every number final) or cancelled.
type jobStatus string

// The job statuses, as stored and as the API shows them.
const (
	jobPending    jobStatus = "pending"
	jobProcessing jobStatus = "processing"
	jobCompleted  jobStatus = "completed"
	jobCancelled  jobStatus = "cancelled"
)

// jobStatuses are the job statuses, in the order of a job's life.
var jobStatuses = []jobStatus{jobPending, jobProcessing, jobCompleted, jobCancelled}

// valid reports whether s is one of jobStatuses.
func (s jobStatus) valid() bool { return slices.Contains(jobStatuses, s) }

// active reports whether the job still has numbers to restore.
func (s jobStatus) active() bool { return s == jobPending || s == jobProcessing }

// numberStatus is the state of one number of a job. processing is never
// stored: the API shows a pending number a worker holds as processing.
type numberStatus string

// The number statuses.
const (
	numberPending    numberStatus = "pending"
	numberProcessing numberStatus = "processing"
	numberSuccess    numberStatus = "success"
	numberFailed     numberStatus = "failed"
	numberCancelled  numberStatus = "cancelled"
)

// final reports whether the number has reached its last state.
func (s numberStatus) final() bool {
	return s == numberSuccess || s == numberFailed || s == numberCancelled
}

// webhookState is where a job's webhook message is in the outbox.
type webhookState string

// The webhook states.
const (
	webhookNone      webhookState = "none"      // no webhook_url
	webhookWaiting   webhookState = "waiting"   // the job is not final yet
	webhookPending   webhookState = "pending"   // due at webhook_next_at
	webhookDelivered webhookState = "delivered" // a receiver answered 2xx
	webhookFailed    webhookState = "failed"    // given up, or refused by the address policy
)

// initialWebhookState is the outbox state of a new job.
func initialWebhookState(url string) webhookState {
	if url == "" {
		return webhookNone
	}
	return webhookWaiting
}

// msgCancelled is the message of a number cancelled before it was tried.
const msgCancelled = "Restore cancelled"
