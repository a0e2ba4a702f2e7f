package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/uuid"
)

// jobFromQuery reads and checks job_uuid and returns the user's job.
func (a *app) jobFromQuery(r *http.Request) (Job, error) {
	id := r.URL.Query().Get("job_uuid")
	if id == "" {
		return Job{}, newAPIError(codeInvalid, "job_uuid is required")
	}
	parsed, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return Job{}, newAPIError(codeInvalid, "job_uuid must be a UUID like 8f6c1f0e-23d2-4717-8c8e-1a518e5738f0")
	}
	job, err := a.store.jobForUser(r.Context(), currentUser(r).ID, parsed.String())
	if errors.Is(err, errNotFound) {
		return Job{}, newAPIError(codeNotFound, "job not found")
	}
	return job, err
}

// cancelResultJSON is the body of a cancellation: the job's counts, with
// cancelled_count always present, and what the cancellation did.
type cancelResultJSON struct {
	JobUUID        string    `json:"job_uuid"`
	Status         jobStatus `json:"status"`
	TotalNumbers   int       `json:"total_numbers"`
	SuccessCount   int       `json:"success_count"`
	FailureCount   int       `json:"failure_count"`
	CancelledCount int       `json:"cancelled_count"`
	Message        string    `json:"message"`
}

// bulkRestoreCancel is POST /v3/bulk_restore_cancel?job_uuid=.
func (a *app) bulkRestoreCancel(w http.ResponseWriter, r *http.Request) {
	job, err := a.jobFromQuery(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	job, cancelled, err := a.cancel(r.Context(), job)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, cancelResultJSON{
		JobUUID: job.UUID, Status: job.Status, TotalNumbers: job.Total, SuccessCount: job.SuccessCount,
		FailureCount: job.FailureCount, CancelledCount: job.CancelledCount,
		Message: fmt.Sprintf("Job cancelled: %d numbers not yet started will not be restored", cancelled),
	})
}

// redeliverJSON is the body of a redelivery.
type redeliverJSON struct {
	JobUUID            string  `json:"job_uuid"`
	WebhookURL         string  `json:"webhook_url"`
	Delivered          bool    `json:"delivered"`
	WebhookAttempts    int     `json:"webhook_attempts"`
	WebhookDeliveredAt *string `json:"webhook_delivered_at"`
	WebhookError       *string `json:"webhook_error"`
}

// bulkRestoreWebhook is POST /v3/bulk_restore_webhook?job_uuid=: deliver
// the final payload of a finished job again, now, and say how it went. A
// failure is retried on the usual schedule.
func (a *app) bulkRestoreWebhook(w http.ResponseWriter, r *http.Request) {
	job, err := a.jobFromQuery(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	job, res, err := a.redeliver(r.Context(), job)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, redeliverJSON{
		JobUUID: job.UUID, WebhookURL: job.WebhookURL, Delivered: res.ok(), WebhookAttempts: job.WebhookAttempts,
		WebhookDeliveredAt: jsonTime(job.WebhookDeliveredAt), WebhookError: nullableString(res.Err),
	})
}

// webhookAttemptJSON is one entry of webhook_attempt_log.
type webhookAttemptJSON struct {
	Attempt    int     `json:"attempt"`
	At         *string `json:"at"`
	HTTPStatus *int    `json:"http_status"`
	Error      *string `json:"error"`
	DurationMs int64   `json:"duration_ms"`
}

// jobListJSON is the body of GET /v3/bulk_restore_jobs.
type jobListJSON struct {
	Jobs       []jobSummaryJSON `json:"jobs"`
	NextBefore *string          `json:"next_before"` // pass as before= for the next page; null on the last
}

// listJobsMax caps one page of the job list.
const listJobsMax = 500

// parseJobListQuery reads the status, limit and before of a job list:
// before is a job_uuid from an earlier page, "" for the first.
func parseJobListQuery(q url.Values) (status jobStatus, limit int, before string, err error) {
	status = jobStatus(q.Get("status"))
	if status != "" && !status.valid() {
		return "", 0, "", newAPIError(codeInvalid, "status must be pending, processing, completed or cancelled")
	}
	limit = 50
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > listJobsMax {
			return "", 0, "", newAPIError(codeInvalid, fmt.Sprintf("limit must be an integer from 1 to %d", listJobsMax))
		}
		limit = n
	}
	if s := q.Get("before"); s != "" {
		id, err := uuid.Parse(s)
		if err != nil || len(s) != 36 {
			return "", 0, "", newAPIError(codeInvalid, "before must be a job_uuid from an earlier page")
		}
		before = id.String()
	}
	return status, limit, before, nil
}

// bulkRestoreJobs is GET /v3/bulk_restore_jobs?status=&limit=&before=: the
// user's jobs, newest first, a page at a time.
func (a *app) bulkRestoreJobs(w http.ResponseWriter, r *http.Request) {
	status, limit, before, err := parseJobListQuery(r.URL.Query())
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	user := currentUser(r)
	beforeID, err := a.beforeJobID(r.Context(), user, before)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	jobs, err := a.store.listJobs(r.Context(), user.ID, status, beforeID, limit+1)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	out := jobListJSON{Jobs: []jobSummaryJSON{}}
	for i, j := range jobs {
		if i == limit {
			out.NextBefore = &jobs[i-1].UUID
			break
		}
		sum := summarize(j)
		sum.JobProgress = a.progress.progress(j)
		out.Jobs = append(out.Jobs, sum)
	}
	writeJSON(w, http.StatusOK, out)
}
