package main

import (
	"database/sql"
	"net/http"
	"strings"
	"testing"
)

// oapiResultsScenario drives the results filter, the CSV answer and the
// number history through every status they document: successes, 400s,
// 401s, a 404, then a 429 under a rate limit and a 500 on broken storage.
func oapiResultsScenario(t *testing.T, c *oapiContract) {
	s := startServer(t, "-dev")
	do := func(rq oapiRequest) oapiResponse { t.Helper(); return c.do(t, s.URL, rq) }
	queued := do(oapiPost(t, map[string]any{"numbers": seqNumbers(15551230150, 12)}, http.StatusAccepted))
	id := queued.Body["job_uuid"].(string)
	oapiWaitStatus(t, c, s.URL, id, "the queued job to complete", func(b map[string]any) bool { return b["status"] == "completed" })
	status := "/v3/bulk_restore_status?job_uuid=" + id

	// The filter, as JSON and as CSV (by format and by Accept), and HEAD.
	do(oapiGet(status+"&result_status=failed,success&offset=1&limit=2", http.StatusOK))
	do(oapiGet(status+"&result_status=pending,processing&format=json", http.StatusOK))
	csvAnswer := do(oapiGet(status+"&format=csv&result_status=success", http.StatusOK))
	if !strings.HasPrefix(string(csvAnswer.Raw), "number,status,") || csvAnswer.Header.Get("Content-Disposition") == "" {
		t.Fatalf("CSV answer: %v %s", csvAnswer.Header, clip(csvAnswer.Raw))
	}
	do(oapiRequest{method: http.MethodGet, path: status + "&number=15551230151", header: map[string]string{"Accept": "text/csv"}, want: http.StatusOK})
	do(oapiRequest{method: http.MethodHead, path: status + "&format=csv", want: http.StatusOK})
	for _, bad := range []string{"&result_status=bogus", "&result_status=", "&format=xml"} {
		do(oapiRequest{method: http.MethodGet, path: status + bad, want: http.StatusBadRequest, invalid: true})
	}
	do(oapiRequest{method: http.MethodGet, path: status + "&format=csv&number=15559990000", want: http.StatusNotFound})

	// The number history: a page, the next one, an empty one, HEAD.
	for range 3 {
		do(oapiPost(t, map[string]any{"numbers": []string{"15551230151"}}, http.StatusOK))
	}
	history := "/v3/numbers/15551230151/history"
	page := do(oapiGet(history+"?limit=2", http.StatusOK))
	next, _ := page.Body["next_before"].(string)
	if next == "" {
		t.Fatalf("a first page of 2 of 4 has no next_before: %s", page.Raw)
	}
	do(oapiGet(history+"?limit=100&before="+next, http.StatusOK))
	do(oapiGet("/v3/numbers/15559990000/history", http.StatusOK))
	do(oapiRequest{method: http.MethodHead, path: history, want: http.StatusOK})
	for _, bad := range []string{"/v3/numbers/1555x/history", history + "?limit=0", history + "?limit=101", history + "?before=yesterday"} {
		do(oapiRequest{method: http.MethodGet, path: bad, want: http.StatusBadRequest, invalid: true})
	}
	do(oapiGet(history+"?before=00000000-0000-4000-8000-000000000000", http.StatusNotFound))
	do(oapiRequest{method: http.MethodGet, path: history, noAuth: true, want: http.StatusUnauthorized, invalid: true})
	do(oapiRequest{method: http.MethodGet, path: history, user: "demo", key: "wrong", want: http.StatusUnauthorized})

	// 429: over a rate limit of one request, then a little.
	limited := startServer(t, "-dev", "-rate-limit", "0.5", "-rate-burst", "1")
	got429 := false
	for try := 0; try < 5 && !got429; try++ { // a token may come back between two tries
		got429 = c.do(t, limited.URL, oapiGet(history, 0)).Status == http.StatusTooManyRequests
	}
	if !got429 {
		t.Fatal("no 429 from the history in 5 tries at 0.5 requests a second")
	}

	// 500: the jobs table gone from under a running server.
	broken := startServer(t, "-dev")
	oapiBreakJobsTable(t, broken.DB)
	c.do(t, broken.URL, oapiGet(history, http.StatusInternalServerError))
}

// oapiBreakJobsTable renames the jobs table of a running server's
// database, so that every operation that reads jobs fails with 500.
func oapiBreakJobsTable(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("ALTER TABLE jobs RENAME TO oapi_jobs_gone"); err != nil {
		t.Fatalf("break the jobs table: %v", err)
	}
}
