package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gorilla/mux"
)

// jobView is a job's page.
type jobView struct {
	uiBase
	Job          Job
	Progress     *JobProgress
	Statuses     []numberStatus // what result_status takes
	ResultStatus string         // the results shown: one state, or "" for all
	Results      []NumberResult
	Offset       int
	PageSize     int
	PrevPage     string
	NextPage     string
	CSV          string // the address of the results shown, as CSV
	Deliveries   []webhookAttemptJSON
	Payload      string
	PayloadWhole bool
	PayloadMax   int
	CanCancel    bool
	CanRedeliver bool
	CanRetry     bool
	Live         bool   // the job or its webhook may still change: the page polls
	Self         string // this page's address, for the poll
}

// uiJob is GET /ui/jobs/{uuid}?result_status=&offset=: the job's summary
// and progress, a page of its numbers (of one state, if asked), its webhook
// with every delivery attempt and the payload.
func (a *app) uiJob(w http.ResponseWriter, r *http.Request, s sessionRow) {
	job, err := a.uiUserJob(r, s, mux.Vars(r)["uuid"])
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	a.uiShowJob(w, r, s, job, http.StatusOK, jobNotice(r.URL.Query()))
}

// jobNotice says what the action that led to a page did: the
// redirect after it names the action (done=) and, for a cancellation, how
// many numbers it stopped (n=). Only these fixed texts are shown, never
// text from the address.
func jobNotice(q url.Values) uiBase {
	switch q.Get("done") {
	case "submitted":
		return uiBase{Notice: "Restore submitted."}
	case "retried":
		return uiBase{Notice: "A new job retries the failures."}
	case "cancelled":
		n, _ := strconv.Atoi(q.Get("n"))
		return uiBase{Notice: fmt.Sprintf("Job cancelled: %d numbers not yet started will not be restored.", n)}
	case "delivered":
		return uiBase{Notice: "The webhook was delivered again."}
	case "undelivered":
		return uiBase{Error: "The webhook could not be delivered again (see the last attempt below); it is retried on the usual schedule."}
	}
	user := q.Get("user")
	if !userNamePattern.MatchString(user) {
		return uiBase{}
	}
	switch q.Get("done") {
	case "deleted":
		return uiBase{Notice: "User " + user + " was deleted, with its jobs and inventory."}
	case "imported":
		n, _ := strconv.Atoi(q.Get("n"))
		deleted, _ := strconv.Atoi(q.Get("deleted"))
		return uiBase{Notice: fmt.Sprintf("Inventory of %s: %d rows imported, %d numbers missing from the file deleted.", user, n, deleted)}
	}
	return uiBase{}
}

// jobPageURL is the address of a page of a job's results.
func jobPageURL(job Job, resultStatus string, offset int) string {
	q := url.Values{}
	if resultStatus != "" {
		q.Set("result_status", resultStatus)
	}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	if len(q) == 0 {
		return "/ui/jobs/" + job.UUID
	}
	return "/ui/jobs/" + job.UUID + "?" + q.Encode()
}

// resultFilterOf reads the result_status a console page asks for: one state
// or none, through the API's own parsing.
func resultFilterOf(q url.Values) (string, resultFilter, error) {
	f := resultFilter{limit: -1}
	rs := q.Get("result_status")
	if rs == "" {
		return "", f, nil
	}
	statuses, err := parseResultStatuses(rs)
	if err != nil || len(statuses) != 1 {
		return "", f, newAPIError(codeInvalid, "There is no result status "+strconv.Quote(clipQuote(rs))+"; showing every number.")
	}
	f.statuses = statuses
	return rs, f, nil
}

