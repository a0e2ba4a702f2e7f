package main

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// The reading of a job's results that the status endpoint (JSON and CSV)
// and the console share: which results, as values and *apiError, no HTTP.

// resultFilter is the choice of a job's results a client asked for.
type resultFilter struct {
	number   string         // only this number; a number not in the job is a 404
	statuses []numberStatus // only results in these states, processing included; nil: all
	offset   int            // results passed over, counted after the filters
	limit    int            // most results; negative: no bound
}

// resultStatuses are the values result_status takes.
var resultStatuses = []numberStatus{numberPending, numberProcessing, numberSuccess, numberFailed, numberCancelled}

// parseResultStatuses reads result_status: one state or several,
// comma-separated.
func parseResultStatuses(s string) ([]numberStatus, error) {
	var out []numberStatus
	for _, part := range strings.Split(s, ",") {
		st := numberStatus(part)
		if !slices.Contains(resultStatuses, st) {
			return nil, newAPIError(codeInvalid, "result_status must be one or more (comma-separated) of pending, processing, success, failed, cancelled")
		}
		if !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	return out, nil
}

// errEnoughResults ends a read that has all the results it wants.
var errEnoughResults = errors.New("enough results")

// jobResults returns the results of job that f selects, as they are now
// (a pending number a worker holds is processing). A number not in the job
// is a 404, found before anything is written; the results themselves are
// read when the source is run, one row at a time.
func (a *app) jobResults(ctx context.Context, job Job, f resultFilter) (resultSource, error) {
	live := job.Status.active() || job.Status == jobCancelled // only then can a worker hold a number
	current := func(n NumberResult) NumberResult { return a.currentResult(job.ID, job.Status, n) }
	if f.number != "" {
		return a.numberResult(ctx, job, f, current)
	}
	stored, refine := storedStatuses(f.statuses, live)
	stored = slices.DeleteFunc(stored, func(s numberStatus) bool { return !job.mayHold(s) })
	if (f.statuses != nil && len(stored) == 0) || f.limit == 0 {
		return sliceSource(nil), nil
	}
	rd := resultRead{statuses: stored, limit: f.limit}
	switch {
	case refine:
		rd.limit = -1 // pending and processing are told apart here, so offset and limit count here
	case stored == nil:
		rd.from = f.offset // positions are dense: a seek
	default:
		rd.skip = f.offset
	}
	return func(fn func(NumberResult) error) error {
		skip, left := f.offset, f.limit
		err := a.store.readResults(ctx, job.ID, rd, func(n NumberResult) error {
			n = current(n)
			if !refine {
				return fn(n)
			}
			switch {
			case !slices.Contains(f.statuses, n.Status):
				return nil
			case skip > 0:
				skip--
				return nil
			}
			if err := fn(n); err != nil {
				return err
			}
			if left--; left == 0 {
				return errEnoughResults
			}
			return nil
		})
		if errors.Is(err, errEnoughResults) {
			return nil
		}
		return err
	}, nil
}

// numberResult reads the one row of f.number (through the number index),
// so that a number not in the job is a 404 before the answer starts.
func (a *app) numberResult(ctx context.Context, job Job, f resultFilter, current func(NumberResult) NumberResult) (resultSource, error) {
	var found []NumberResult
	err := a.store.readResults(ctx, job.ID, resultRead{number: f.number, limit: -1}, func(n NumberResult) error {
		found = append(found, current(n))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, newAPIError(codeNotFound, "number "+f.number+" is not in this job")
	}
	if f.statuses != nil {
		found = slices.DeleteFunc(found, func(n NumberResult) bool { return !slices.Contains(f.statuses, n.Status) })
	}
	found = found[min(f.offset, len(found)):]
	if f.limit >= 0 {
		found = found[:min(f.limit, len(found))]
	}
	return sliceSource(found), nil
}

// storedStatuses maps the states asked for to the stored ones to read
// (processing is stored as pending; nil is every state) and says whether
// the rows read must still be told apart: pending from processing, when
// only one of the two is asked for while workers may hold numbers.
func storedStatuses(asked []numberStatus, live bool) (stored []numberStatus, refine bool) {
	if asked == nil {
		return nil, false
	}
	pending, processing := slices.Contains(asked, numberPending), slices.Contains(asked, numberProcessing)
	stored = []numberStatus{}
	for _, s := range asked {
		if s.final() {
			stored = append(stored, s)
		}
	}
	if pending || (processing && live) {
		stored = append(stored, numberPending)
	}
	return stored, live && pending != processing
}

// mayHold reports whether the job's counts leave room for a number stored
// in state s, so that a filter that cannot match reads nothing.
func (j Job) mayHold(s numberStatus) bool {
	switch s {
	case numberSuccess:
		return j.SuccessCount > 0
	case numberFailed:
		return j.FailureCount > 0
	case numberCancelled:
		return j.CancelledCount > 0
	}
	return j.SuccessCount+j.FailureCount+j.CancelledCount < j.Total
}
