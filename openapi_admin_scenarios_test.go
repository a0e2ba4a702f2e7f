package main

import (
	"database/sql"
	"net/http"
	"strings"
	"testing"
)

// The contract test's admin scenario: every admin operation's answers,
// each checked against openapi.yaml.

// oapiAdmin is an admin request carrying the bearer token given (no
// Authorization header when it is "").
func oapiAdmin(method, path, token string, want int) oapiRequest {
	rq := oapiRequest{method: method, path: path, noAuth: true, want: want}
	if token != "" {
		rq.header = map[string]string{"Authorization": "Bearer " + token}
	}
	return rq
}

// withBody gives a request a body of the type given.
func (rq oapiRequest) withBody(contentType, body string) oapiRequest {
	rq.contentType, rq.body = contentType, []byte(body)
	return rq
}

// oapiAdminRequests are one valid request to each admin operation, about
// the user given, expecting want (0: any).
func oapiAdminRequests(user, token string, want int) []oapiRequest {
	u := "/admin/v1/users/" + user
	return []oapiRequest{
		oapiAdmin(http.MethodGet, "/admin/v1/users", token, want),
		oapiAdmin(http.MethodPost, "/admin/v1/users", token, want).withBody("application/json", `{"username":"`+user+`"}`),
		oapiAdmin(http.MethodDelete, u, token, want),
		oapiAdmin(http.MethodPost, u+"/rotate-key?overlap=1h", token, want),
		oapiAdmin(http.MethodPost, u+"/rotate-secret", token, want),
		oapiAdmin(http.MethodPut, u+"/inventory", token, want).withBody("text/csv", "number,state\n15557000001,released\n"),
		oapiAdmin(http.MethodGet, u+"/inventory", token, want),
		oapiAdmin(http.MethodGet, "/admin/v1/jobs?user="+user, token, want),
	}
}

