package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"time"
)

// timeLayout is how every timestamp leaves the API: UTC, to the second.
const timeLayout = "2006-01-02 15:04:05"

// jsonTime formats a time for the API; the zero time is null.
func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(timeLayout)
	return &s
}

// jobSummaryJSON is a job's summary: what comes before "results" in every
// body about a job, and an entry of the job lists. The server writes it,
// and the client and the bench read it.
type jobSummaryJSON struct {
	JobUUID        string    `json:"job_uuid"`
	Status         jobStatus `json:"status"`
	TotalNumbers   int       `json:"total_numbers"`
	SuccessCount   int       `json:"success_count"`
	FailureCount   int       `json:"failure_count"`
	CancelledCount int       `json:"cancelled_count,omitempty"`
	WebhookURL     *string   `json:"webhook_url"`
	CreatedAt      *string   `json:"created_at"`
	StartedAt      *string   `json:"started_at"`
	CompletedAt    *string   `json:"completed_at"`
	// RetryOf and RetriedBy link a retry of a job's failures and the job
	// (POST /v3/bulk_restore_retry); each is left out where it does not apply.
	RetryOf   string   `json:"retry_of,omitempty"`
	RetriedBy []string `json:"retried_by,omitempty"`
	*JobProgress
	FilteredNumber string `json:"filtered_number,omitempty"`
}

// JobProgress is how far a job has come, in the status body and the job
// list (not in the final payload, where the job is over): nil leaves both
// fields out. It is exported because encoding/json can fill an embedded
// pointer (as the client decodes a summary) only of an exported type.
type JobProgress struct {
	ProcessedCount        int     `json:"processed_count"`         // success + failure + cancelled
	EstimatedCompletionAt *string `json:"estimated_completion_at"` // null when finished or not yet estimable
}

// summarize is a job's summary.
func summarize(j Job) jobSummaryJSON {
	return jobSummaryJSON{
		JobUUID: j.UUID, Status: j.Status, TotalNumbers: j.Total,
		SuccessCount: j.SuccessCount, FailureCount: j.FailureCount, CancelledCount: j.CancelledCount,
		WebhookURL: nullableString(j.WebhookURL),
		CreatedAt:  jsonTime(j.CreatedAt), StartedAt: jsonTime(j.StartedAt), CompletedAt: jsonTime(j.CompletedAt),
		RetryOf: j.RetryOf, RetriedBy: j.RetriedBy,
	}
}

// processed is how many numbers have an outcome: processed_count when the
// server sent it, else the sum of the counts.
func (s jobSummaryJSON) processed() int {
	if s.JobProgress != nil {
		return s.ProcessedCount
	}
	return s.SuccessCount + s.FailureCount + s.CancelledCount
}

// settled reports whether no number of the job will change any more: it
// is completed, or cancelled with its numbers in flight all recorded.
func (s jobSummaryJSON) settled() bool {
	return s.Status == jobCompleted || (s.Status == jobCancelled && s.processed() >= s.TotalNumbers)
}

// finalResultJSON is one number in the final payload (synchronous answer
// and webhook), exactly as the contract shows it.
type finalResultJSON struct {
	Number                 string       `json:"number"`
	Status                 numberStatus `json:"status"`
	Message                string       `json:"message"`
	StatusCode             *int         `json:"status_code"` // null for a cancelled number
	RequiresIdentityUpdate int          `json:"requires_identity_update"`
	NeedsRegistration      int          `json:"needs_registration,omitempty"`
}

// statusResultJSON is one number in the status answer: its current state,
// with attempts and timestamps; message and status_code are null until the
// number has an outcome.
type statusResultJSON struct {
	Number                 string       `json:"number"`
	Status                 numberStatus `json:"status"`
	Message                *string      `json:"message"`
	StatusCode             *int         `json:"status_code"`
	Attempts               int          `json:"attempts"`
	StartedAt              *string      `json:"started_at"`
	CompletedAt            *string      `json:"completed_at"`
	RequiresIdentityUpdate int          `json:"requires_identity_update"`
	NeedsRegistration      int          `json:"needs_registration,omitempty"`
}

// statusTailJSON is what the status answer reports after "results".
type statusTailJSON struct {
	WebhookAttempts    int                  `json:"webhook_attempts"`
	WebhookDeliveredAt *string              `json:"webhook_delivered_at"`
	WebhookError       *string              `json:"webhook_error"`
	WebhookAttemptLog  []webhookAttemptJSON `json:"webhook_attempt_log"`
}

