package main

import (
	"net/http"
	"net/url"
	"time"
)

// adminJobsView is every user's jobs.
type adminJobsView struct {
	uiBase
	Statuses   []jobStatus
	Status     string
	User       string
	Jobs       []adminJobJSON
	NextBefore string
}

// NextPage is the address of the next (older) page.
func (v adminJobsView) NextPage() string {
	q := url.Values{"before": {v.NextBefore}}
	for k, val := range map[string]string{"status": v.Status, "user": v.User} {
		if val != "" {
			q.Set(k, val)
		}
	}
	return "/ui/admin/jobs?" + q.Encode()
}

// uiAdminJobs is GET /ui/admin/jobs?user=&status=&before=: every user's
// jobs (or one user's), newest first, as the admin API lists them.
func (a *app) uiAdminJobs(w http.ResponseWriter, r *http.Request, s sessionRow) {
	q := r.URL.Query()
	view := adminJobsView{uiBase: uiBase{Title: "All jobs", Nav: "admin-jobs", Session: &s}, Statuses: jobStatuses,
		Status: q.Get("status"), User: q.Get("user")}
	status := jobStatus(view.Status)
	if status != "" && !status.valid() {
		view.Error, view.Status, status = "There is no job status "+clipQuote(view.Status)+"; showing every job.", "", ""
	}
	list, err := a.adminOps().listJobs(r.Context(), view.User, status, uiJobsPageSize, q.Get("before"))
	if isAPIError(err) {
		view.Error = "Not found: " + err.Error() + "."
		a.uiWrite(w, r, http.StatusNotFound, "admin_jobs", view)
		return
	}
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	view.Jobs = list.Jobs
	if list.NextBefore != nil {
		view.NextBefore = *list.NextBefore
	}
	a.uiWrite(w, r, http.StatusOK, "admin_jobs", view)
}

// queueView is the live view of the queue.
type queueView struct {
	uiBase
	Queued     int            // numbers waiting in queued jobs
	Active     []adminJobJSON // jobs pending or processing
	Throughput float64        // numbers a second over the last progressWindow, across them
	Window     time.Duration
}

// uiAdminQueue is GET /ui/admin/queue: the numbers waiting, the jobs under
// way with their progress, and how many numbers a second they finish;
// it updates itself every 2 seconds.
func (a *app) uiAdminQueue(w http.ResponseWriter, r *http.Request, s sessionRow) {
	view := queueView{uiBase: uiBase{Title: "Queue", Nav: "queue", Session: &s}, Window: progressWindow,
		Queued: int(a.store.queuedNumbers())}
	ops, now, done := a.adminOps(), a.now(), 0
	for _, st := range []jobStatus{jobProcessing, jobPending} {
		list, err := ops.listJobs(r.Context(), "", st, listJobsMax, "")
		if err != nil {
			a.uiFail(w, r, &s, err)
			return
		}
		for _, j := range list.Jobs {
			view.Active = append(view.Active, j)
			if id, err := a.store.jobIDByUUID(r.Context(), j.JobUUID); err == nil {
				n, _ := a.progress.recent(id, now)
				done += n
			}
		}
	}
	view.Throughput = float64(done) / progressWindow.Seconds()
	a.uiWrite(w, r, http.StatusOK, "admin_queue", view, "live-queue")
}
