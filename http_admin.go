package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
)

// The admin API: /admin/v1, for operators, behind a bearer token (the
// admin token of -admin-token-file or BULKRESTORE_ADMIN_TOKEN). Without a
// token it is not there at all: every /admin/ path is the router's 404.
// Each handler parses, calls one of the admin operations (admin_ops.go),
// and renders.

// The admin actions: what each admin request does, for its log line
// (admin_action=) and the bulkrestore_admin_requests_total metric.
const (
	actionUserCreate       = "user.create"
	actionUserList         = "user.list"
	actionUserDelete       = "user.delete"
	actionUserRotateKey    = "user.rotate_key"
	actionUserRotateSecret = "user.rotate_secret"
	actionInventoryImport  = "inventory.import"
	actionInventoryExport  = "inventory.export"
	actionJobsList         = "jobs.list"
)

// adminRealm is the admin API's bearer challenge.
const adminRealm = `Bearer realm="bulkrestore-admin"`

// adminTransferTimeout bounds the transfer of an inventory CSV either way,
// in place of the server's read and write timeouts (2 and 10 minutes),
// which a file of -max-import-body on a slow link would outlast.
const adminTransferTimeout = time.Hour

// adminRoutes registers the admin API on r, when an admin token is set.
func (a *app) adminRoutes(r *mux.Router) {
	if a.cfg.adminToken == "" {
		return
	}
	admin := func(path, action string, h http.HandlerFunc, method string) {
		r.Handle(path, a.adminAuth(action, a.wellFormedQuery(h))).Methods(method)
	}
	admin("/admin/v1/users", actionUserList, a.adminListUsers, http.MethodGet)
	admin("/admin/v1/users", actionUserCreate, a.adminCreateUser, http.MethodPost)
	admin("/admin/v1/users/{name}", actionUserDelete, a.adminDeleteUser, http.MethodDelete)
	admin("/admin/v1/users/{name}/rotate-key", actionUserRotateKey, a.adminRotateKey, http.MethodPost)
	admin("/admin/v1/users/{name}/rotate-secret", actionUserRotateSecret, a.adminRotateSecret, http.MethodPost)
	admin("/admin/v1/users/{name}/inventory", actionInventoryImport, a.adminImportInventory, http.MethodPut)
	admin("/admin/v1/users/{name}/inventory", actionInventoryExport, a.adminExportInventory, http.MethodGet)
	admin("/admin/v1/jobs", actionJobsList, a.adminListJobs, http.MethodGet)
}

// adminTokenOK reports whether token is the admin token. It compares the
// SHA-256 of both, so that the comparison takes the same time whatever the
// length and the content of what was sent. The admin middleware and the
// web console's sign-in both ask it.
func (a *app) adminTokenOK(token string) bool {
	if a.cfg.adminToken == "" {
		return false
	}
	got, want := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(a.cfg.adminToken))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// adminAuth lets a request through to next when it carries the admin
// token as `Authorization: Bearer <token>`; anything else is a 401 with
// the Bearer challenge. Wrong credentials of any kind count against the
// address in the failed-authentication limiter, as a wrong Basic key does,
// and past it every request from the address is a 429.
func (a *app) adminAuth(action string, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noteAdminAction(r, action)
		header := r.Header.Get("Authorization")
		if header == "" {
			a.adminUnauthorized(w, r, "the admin API needs Authorization: Bearer <admin token>")
			return
		}
		ip, now := clientIP(r), a.now()
		if wait, blocked := a.authFailures.exhausted(ip, now); blocked {
			a.tooManyRequests(w, r, wait, "too many failed authentications from your address; retry later")
			return
		}
		scheme, token, _ := strings.Cut(header, " ")
		if !strings.EqualFold(scheme, "Bearer") || !a.adminTokenOK(strings.TrimSpace(token)) {
			a.authFailures.take(ip, now)
			msg := "invalid admin token"
			if !strings.EqualFold(scheme, "Bearer") {
				msg = "the admin API takes Authorization: Bearer <admin token>, not a user's credentials"
			}
			a.adminUnauthorized(w, r, msg)
			return
		}
		if name := mux.Vars(r)["name"]; name != "" {
			noteUser(r, name)
		}
		next(w, r)
	})
}

// adminUnauthorized answers 401 with the admin API's Bearer challenge.
func (a *app) adminUnauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", adminRealm)
	writeError(w, r, a.log, newAPIError(codeUnauthorized, msg))
}

