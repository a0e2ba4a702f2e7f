package main

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// inventoryView is a user's inventory row of a number, for a page.
type inventoryView struct {
	State                  string
	ReleasedAt             time.Time
	RequiresIdentityUpdate bool
	NeedsRegistration      bool
}

// numberLookupView is the number lookup page.
type numberLookupView struct {
	uiBase
	Number    string
	Looked    bool // a number was asked for
	Upstream  bool // the upstream backend: there is no inventory here
	Inventory *inventoryView
	Entries   []historyEntry
	Older     string // the next page's address; "" on the last
}

// uiNumberLookup is GET /ui/numbers?number=&before=: what happened to a
// number in the user's jobs, newest first, and the user's inventory row of
// it, from the API's number history.
func (a *app) uiNumberLookup(w http.ResponseWriter, r *http.Request, s sessionRow) {
	q := r.URL.Query()
	view := numberLookupView{uiBase: uiBase{Title: "Number lookup", Nav: "numbers", Session: &s},
		Number: strings.TrimSpace(q.Get("number")), Upstream: a.cfg.backend == "upstream"}
	if view.Number == "" {
		a.uiWrite(w, r, http.StatusOK, "numbers", view)
		return
	}
	view.Looked = true
	page, err := a.numberHistory(r.Context(), s.User, view.Number, q.Get("before"), historyPageDefault)
	if e := (*apiError)(nil); isAPIErrorAs(err, &e) && e.code == codeInvalid {
		view.Error, view.Looked = "A number is digits only.", false
		a.uiWrite(w, r, http.StatusBadRequest, "numbers", view)
		return
	}
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	if inv := page.Inventory; inv != nil {
		view.Inventory = &inventoryView{State: inv.state, ReleasedAt: time.UnixMilli(inv.releasedAt).UTC(),
			RequiresIdentityUpdate: inv.riu, NeedsRegistration: inv.nr}
	}
	view.Entries = page.Entries
	if page.NextBefore != "" {
		view.Older = "/ui/numbers?" + url.Values{"number": {view.Number}, "before": {page.NextBefore}}.Encode()
	}
	a.uiWrite(w, r, http.StatusOK, "numbers", view)
}
