package main

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
)

// The console's admin pages: signed in with the admin token, the admin
// manages users and their inventories and sees every user's jobs and the
// queue, through the admin API's own operations (admin_ops.go).

// consoleAdminRoutes registers the admin pages on the console's router;
// with no admin token set there are none (their addresses are not found).
func (a *app) consoleAdminRoutes(get, post func(string, http.Handler)) {
	if a.cfg.adminToken == "" {
		return
	}
	get("/ui/admin/users", a.uiAdminPage(a.uiAdminUsers))
	post("/ui/admin/users", a.uiAdminAction(uiFormMax, a.uiAdminCreateUser))
	get("/ui/admin/users/{name}/delete", a.uiAdminPage(a.uiAdminConfirmDelete))
	post("/ui/admin/users/{name}/delete", a.uiAdminAction(uiFormMax, a.uiAdminDeleteUser))
	post("/ui/admin/users/{name}/rotate-key", a.uiAdminAction(uiFormMax, a.uiAdminRotateKey))
	get("/ui/admin/users/{name}/inventory.csv", a.uiAdminPage(a.uiAdminExportInventory))
	post("/ui/admin/users/{name}/inventory", a.uiAdminAction(a.cfg.maxImportBody+uiFormMax, a.uiAdminImportInventory))
	get("/ui/admin/jobs", a.uiAdminPage(a.uiAdminJobs))
	get("/ui/admin/queue", a.uiAdminPage(a.uiAdminQueue))
}

// adminUsersView is the users page; Created or Rotated carry a key (and a
// secret) shown this once.
type adminUsersView struct {
	uiBase
	Users   []adminUserJSON
	Name    string // the name being created, kept on a refusal
	Created *createdUserJSON
	Rotated *rotatedKey
}

// rotatedKey is a user's new API key, shown once.
type rotatedKey struct {
	Username string
	APIKey   string
	Overlap  string // how long the old key keeps working
}

// uiAdminUsers is GET /ui/admin/users.
func (a *app) uiAdminUsers(w http.ResponseWriter, r *http.Request, s sessionRow) {
	a.uiShowUsers(w, r, s, http.StatusOK, adminUsersView{uiBase: jobNotice(r.URL.Query())})
}

// uiShowUsers renders the users page with status and what view carries.
func (a *app) uiShowUsers(w http.ResponseWriter, r *http.Request, s sessionRow, status int, view adminUsersView) {
	users, err := a.adminOps().listUsers(r.Context())
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	view.Title, view.Nav, view.Session, view.Users = "Users", "users", &s, users
	a.uiWrite(w, r, status, "admin_users", view)
}

// uiAdminFailed shows the users page with why an admin action was refused
// (a client's mistake), or the error page.
func (a *app) uiAdminFailed(w http.ResponseWriter, r *http.Request, s sessionRow, err error, view adminUsersView) {
	var e *apiError
	var line *csvLineError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &line):
		e = newAPIError(codeInvalid, line.Error()+"; nothing was written")
	case errors.As(err, &tooBig):
		e = newAPIError(codeTooLarge, "the file is larger than -max-import-body; nothing was written")
	case !errors.As(err, &e):
		a.uiFail(w, r, &s, err)
		return
	}
	view.Error = "Not done: " + e.message + "."
	a.uiShowUsers(w, r, s, httpStatus[e.code], view)
}

// uiAdminCreateUser is POST /ui/admin/users: the new user's key and webhook
// secret are shown on the answer, this once (the page is never stored).
func (a *app) uiAdminCreateUser(w http.ResponseWriter, r *http.Request, s sessionRow) {
	name := strings.TrimSpace(r.PostFormValue("username"))
	created, err := a.adminOps().createUser(r.Context(), name)
	if err != nil {
		a.uiAdminFailed(w, r, s, err, adminUsersView{Name: name})
		return
	}
	a.log.Info("console: user created", "user", name)
	a.uiShowUsers(w, r, s, http.StatusCreated, adminUsersView{Created: &created})
}