// adminBodyMax bounds the JSON body of an admin request (a user name).
const adminBodyMax = 64 << 10

// newUserJSON is the body of POST /admin/v1/users.
type newUserJSON struct {
	Username *string `json:"username"`
}

// adminCreateUser is POST /admin/v1/users {"username":"NAME"}: 201 with the
// new user's key and webhook secret, shown this once.
func (a *app) adminCreateUser(w http.ResponseWriter, r *http.Request) {
	var body newUserJSON
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, adminBodyMax))
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err == nil {
		err = dec.Decode(&body)
	}
	if k := repeatedJSONKey(raw); err == nil && k != "" {
		err = newAPIError(codeInvalid, strconv.Quote(clipQuote(k))+` is given twice; send {"username":"NAME"}`)
	}
	var tooBig *http.MaxBytesError
	var given *apiError
	var wrongType *json.UnmarshalTypeError
	switch {
	case errors.As(err, &given):
	case errors.As(err, &tooBig):
		err = newAPIError(codeInvalid, fmt.Sprintf("body is larger than %d bytes; send {\"username\":\"NAME\"}", adminBodyMax))
	case errors.As(err, &wrongType):
		err = newAPIError(codeInvalid, "username must be a string")
	case err != nil && strings.HasPrefix(err.Error(), "json: unknown field "):
		err = newAPIError(codeInvalid, strings.TrimPrefix(err.Error(), "json: ")+`; send {"username":"NAME"}`)
	case err != nil:
		err = jsonError(err)
	case dec.More():
		err = newAPIError(codeInvalid, `one JSON object only: {"username":"NAME"}`)
	case body.Username == nil:
		err = newAPIError(codeInvalid, `username is required: {"username":"NAME"}`)
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	noteUser(r, *body.Username)
	created, err := a.adminOps().createUser(r.Context(), *body.Username)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, created)
}

// adminUserListJSON is the body of GET /admin/v1/users.
type adminUserListJSON struct {
	Users []adminUserJSON `json:"users"`
}

// adminListUsers is GET /admin/v1/users: every user, by name, with its
// counts.
func (a *app) adminListUsers(w http.ResponseWriter, r *http.Request) {
	users, err := a.adminOps().listUsers(r.Context())
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, adminUserListJSON{Users: users})
}

// adminDeleteUser is DELETE /admin/v1/users/{name}: 204 once the user and
// everything of it are gone.
func (a *app) adminDeleteUser(w http.ResponseWriter, r *http.Request) {
	if err := a.adminOps().deleteUser(r.Context(), mux.Vars(r)["name"]); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rotatedKeyBody is the answer of a key rotation.
type rotatedKeyBody struct {
	APIKey string `json:"api_key"`
}

// adminRotateKey is POST /admin/v1/users/{name}/rotate-key?overlap=24h: a
// new API key; the old one keeps working for overlap (default 24h).
func (a *app) adminRotateKey(w http.ResponseWriter, r *http.Request) {
	overlap := defaultKeyOverlap
	if s := r.URL.Query().Get("overlap"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			writeError(w, r, a.log, newAPIError(codeInvalid, "overlap must be a duration such as 24h, 90m or 0"))
			return
		}
		overlap = d
	}
	key, err := a.adminOps().rotateKey(r.Context(), mux.Vars(r)["name"], overlap)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, rotatedKeyBody{APIKey: key})
}

// rotatedSecretBody is the answer of a webhook secret rotation.
type rotatedSecretBody struct {
	WebhookSecret string `json:"webhook_secret"`
}

// adminRotateSecret is POST /admin/v1/users/{name}/rotate-secret: a new
// webhook secret; the old one signs too for 24h.
func (a *app) adminRotateSecret(w http.ResponseWriter, r *http.Request) {
	secret, err := a.adminOps().rotateSecret(r.Context(), mux.Vars(r)["name"])
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, rotatedSecretBody{WebhookSecret: secret})
}

// adminListJobs is GET /admin/v1/jobs?user=&status=&limit=&before=: every
// user's jobs (or one user's), newest first, a page at a time.
func (a *app) adminListJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status, limit, before, err := parseJobListQuery(q)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	list, err := a.adminOps().listJobs(r.Context(), q.Get("user"), status, limit, before)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// extendTransfer gives a request that moves a whole inventory
// adminTransferTimeout to do it.
func extendTransfer(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(adminTransferTimeout)
	rc.SetReadDeadline(deadline)
	rc.SetWriteDeadline(deadline)
}
