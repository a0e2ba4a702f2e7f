package main

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
)

// numberHistoryJSON is the body of GET /v3/numbers/{number}/history.
type numberHistoryJSON struct {
	Number     string             `json:"number"`
	Inventory  *inventoryJSON     `json:"inventory"` // null without a row, and under the upstream backend
	History    []historyEntryJSON `json:"history"`
	NextBefore *string            `json:"next_before"` // pass as before= for the next page; null on the last
}

// inventoryJSON is the caller's inventory row of a number.
type inventoryJSON struct {
	State                  string  `json:"state"`
	ReleasedAt             *string `json:"released_at"`
	RequiresIdentityUpdate int     `json:"requires_identity_update"`
	NeedsRegistration      int     `json:"needs_registration"`
}

// historyEntryJSON is the number in one job: its state there as the status
// endpoint shows it (message and status_code null until an outcome).
type historyEntryJSON struct {
	JobUUID     string       `json:"job_uuid"`
	Status      numberStatus `json:"status"`
	StatusCode  *int         `json:"status_code"`
	Message     *string      `json:"message"`
	Attempts    int          `json:"attempts"`
	CompletedAt *string      `json:"completed_at"`
}

// getNumberHistory is GET and HEAD
// /v3/numbers/{number}/history?limit=&before=: the caller's jobs that hold
// the number, newest first, a page at a time.
func (a *app) getNumberHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := historyPageDefault
	if s := q.Get("limit"); q.Has("limit") {
		n, err := strconv.Atoi(s)
		if err != nil {
			n = 0 // refused below, with the range
		}
		limit = n
	}
	page, err := a.numberHistory(r.Context(), currentUser(r), mux.Vars(r)["number"], q.Get("before"), limit)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	out := numberHistoryJSON{Number: page.Number, History: make([]historyEntryJSON, len(page.Entries)),
		NextBefore: nullableString(page.NextBefore)}
	if inv := page.Inventory; inv != nil {
		out.Inventory = &inventoryJSON{State: inv.state, ReleasedAt: jsonTime(time.UnixMilli(inv.releasedAt)),
			RequiresIdentityUpdate: boolInt(inv.riu), NeedsRegistration: boolInt(inv.nr)}
	}
	for i, e := range page.Entries {
		s := statusResult(e.Result)
		out.History[i] = historyEntryJSON{JobUUID: e.JobUUID, Status: s.Status, StatusCode: s.StatusCode,
			Message: s.Message, Attempts: s.Attempts, CompletedAt: s.CompletedAt}
	}
	writeJSON(w, http.StatusOK, out)
}