// oapiAdminScenario drives the admin API: off (404 everywhere), then every
// success and error of each operation, then the failed-token limit (429),
// then broken storage (500).
func oapiAdminScenario(t *testing.T, c *oapiContract) {
	off := startServer(t, "-dev")
	for _, rq := range oapiAdminRequests("demo", testAdminToken, http.StatusNotFound) {
		c.do(t, off.URL, rq)
	}

	s := startAdminServer(t, "-dev", "-max-import-body", "4KiB")
	do := func(rq oapiRequest) oapiResponse { t.Helper(); return c.do(t, s.URL, rq) }
	admin := func(method, path string, want int) oapiRequest { return oapiAdmin(method, path, testAdminToken, want) }
	invalid := func(rq oapiRequest) oapiRequest { rq.invalid = true; return rq }
	jobID := do(oapiPost(t, map[string]any{"numbers": []string{"15551230111"}}, http.StatusOK)).Body["job_uuid"].(string)

	// Successes.
	do(admin(http.MethodPost, "/admin/v1/users", http.StatusCreated).withBody("application/json", `{"username":"acme"}`))
	do(admin(http.MethodGet, "/admin/v1/users", http.StatusOK))
	do(admin(http.MethodPost, "/admin/v1/users/acme/rotate-key?overlap=1h", http.StatusOK))
	do(admin(http.MethodPost, "/admin/v1/users/acme/rotate-key", http.StatusOK))
	do(admin(http.MethodPost, "/admin/v1/users/acme/rotate-secret", http.StatusOK))
	do(admin(http.MethodPut, "/admin/v1/users/acme/inventory", http.StatusOK).withBody("text/csv",
		"number,state,released_at,requires_identity_update,needs_registration\n15557000001,released,2026-01-01 00:00:00,1,0\n15557000002,active,,,\n"))
	do(admin(http.MethodPut, "/admin/v1/users/acme/inventory?replace=1", http.StatusOK).withBody("text/csv; charset=utf-8",
		"number,state\n15557000002,active\n"))
	if got := do(admin(http.MethodGet, "/admin/v1/users/acme/inventory", http.StatusOK)); !strings.HasPrefix(string(got.Raw), "number,state,") {
		t.Fatalf("export: %s", got.Raw)
	}
	do(admin(http.MethodGet, "/admin/v1/jobs", http.StatusOK))
	do(admin(http.MethodGet, "/admin/v1/jobs?user=demo&status=completed&limit=1&before="+jobID, http.StatusOK))

	// Refusals.
	for _, rq := range []oapiRequest{
		admin(http.MethodPost, "/admin/v1/users", http.StatusConflict).withBody("application/json", `{"username":"acme"}`),
		invalid(admin(http.MethodPost, "/admin/v1/users", http.StatusBadRequest).withBody("application/json", `{"username":"a b"}`)),
		invalid(admin(http.MethodPost, "/admin/v1/users", http.StatusBadRequest).withBody("application/json", `{}`)),
		invalid(admin(http.MethodPost, "/admin/v1/users", http.StatusBadRequest).withBody("application/json", `{"username":"x","admin":true}`)),
		admin(http.MethodPost, "/admin/v1/users/acme/rotate-key?overlap=721h", http.StatusBadRequest),
		admin(http.MethodPost, "/admin/v1/users/acme/rotate-key?overlap=1d", http.StatusBadRequest),
		admin(http.MethodPut, "/admin/v1/users/acme/inventory", http.StatusBadRequest).withBody("text/csv", "number,state\n15557000003,gone\n"),
		invalid(admin(http.MethodPut, "/admin/v1/users/acme/inventory?replace=maybe", http.StatusBadRequest).withBody("text/csv", "number,state\n")),
		admin(http.MethodPut, "/admin/v1/users/acme/inventory", http.StatusRequestEntityTooLarge).withBody("text/csv", inventoryCSV(15557100000, 500)),
		invalid(admin(http.MethodPut, "/admin/v1/users/acme/inventory", http.StatusUnsupportedMediaType).withBody("application/json", `{}`)),
		invalid(admin(http.MethodGet, "/admin/v1/jobs?status=done", http.StatusBadRequest)),
		invalid(admin(http.MethodGet, "/admin/v1/jobs?limit=0", http.StatusBadRequest)),
		admin(http.MethodGet, "/admin/v1/jobs?before=00000000-0000-4000-8000-000000000000", http.StatusNotFound),
		{method: http.MethodPatch, path: "/admin/v1/users", noAuth: true, want: http.StatusMethodNotAllowed},
		{method: http.MethodGet, path: "/admin/v1/nope", noAuth: true, want: http.StatusNotFound},
	} {
		do(rq)
	}
	for _, rq := range oapiAdminRequests("nobody", testAdminToken, http.StatusNotFound) {
		if rq.path == "/admin/v1/users" {
			continue // names no user
		}
		do(rq)
	}
	do(admin(http.MethodDelete, "/admin/v1/users/acme", http.StatusNoContent))

	// 401: no token, a user's Basic credentials (the document refuses both),
	// a wrong token; then wrong tokens past the limit: 429 for every one.
	for _, rq := range oapiAdminRequests("demo", "", http.StatusUnauthorized) {
		do(invalid(rq))
		basic := invalid(rq)
		basic.noAuth = false // demo:demo
		do(basic)
	}
	for _, rq := range oapiAdminRequests("demo", "wrong-"+testAdminToken, http.StatusUnauthorized) {
		do(rq)
	}
	limited := false
	for try := 0; try < 2*authFailureBurst && !limited; try++ {
		limited = do(oapiAdmin(http.MethodGet, "/admin/v1/users", "wrong-"+testAdminToken, 0)).Status == http.StatusTooManyRequests
	}
	if !limited {
		t.Fatalf("no 429 after %d wrong tokens", 2*authFailureBurst)
	}
	for _, rq := range oapiAdminRequests("nobody", testAdminToken, 0) {
		limited := false
		for try := 0; try < 5 && !limited; try++ { // a token may come back between two tries
			do(oapiAdmin(http.MethodGet, "/admin/v1/users", "wrong-"+testAdminToken, 0)) // spends it
			limited = do(rq).Status == http.StatusTooManyRequests
		}
		if !limited {
			t.Fatalf("%s %s: no 429 in 5 tries past the limit", rq.method, rq.path)
		}
	}

	// 500: the users and jobs tables gone under a running server.
	broken := startAdminServer(t, "-dev")
	db, err := sql.Open("sqlite", dsn(broken.DB))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{"ALTER TABLE users RENAME TO oapi_users_gone", "ALTER TABLE jobs RENAME TO oapi_jobs_gone"} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("break the storage: %v", err)
		}
	}
	for _, rq := range oapiAdminRequests("demo", testAdminToken, http.StatusInternalServerError) {
		c.do(t, broken.URL, rq)
	}
}