// uiShowJob renders a job's page with status, and the notice or error in
// msg.
func (a *app) uiShowJob(w http.ResponseWriter, r *http.Request, s sessionRow, job Job, status int, msg uiBase) {
	q := r.URL.Query()
	resultStatus, f, err := resultFilterOf(q)
	if err != nil && msg.Error == "" {
		msg.Error = err.Error()
	}
	offset, _ := strconv.Atoi(q.Get("offset"))
	f.offset, f.limit = max(0, offset), uiResultsPageSize+1
	view := jobView{uiBase: uiBase{Title: "Job " + job.UUID, Nav: "jobs", Session: &s, Notice: msg.Notice, Error: msg.Error},
		Job: job, Progress: a.progress.progress(job), Statuses: resultStatuses, ResultStatus: resultStatus,
		Offset: f.offset, PageSize: uiResultsPageSize, PayloadMax: payloadPreviewMax,
		Self: jobPageURL(job, resultStatus, f.offset)}
	view.CSV = "/ui/jobs/" + job.UUID + "/results.csv"
	if resultStatus != "" {
		view.CSV += "?result_status=" + url.QueryEscape(resultStatus)
	}
	results, err := a.jobResults(r.Context(), job, f)
	if err == nil {
		err = results(func(n NumberResult) error {
			view.Results = append(view.Results, n)
			return nil
		})
	}
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	if len(view.Results) > uiResultsPageSize {
		view.Results = view.Results[:uiResultsPageSize]
		view.NextPage = jobPageURL(job, resultStatus, f.offset+uiResultsPageSize)
	}
	if f.offset > 0 {
		view.PrevPage = jobPageURL(job, resultStatus, max(0, f.offset-uiResultsPageSize))
	}
	if job.WebhookURL != "" {
		if view.Deliveries, err = a.store.webhookAttemptLog(r.Context(), job.ID, max(job.WebhookAttempts, 1)); err != nil {
			a.uiFail(w, r, &s, err)
			return
		}
		if !job.Status.active() {
			if view.Payload, view.PayloadWhole, err = a.payloadPreview(r.Context(), job); err != nil {
				a.uiFail(w, r, &s, err)
				return
			}
		}
	}
	view.CanCancel = job.Status.active()
	view.CanRedeliver = job.WebhookURL != "" && !job.Status.active() && job.WebhookState != webhookWaiting
	view.CanRetry = summarize(job).settled() && job.FailureCount > 0
	view.Live = job.Status.active() || job.WebhookState == webhookWaiting || job.WebhookState == webhookPending
	a.uiWrite(w, r, status, "job", view, "live-job")
}

// uiResultsCSV is GET /ui/jobs/{uuid}/results.csv?result_status=: the
// job's results (of one state, if asked) as the status endpoint's CSV,
// streamed, as a download.
func (a *app) uiResultsCSV(w http.ResponseWriter, r *http.Request, s sessionRow) {
	job, err := a.uiUserJob(r, s, mux.Vars(r)["uuid"])
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	_, f, err := resultFilterOf(r.URL.Query())
	var results resultSource
	if err == nil {
		results, err = a.jobResults(r.Context(), job, f)
	}
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	a.writeResultsCSV(w, r, job, results)
}

// numberView is the page of one number of a job.
type numberView struct {
	uiBase
	Job      Job
	Result   NumberResult
	Attempts []numberAttempt
}

// uiNumber is GET /ui/jobs/{uuid}/numbers/{number}: the number's result
// and every attempt.
func (a *app) uiNumber(w http.ResponseWriter, r *http.Request, s sessionRow) {
	job, err := a.uiUserJob(r, s, mux.Vars(r)["uuid"])
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	number := mux.Vars(r)["number"]
	view := numberView{uiBase: uiBase{Title: "Number " + number, Nav: "jobs", Session: &s}, Job: job}
	var results resultSource
	if !isDigits(number) {
		err = newAPIError(codeNotFound, fmt.Sprintf("Number %q is not in this job.", clipQuote(number)))
	} else if results, err = a.jobResults(r.Context(), job, resultFilter{number: number, limit: 1}); err == nil {
		err = results(func(n NumberResult) error {
			view.Result = n
			return nil
		})
	}
	if err == nil {
		view.Attempts, err = a.store.numberAttempts(r.Context(), job.ID, view.Result.Position)
	}
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	a.uiWrite(w, r, http.StatusOK, "number", view)
}

// uiWebhookPayload is GET /ui/jobs/{uuid}/webhook-payload: a finished
// job's webhook payload, whole, as a download.
func (a *app) uiWebhookPayload(w http.ResponseWriter, r *http.Request, s sessionRow) {
	job, err := a.uiUserJob(r, s, mux.Vars(r)["uuid"])
	if err == nil && (job.WebhookURL == "" || job.Status.active()) {
		err = newAPIError(codeNotFound, "This job has no webhook payload (yet).")
	}
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="webhook_`+job.UUID+`.json"`)
	if err := a.webhookPayload(r.Context(), job).write(w); err != nil {
		a.log.Warn("write webhook payload", "job", job.UUID, "err", err)
	}
}
