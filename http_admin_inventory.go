package main

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"
)

// csvErrorBody is the 400 of an inventory CSV with a bad row: the error
// body, plus the line (the header is line 1).
type csvErrorBody struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Line    int    `json:"line"`
}

// importedBody is the answer of an inventory import.
type importedBody struct {
	Imported int `json:"imported"`
}

// adminImportInventory is PUT /admin/v1/users/{name}/inventory?replace=1,
// a text/csv body in the format of `numbers import`: one transaction, 200
// with the rows imported, or 400 naming the first bad line with nothing
// written. The body is bounded by -max-import-body, not -max-body.
func (a *app) adminImportInventory(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "text/csv" {
		writeError(w, r, a.log, newAPIError(codeUnsupportedMedia,
			"an inventory is sent as Content-Type: text/csv, with the header number,state,released_at,requires_identity_update,needs_registration"))
		return
	}
	replace := false
	if s := r.URL.Query().Get("replace"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			writeError(w, r, a.log, newAPIError(codeInvalid, "replace must be 1 or 0 (true or false)"))
			return
		}
		replace = b
	}
	extendTransfer(w)
	body := &readTracker{r: http.MaxBytesReader(w, r.Body, a.cfg.maxImportBody)}
	done, err := a.adminOps().importInventory(r.Context(), name, body, replace)
	var line *csvLineError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, r, a.log, newAPIError(codeTooLarge,
			fmt.Sprintf("the inventory CSV is larger than -max-import-body (%d bytes); nothing was written", a.cfg.maxImportBody)))
	case err != nil && body.err != nil: // the upload broke off: the client's doing, not the store's
		writeError(w, r, a.log, newAPIError(codeInvalid, "could not read the inventory CSV: "+body.err.Error()+"; nothing was written"))
	case errors.As(err, &line):
		writeJSON(w, http.StatusBadRequest, csvErrorBody{Status: "error", Message: line.Error(), Line: line.Line})
	case err != nil:
		writeError(w, r, a.log, err)
	default:
		a.log.Info("inventory imported", "user", name, "imported", done.Imported, "deleted", done.Deleted, "replace", replace)
		writeJSON(w, http.StatusOK, importedBody{Imported: done.Imported})
	}
}

// adminExportInventory is GET /admin/v1/users/{name}/inventory: the user's
// inventory as text/csv in number order, in the format the import reads,
// streamed. An export that fails half way is cut off (no final chunk), so
// the client cannot take a part for the whole.
func (a *app) adminExportInventory(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	write, err := a.adminOps().exportInventory(r.Context(), name)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	extendTransfer(w)
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="inventory_`+name+`.csv"`)
	if err := write(w); err != nil {
		a.log.Warn("inventory export cut short", "user", name, "err", err)
		panic(http.ErrAbortHandler)
	}
}
