package main

import (
	"errors"
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
	Jobs       []jobRow
	NextBefore string
	Live       bool   // a job on the page is still running: the list polls
	Self       string // this page's address, for the poll
}

// jobRow is a job of a list, with its progress.
type jobRow struct {
	Job
	Progress *JobProgress
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
// q names a job to open, or a number to look up.
func (a *app) uiJobs(w http.ResponseWriter, r *http.Request, s sessionRow) {
	q := r.URL.Query()
	view := jobsView{uiBase: uiBase{Title: "Jobs", Nav: "jobs", Session: &s}, Statuses: jobStatuses,
		Status: q.Get("status"), Query: q.Get("q"), Self: r.URL.RequestURI()}
	status := jobStatus(view.Status)
	if status != "" && !status.valid() {
		view.Error, view.Status, status = "There is no job status "+strconv.Quote(view.Status)+"; showing every job.", "", ""
	}
	if isDigits(view.Query) {
		http.Redirect(w, r, "/ui/numbers?number="+view.Query, http.StatusSeeOther)
		return
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
	for _, j := range jobs {
		view.Jobs = append(view.Jobs, jobRow{Job: j, Progress: a.progress.progress(j)})
		view.Live = view.Live || j.Status.active()
	}
	a.uiWrite(w, r, http.StatusOK, "jobs", view, "live-jobs")
}

// isAPIError reports whether err is a client's mistake.
func isAPIError(err error) bool {
	var e *apiError
	return errors.As(err, &e)
}

// isAPIErrorAs is errors.As for a client's mistake.
func isAPIErrorAs(err error, e **apiError) bool { return errors.As(err, e) }

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
