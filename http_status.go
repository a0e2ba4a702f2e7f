package main

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// bulkRestoreStatus is GET and HEAD /v3/bulk_restore_status: a job and
// its results, as JSON, or as CSV (format=csv, or Accept: text/csv).
func (a *app) bulkRestoreStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("job_uuid") == "" {
		writeError(w, r, a.log, newAPIError(codeInvalid, "job_uuid is required"))
		return
	}
	f, err := parseResultFilter(q)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	w.Header().Add("Vary", "Accept") // the answer's format may follow it
	asCSV, err := wantsCSV(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if r.Method == http.MethodHead {
		f.limit = 0 // no body goes out: read no rows
	}
	job, err := a.jobFromQuery(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	results, err := a.jobResults(r.Context(), job, f)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if asCSV {
		a.writeResultsCSV(w, r, job, results)
		return
	}
	attemptLog, err := a.store.webhookAttemptLog(r.Context(), job.ID, 20)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	p := jobPayload{kind: statusPayload, job: job, filteredNumber: f.number, attemptLog: attemptLog, results: results,
		progress: a.progress.progress(job)}
	if err := p.write(w); err != nil {
		a.log.Warn("write status", "job", job.UUID, "err", err)
	}
}

// parseResultFilter reads number, result_status, offset and limit.
func parseResultFilter(q url.Values) (resultFilter, error) {
	var f resultFilter
	f.number = q.Get("number")
	if q.Has("number") && !isDigits(f.number) {
		return f, newAPIError(codeInvalid, "number must be digits only")
	}
	if q.Has("result_status") {
		var err error
		// Repeated, the parameter is read as one comma-separated list.
		if f.statuses, err = parseResultStatuses(strings.Join(q["result_status"], ",")); err != nil {
			return f, err
		}
	}
	var err error
	f.offset, f.limit, err = pageParams(q.Get("offset"), q.Get("limit"))
	return f, err
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