// finalTailJSON is what a synchronous answer reports after "results".
type finalTailJSON struct {
	WebhookError string `json:"webhook_error,omitempty"`
}

// payloadKind selects the shape writeJob produces.
type payloadKind int

// The payload kinds.
const (
	// finalPayload is the synchronous 200 body and the webhook body.
	finalPayload payloadKind = iota
	// statusPayload is the status endpoint's body.
	statusPayload
)

// resultSource yields a job's numbers in order; it stops at fn's first error.
type resultSource func(fn func(NumberResult) error) error

// sliceSource is a resultSource over numbers already in memory.
func sliceSource(results []NumberResult) resultSource {
	return func(fn func(NumberResult) error) error {
		for _, r := range results {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// jobPayload describes one JSON body about a job.
type jobPayload struct {
	kind           payloadKind
	job            Job
	results        resultSource
	filteredNumber string
	progress       *JobProgress         // statusPayload only
	webhookError   string               // finalPayload only: the inline delivery's failure
	attemptLog     []webhookAttemptJSON // statusPayload only: the last delivery attempts
}

// write streams the body to w, one result at a time, so that a job of
// 100,000 numbers never sits in memory whole.
func (p jobPayload) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	if err := p.encode(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// bytes renders the whole body in memory (webhook bodies are signed, so
// they must be known before they are sent; a synchronous reply is sent
// whole). It writes straight into the buffer: a 32 KiB bufio.Writer in
// front of it, new for every reply, was 2.4% of the process's CPU under
// synchronous load.
func (p jobPayload) bytes() ([]byte, error) {
	var b bytes.Buffer
	err := p.encode(&b)
	return b.Bytes(), err
}

// payloadWriter is what encode writes to: a bufio.Writer or a bytes.Buffer.
type payloadWriter interface {
	io.Writer
	io.ByteWriter
	io.StringWriter
}

// encode writes the body to bw, one result at a time.
func (p jobPayload) encode(bw payloadWriter) error {
	j := p.job
	h := summarize(j)
	h.FilteredNumber = p.filteredNumber
	h.JobProgress = p.progress
	head, err := json.Marshal(h)
	if err != nil {
		return err
	}
	bw.Write(head[:len(head)-1])
	bw.WriteString(`,"results":[`)
	first := true
	err = p.results(func(r NumberResult) error {
		b, err := json.Marshal(p.resultJSON(r))
		if err != nil {
			return err
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	bw.WriteByte(']')
	var tail any = finalTailJSON{WebhookError: p.webhookError}
	if p.kind == statusPayload {
		tail = statusTailJSON{
			WebhookAttempts:    j.WebhookAttempts,
			WebhookDeliveredAt: jsonTime(j.WebhookDeliveredAt),
			WebhookError:       nullableString(j.WebhookError),
			WebhookAttemptLog:  p.attemptLog,
		}
	}
	t, err := json.Marshal(tail)
	if err != nil {
		return err
	}
	if len(t) > 2 {
		bw.WriteByte(',')
		bw.Write(t[1:])
	} else {
		bw.WriteByte('}')
	}
	return bw.WriteByte('\n')
}

// resultJSON shapes one number for this payload.
func (p jobPayload) resultJSON(r NumberResult) any {
	if p.kind == finalPayload {
		return finalResult(r)
	}
	return statusResult(r)
}

// finalResult shapes one number for the final payload.
func finalResult(r NumberResult) finalResultJSON {
	return finalResultJSON{
		Number: r.Number, Status: r.Status, Message: r.Message, StatusCode: statusCode(r.StatusCode),
		RequiresIdentityUpdate: boolInt(r.RequiresIdentityUpdate), NeedsRegistration: boolInt(r.NeedsRegistration),
	}
}

// statusResult shapes one number for the status endpoint.
func statusResult(r NumberResult) statusResultJSON {
	out := statusResultJSON{
		Number: r.Number, Status: r.Status, Attempts: r.Attempts,
		StartedAt: jsonTime(r.StartedAt), CompletedAt: jsonTime(r.CompletedAt),
		RequiresIdentityUpdate: boolInt(r.RequiresIdentityUpdate), NeedsRegistration: boolInt(r.NeedsRegistration),
	}
	if r.Status.final() {
		out.Message = &r.Message
		out.StatusCode = statusCode(r.StatusCode)
	}
	return out
}

// statusCode is a result's status code for JSON; zero (no outcome) is null.
func statusCode(code int) *int {
	if code == 0 {
		return nil
	}
	return &code
}

// nullableString maps the empty string to null.
func nullableString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
