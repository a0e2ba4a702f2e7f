package main

import (
	"net/http"
	"strconv"
)

// bulkRestoreStatus is GET /v3/bulk_restore_status.
func (a *app) bulkRestoreStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("job_uuid") == "" {
		writeError(w, r, a.log, newAPIError(codeInvalid, "job_uuid is required"))
		return
	}
	number := q.Get("number")
	if q.Has("number") && !isDigits(number) {
		writeError(w, r, a.log, newAPIError(codeInvalid, "number must be digits only"))
		return
	}
	offset, limit, err := pageParams(q.Get("offset"), q.Get("limit"))
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if r.Method == http.MethodHead {
		limit = 0 // no body goes out: read no rows
	}
	job, err := a.jobFromQuery(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	attemptLog, err := a.store.webhookAttemptLog(r.Context(), job.ID, 20)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	active := job.Status.active() || job.Status == jobCancelled
	current := func(n NumberResult) NumberResult {
		if active && n.Status == numberPending && a.pool.isProcessing(job.ID, n.Position) {
			n.Status = numberProcessing
		}
		return n
	}
	results := func(fn func(NumberResult) error) error {
		return a.store.eachResult(r.Context(), job.ID, "", offset, limit, func(n NumberResult) error { return fn(current(n)) })
	}
	if number != "" {
		// A number is in a job once at most: read it before answering, so
		// that a number not in the job is a 404, in one scan of the job.
		var found []NumberResult
		err := a.store.eachResult(r.Context(), job.ID, number, 0, -1, func(n NumberResult) error {
			found = append(found, current(n))
			return nil
		})
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		if len(found) == 0 {
			writeError(w, r, a.log, newAPIError(codeNotFound, "number "+number+" is not in this job"))
			return
		}
		found = found[min(offset, len(found)):]
		if limit >= 0 {
			found = found[:min(limit, len(found))]
		}
		results = sliceSource(found)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	p := jobPayload{kind: statusPayload, job: job, filteredNumber: number, attemptLog: attemptLog, results: results}
	if err := p.write(w); err != nil {
		a.log.Warn("write status", "job", job.UUID, "err", err)
	}
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// pageParams parses the optional offset and limit of the status endpoint.
// Without a limit, limit is -1: every result after offset.
func pageParams(offsetText, limitText string) (offset, limit int, err error) {
	parse := func(name, s string) (int, error) {
		if s == "" {
			return -1, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, newAPIError(codeInvalid, name+" must be a non-negative integer")
		}
		return n, nil
	}
	if offset, err = parse("offset", offsetText); err != nil {
		return 0, 0, err
	}
	limit, err = parse("limit", limitText)
	return max(offset, 0), limit, err
}
