package main

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
)

// uiJobsPageSize is how many jobs a page of the list shows.
const uiJobsPageSize = 50

// uiResultsPageSize is how many numbers a page of a job shows.
const uiResultsPageSize = 50

// jobsView is the jobs list.
type jobsView struct {
	uiBase
	Statuses   []jobStatus
	Status     string
	Query      string
	Jobs       []Job
	NextBefore string
	Live       bool   // a job on the page is still running: the list polls
	Self       string // this page's address, for the poll
}

// NextPage is the address of the next (older) page.
func (v jobsView) NextPage() string {
	q := url.Values{"before": {v.NextBefore}}
	if v.Status != "" {
		q.Set("status", v.Status)
	}
	return "/ui/jobs?" + q.Encode()
}

// uiJobs is GET /ui/jobs?status=&q=&before=: the user's jobs, newest first;
// q names a job to open.
func (a *app) uiJobs(w http.ResponseWriter, r *http.Request, s sessionRow) {
	q := r.URL.Query()
	view := jobsView{uiBase: uiBase{Title: "Jobs", Nav: "jobs", Session: &s}, Statuses: jobStatuses,
		Status: q.Get("status"), Query: q.Get("q"), Self: r.URL.RequestURI()}
	status := jobStatus(view.Status)
	if status != "" && !status.valid() {
		view.Error, view.Status, status = "There is no job status "+strconv.Quote(view.Status)+"; showing every job.", "", ""
	}
	if view.Query != "" {
		job, err := a.uiUserJob(r, s, view.Query)
		if err == nil {
			http.Redirect(w, r, "/ui/jobs/"+job.UUID, http.StatusSeeOther)
			return
		}
		if !isAPIError(err) {
			a.uiFail(w, r, &s, err)
			return
		}
		view.Error = "No job of yours has the ID " + strconv.Quote(view.Query) + "."
	}
	var beforeID int64 = math.MaxInt64
	if before := q.Get("before"); before != "" {
		job, err := a.uiUserJob(r, s, before)
		if err != nil {
			a.uiFail(w, r, &s, err)
			return
		}
		beforeID = job.ID
	}
	jobs, err := a.store.listJobs(r.Context(), s.User.ID, status, beforeID, uiJobsPageSize+1)
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	if len(jobs) > uiJobsPageSize {
		jobs = jobs[:uiJobsPageSize]
		view.NextBefore = jobs[len(jobs)-1].UUID
	}
	view.Jobs = jobs
	for _, j := range jobs {
		view.Live = view.Live || j.Status.active()
	}
	a.uiWrite(w, r, http.StatusOK, "jobs", view, "live-jobs")
}

// isAPIError reports whether err is a client's mistake.
func isAPIError(err error) bool {
	var e *apiError
	return errors.As(err, &e)
}

// uiUserJob returns the session user's job with that id; anything else,
// another user's job included, is a 404.
func (a *app) uiUserJob(r *http.Request, s sessionRow, id string) (Job, error) {
	parsed, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return Job{}, newAPIError(codeNotFound, "There is no job "+strconv.Quote(clipQuote(id))+".")
	}
	job, err := a.store.jobForUser(r.Context(), s.User.ID, parsed.String())
	if errors.Is(err, errNotFound) {
		return Job{}, newAPIError(codeNotFound, "There is no job "+parsed.String()+" among yours.")
	}
	return job, err
}

// jobView is a job's page.
type jobView struct {
	uiBase
	Job          Job
	Results      []NumberResult
	Offset       int
	PageSize     int
	PrevPage     string
	NextPage     string
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

// uiJob is GET /ui/jobs/{uuid}?offset=: the job's summary, a page of its
// numbers, its webhook with every delivery attempt and the payload.
func (a *app) uiJob(w http.ResponseWriter, r *http.Request, s sessionRow) {
	job, err := a.uiUserJob(r, s, mux.Vars(r)["uuid"])
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	a.uiShowJob(w, r, s, job, http.StatusOK, jobNotice(r.URL.Query()))
}

// jobNotice says what the action that led to a job's page did: the
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
	return uiBase{}
}

