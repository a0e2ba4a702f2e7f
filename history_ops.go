package main

import (
	"context"
	"errors"
	"math"

	"github.com/google/uuid"
)

// The number history, as the API and the console share it: values and
// *apiError, no HTTP.

// The page sizes of a number's history.
const (
	historyPageDefault = 20
	historyPageMax     = 100
)

// numberHistoryPage is one page of what happened to a number in a user's
// jobs.
type numberHistoryPage struct {
	Number     string
	Inventory  *inventoryRecord // the user's row, under the inventory backend; nil without one
	Entries    []historyEntry   // newest job first
	NextBefore string           // the job to pass as before for the next page; "" on the last
}

// numberHistory returns a page of the user's jobs that hold number, newest
// first: limit entries (1 to historyPageMax) from below the job before
// names (a job_uuid of the user's, "" for the first page).
func (a *app) numberHistory(ctx context.Context, user User, number, before string, limit int) (numberHistoryPage, error) {
	page := numberHistoryPage{Number: number}
	switch {
	case !isDigits(number):
		return page, newAPIError(codeInvalid, "number must be digits only")
	case limit < 1 || limit > historyPageMax:
		return page, newAPIError(codeInvalid, "limit must be an integer from 1 to 100")
	}
	beforeID, err := a.beforeJobID(ctx, user, before)
	if err != nil {
		return page, err
	}
	entries, err := a.store.numberHistory(ctx, user.ID, number, beforeID, limit+1)
	if err != nil {
		return page, err
	}
	if len(entries) > limit {
		entries = entries[:limit]
		page.NextBefore = entries[limit-1].JobUUID
	}
	for i := range entries {
		e := &entries[i]
		e.Result = a.currentResult(e.JobID, e.JobStatus, e.Result)
	}
	page.Entries = entries
	if a.cfg.backend != "upstream" {
		rows, err := a.store.inventoryRecords(ctx, user.ID, []string{number})
		if err != nil {
			return page, err
		}
		if rec, ok := rows[number]; ok {
			page.Inventory = &rec
		}
	}
	return page, nil
}

// beforeJobID reads a page cursor: "" is before every job, else a
// job_uuid of the user's (400 if not a UUID, 404 if no job of the user's),
// whose id the next page starts below.
func (a *app) beforeJobID(ctx context.Context, user User, before string) (int64, error) {
	if before == "" {
		return math.MaxInt64, nil
	}
	id, err := uuid.Parse(before)
	if err != nil || len(before) != 36 {
		return 0, newAPIError(codeInvalid, "before must be a job_uuid from an earlier page")
	}
	job, err := a.store.jobForUser(ctx, user.ID, id.String())
	if errors.Is(err, errNotFound) {
		return 0, newAPIError(codeNotFound, "before names no job of yours")
	}
	if err != nil {
		return 0, err
	}
	return job.ID, nil
}

// currentResult is a number of a job as it is now: a pending number a
// worker holds is processing (only a live job's numbers can be held).
func (a *app) currentResult(jobID int64, status jobStatus, n NumberResult) NumberResult {
	live := status.active() || status == jobCancelled
	if live && n.Status == numberPending && a.pool.isProcessing(jobID, n.Position) {
		n.Status = numberProcessing
	}
	return n
}