// uiAdminRotateKey is POST /ui/admin/users/{name}/rotate-key: a new key,
// shown once; the old one works on for the overlap chosen.
func (a *app) uiAdminRotateKey(w http.ResponseWriter, r *http.Request, s sessionRow) {
	name := mux.Vars(r)["name"]
	overlap, err := time.ParseDuration(r.PostFormValue("overlap"))
	if err != nil || overlap < 0 || overlap > maxKeyOverlap {
		a.uiAdminFailed(w, r, s, newAPIError(codeInvalid, "the overlap must be a duration from 0s to 720h"), adminUsersView{})
		return
	}
	key, err := a.adminOps().rotateKey(r.Context(), name, overlap)
	if err != nil {
		a.uiAdminFailed(w, r, s, err, adminUsersView{})
		return
	}
	a.log.Info("console: API key rotated", "user", name, "overlap", overlap)
	a.uiShowUsers(w, r, s, http.StatusOK, adminUsersView{Rotated: &rotatedKey{Username: name, APIKey: key, Overlap: overlap.String()}})
}

// deleteUserView is the page that asks before a user is deleted.
type deleteUserView struct {
	uiBase
	User adminUserJSON
}

// uiAdminConfirmDelete is GET /ui/admin/users/{name}/delete: what deleting
// the user deletes, and the button that does it.
func (a *app) uiAdminConfirmDelete(w http.ResponseWriter, r *http.Request, s sessionRow) {
	name := mux.Vars(r)["name"]
	users, err := a.adminOps().listUsers(r.Context())
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	for _, u := range users {
		if u.Username == name {
			a.uiWrite(w, r, http.StatusOK, "admin_delete", deleteUserView{
				uiBase: uiBase{Title: "Delete " + name, Nav: "users", Session: &s}, User: u})
			return
		}
	}
	a.uiFail(w, r, &s, userNotFound(name))
}

// uiAdminDeleteUser is POST /ui/admin/users/{name}/delete: the user, its
// jobs, results, inventory and sessions go; its running work stops.
func (a *app) uiAdminDeleteUser(w http.ResponseWriter, r *http.Request, s sessionRow) {
	name := mux.Vars(r)["name"]
	if err := a.adminOps().deleteUser(r.Context(), name); err != nil {
		a.uiAdminFailed(w, r, s, err, adminUsersView{})
		return
	}
	a.log.Info("console: user deleted", "user", name)
	http.Redirect(w, r, "/ui/admin/users?done=deleted&user="+url.QueryEscape(name), http.StatusSeeOther)
}

// uiAdminExportInventory is GET /ui/admin/users/{name}/inventory.csv: the
// user's inventory as the CSV an import reads, streamed, as a download.
func (a *app) uiAdminExportInventory(w http.ResponseWriter, r *http.Request, s sessionRow) {
	name := mux.Vars(r)["name"]
	write, err := a.adminOps().exportInventory(r.Context(), name)
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	extendTransfer(w)
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="inventory_`+name+`.csv"`)
	if err := write(flushWriter{w: w, rc: http.NewResponseController(w)}); err != nil {
		a.log.Warn("export inventory; answer cut short", "user", name, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// uiAdminImportInventory is POST /ui/admin/users/{name}/inventory: a CSV
// file in the import format, in one transaction; with replace, the user's
// numbers missing from it are deleted. A bad line changes nothing and is
// named.
func (a *app) uiAdminImportInventory(w http.ResponseWriter, r *http.Request, s sessionRow) {
	name := mux.Vars(r)["name"]
	if r.MultipartForm == nil || len(r.MultipartForm.File["inventory"]) == 0 {
		a.uiAdminFailed(w, r, s, newAPIError(codeInvalid, "choose a CSV file to import"), adminUsersView{})
		return
	}
	f, err := r.MultipartForm.File["inventory"][0].Open()
	if err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	defer f.Close()
	done, err := a.adminOps().importInventory(r.Context(), name, f, r.PostFormValue("replace") == "1")
	if err != nil {
		a.uiAdminFailed(w, r, s, err, adminUsersView{})
		return
	}
	a.log.Info("console: inventory imported", "user", name, "imported", done.Imported, "deleted", done.Deleted)
	q := url.Values{"done": {"imported"}, "user": {name}, "n": {strconv.Itoa(done.Imported)}, "deleted": {strconv.Itoa(done.Deleted)}}
	http.Redirect(w, r, "/ui/admin/users?"+q.Encode(), http.StatusSeeOther)
}