// uiShowJob renders a job's page with status, and the notice or error in
// msg.
func (a *app) uiShowJob(w http.ResponseWriter, r *http.Request, s sessionRow, job Job, status int, msg uiBase) {
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	offset = max(0, min(offset, job.Total-1))
	view := jobView{uiBase: uiBase{Title: "Job " + job.UUID, Nav: "jobs", Session: &s, Notice: msg.Notice, Error: msg.Error},
		Job: job, Offset: offset, PageSize: uiResultsPageSize, PayloadMax: payloadPreviewMax,
		Self: fmt.Sprintf("/ui/jobs/%s?offset=%d", job.UUID, offset)}
	show := a.liveResult(job)
	err := a.store.eachResult(r.Context(), job.ID, "", offset, uiResultsPageSize, func(n NumberResult) error {
		view.Results = append(view.Results, show(n))
		return nil
	})
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	if offset > 0 {
		view.PrevPage = fmt.Sprintf("/ui/jobs/%s?offset=%d", job.UUID, max(0, offset-uiResultsPageSize))
	}
	if offset+uiResultsPageSize < job.Total {
		view.NextPage = fmt.Sprintf("/ui/jobs/%s?offset=%d", job.UUID, offset+uiResultsPageSize)
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
	found := false
	if isDigits(number) {
		show := a.liveResult(job)
		err = a.store.eachResult(r.Context(), job.ID, number, 0, 1, func(n NumberResult) error {
			view.Result, found = show(n), true
			return nil
		})
	}
	if err == nil && !found {
		err = newAPIError(codeNotFound, "Number "+clipQuote(number)+" is not in this job.")
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

// uiCancel is POST /ui/jobs/{uuid}/cancel.
func (a *app) uiCancel(w http.ResponseWriter, r *http.Request, s sessionRow) {
	a.uiOnJob(w, r, s, func(job Job) (Job, string, error) {
		job, cancelled, err := a.cancel(r.Context(), job)
		return job, "done=cancelled&n=" + strconv.Itoa(cancelled), err
	})
}

// uiRetry is POST /ui/jobs/{uuid}/retry: a new job of the job's failed
// numbers (those with the status codes given, if any), as the API's
// retry makes it, and then its page.
func (a *app) uiRetry(w http.ResponseWriter, r *http.Request, s sessionRow) {
	a.uiOnJob(w, r, s, func(job Job) (Job, string, error) {
		var codes []string
		if c := strings.TrimSpace(r.PostFormValue("status_code")); c != "" {
			codes = []string{c}
		}
		parsed, err := parseStatusCodes(codes)
		if err != nil {
			return job, "", err
		}
		req, err := a.retryFailures(r.Context(), job, parsed, nil)
		if err != nil {
			return job, "", err
		}
		retry, err := a.uiStartJob(r.Context(), s, req)
		if err != nil {
			return job, "", err
		}
		return retry, "done=retried", nil
	})
}

// uiRedeliver is POST /ui/jobs/{uuid}/redeliver.
func (a *app) uiRedeliver(w http.ResponseWriter, r *http.Request, s sessionRow) {
	a.uiOnJob(w, r, s, func(job Job) (Job, string, error) {
		job, res, err := a.redeliver(r.Context(), job)
		if !res.ok() {
			return job, "done=undelivered", err
		}
		return job, "done=delivered", err
	})
}

// uiOnJob runs an action on the session user's job that the address names,
// then shows the job with what the action did (done, a query of jobNotice);
// an action refused for a client's reason shows the job with why.
func (a *app) uiOnJob(w http.ResponseWriter, r *http.Request, s sessionRow, act func(Job) (Job, string, error)) {
	job, err := a.uiUserJob(r, s, mux.Vars(r)["uuid"])
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	job, done, err := act(job)
	if err != nil {
		a.uiActionFailed(w, r, s, job, err)
		return
	}
	http.Redirect(w, r, "/ui/jobs/"+job.UUID+"?"+done, http.StatusSeeOther)
}

// uiActionFailed shows the job again with why an action was refused (a
// client's mistake), or the error page.
func (a *app) uiActionFailed(w http.ResponseWriter, r *http.Request, s sessionRow, job Job, err error) {
	var e *apiError
	if !errors.As(err, &e) || e.code == codeNotFound {
		a.uiFail(w, r, &s, err)
		return
	}
	a.uiShowJob(w, r, s, job, httpStatus[e.code], uiBase{Error: "Not done: " + e.message + "."})
}
