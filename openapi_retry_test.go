package main

import (
	"database/sql"
	"net/http"
	"strings"
	"testing"
	"time"
)

// oapiRetry is a POST /v3/bulk_restore_retry of the contract test.
func oapiRetry(query string, want int) oapiRequest {
	return oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore_retry?" + query, want: want}
}

// oapiDryRunRetryScenario drives the dry run and the retry of a job's
// failures through the document.
func oapiDryRunRetryScenario(t *testing.T, c *oapiContract) {
	oapiDryRunPart(t, c)
	oapiRetryPart(t, c)
}

// oapiDryRunPart: the inventory backend's results, the upstream backend's
// unknown ones, and each way a dry run is refused.
func oapiDryRunPart(t *testing.T, c *oapiContract) {
	s := startServer(t, "-dev", "-max-numbers", "20")
	do := func(rq oapiRequest) oapiResponse { t.Helper(); return c.do(t, s.URL, rq) }
	dry := do(oapiPost(t, map[string]any{"numbers": []string{"15551230111", "15551230113", "15551230117", "15551230119", "15559000000"},
		"dry_run": true}, http.StatusOK))
	if dry.Body["dry_run"] != true || dry.Body["failure_count"] != 3.0 {
		t.Fatalf("dry run: %s", dry.Raw)
	}
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore?dry_run=1", contentType: "text/plain",
		body: []byte(strings.Join(seqNumbers(15551230100, 20), "\n")), want: http.StatusOK})
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore", contentType: "application/x-www-form-urlencoded",
		body: []byte("numbers=15551230121&dry_run=true"), want: http.StatusOK})
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore?dry_run=yes", contentType: "text/plain",
		body: []byte("15551230111"), want: http.StatusBadRequest, invalid: true})
	bad := oapiPost(t, map[string]any{"numbers": []string{"15551230111"}, "dry_run": "yes"}, http.StatusBadRequest)
	bad.invalid = true
	do(bad)
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore?dry_run=1", contentType: "text/plain",
		body: []byte(strings.Join(seqNumbers(15551230100, 21), "\n")), want: http.StatusRequestEntityTooLarge})
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore?dry_run=1", contentType: "application/xml",
		body: []byte("<numbers/>"), want: http.StatusUnsupportedMediaType, invalid: true})

	up := startServer(t, "-dev", "-backend", "upstream", "-upstream-url", "http://127.0.0.1:1/restore/{number}")
	unknown := c.do(t, up.URL, oapiPost(t, map[string]any{"numbers": []string{"15551230111"}, "dry_run": 1}, http.StatusOK))
	if unknown.Body["unknown_count"] != 1.0 {
		t.Fatalf("upstream dry run without a preview: %s", unknown.Raw)
	}
}

// oapiRetryPart provokes every answer of POST /v3/bulk_restore_retry but
// the 503 of a full disk.
func oapiRetryPart(t *testing.T, c *oapiContract) {
	backend := &oapiBackend{gate: make(chan struct{})}
	svc, srv := startServiceWith(t, backend, "-dev", "-max-active-jobs", "1", "-workers", "2")
	svc.app.idempotencyWait = 50 * time.Millisecond
	t.Cleanup(backend.open)
	do := func(rq oapiRequest) oapiResponse { t.Helper(); return c.do(t, srv.URL, rq) }
	recv := newOAPIReceiver(t)
	status := func(id string) map[string]any {
		return do(oapiGet("/v3/bulk_restore_status?job_uuid="+id, http.StatusOK)).Body
	}

	small := do(oapiPost(t, map[string]any{"numbers": retryOriginal, "webhook_url": recv.URL}, http.StatusOK)).Body["job_uuid"].(string)
	big := do(oapiPost(t, map[string]any{"numbers": seqNumbers(15558880400, 12)}, http.StatusAccepted)).Body["job_uuid"].(string)
	oapiWaitStatus(t, c, srv.URL, big, "the queued job to complete", func(b map[string]any) bool { return b["status"] == "completed" })
	good := do(oapiPost(t, map[string]any{"numbers": []string{retryOK1}}, http.StatusOK)).Body["job_uuid"].(string)

	// 200, its replay, and 422 for the key on another retry.
	keyed := oapiRetry("job_uuid="+small+"&status_code=500,503", http.StatusOK)
	keyed.header = map[string]string{"Idempotency-Key": "oapi-retry-1"}
	first := do(keyed)
	if again := do(keyed); again.Header.Get("Idempotent-Replayed") != "true" || again.Body["job_uuid"] != first.Body["job_uuid"] {
		t.Fatalf("replay: %v %s", again.Header, again.Raw)
	}
	other := oapiRetry("job_uuid="+small, http.StatusUnprocessableEntity)
	other.header = keyed.header
	do(other)
	withBody := oapiRetry("job_uuid="+small, http.StatusOK)
	withBody.contentType, withBody.body = "application/json", []byte(`{"webhook_url":null}`)
	do(withBody)
	asForm := oapiRetry("job_uuid="+small, http.StatusOK)
	asForm.contentType, asForm.body = "application/x-www-form-urlencoded", []byte("webhook_url=")
	do(asForm)
	if by, _ := status(small)["retried_by"].([]any); len(by) != 3 {
		t.Fatalf("retried_by of the original: %v", by)
	}
	retried := first.Body["job_uuid"].(string)
	if st := status(retried); st["retry_of"] != small {
		t.Fatalf("status of the retry: %v", st["retry_of"])
	}
	waitFor(t, 10*time.Second, "the retry's webhook", func() bool {
		for _, m := range recv.messages() {
			if strings.Contains(string(m.body), `"retry_of":"`+small+`"`) {
				return true
			}
		}
		return false
	})
	c.checkWebhooks(t, recv.messages())

	// 202 with Location, and the job list with both links.
	queued := do(oapiRetry("job_uuid="+big, http.StatusAccepted))
	if queued.Body["retry_of"] != big || queued.Header.Get("Location") == "" {
		t.Fatalf("queued retry: %v %s", queued.Header, queued.Raw)
	}
	oapiWaitStatus(t, c, srv.URL, queued.Body["job_uuid"].(string), "the queued retry to complete",
		func(b map[string]any) bool { return b["status"] == "completed" })
	do(oapiGet("/v3/bulk_restore_jobs", http.StatusOK))

	// 409: a job still running, one without failures; 429: the active-jobs cap.
	gated := do(oapiPost(t, map[string]any{"numbers": retryGatedNumbers}, http.StatusAccepted)).Body["job_uuid"].(string)
	do(oapiRetry("job_uuid="+gated, http.StatusConflict))
	do(oapiRetry("job_uuid="+good, http.StatusConflict))
	capped := do(oapiRetry("job_uuid="+big, http.StatusTooManyRequests))
	if capped.Header.Get("Retry-After") == "" {
		t.Fatalf("429 without Retry-After: %v", capped.Header)
	}

	// 400 (the document refuses each), 404, 413, 415, 401.
	for _, q := range []string{"", "job_uuid=nope", "job_uuid=" + small + "&status_code=abc", "job_uuid=" + small + "&status_code=600",
		"job_uuid=" + small + "&status_code=500,"} {
		rq := oapiRetry(q, http.StatusBadRequest)
		rq.invalid = true
		do(rq)
	}
	for _, body := range []string{`{"webhook_url":7}`, `{"numbers":[]}`, `["x"]`} {
		rq := oapiRetry("job_uuid="+small, http.StatusBadRequest)
		rq.contentType, rq.body, rq.invalid = "application/json", []byte(body), true
		do(rq)
	}
	badHook := oapiRetry("job_uuid="+small, http.StatusBadRequest)
	badHook.contentType, badHook.body = "application/json", []byte(`{"webhook_url":"ftp://x.example/h"}`)
	do(badHook)
	do(oapiRetry("job_uuid=00000000-0000-4000-8000-000000000000", http.StatusNotFound))
	huge := oapiRetry("job_uuid="+small, http.StatusRequestEntityTooLarge)
	huge.contentType, huge.body = "application/json", []byte(`{"webhook_url":"`+strings.Repeat("a", 64<<10)+`"}`)
	do(huge)
	plain := oapiRetry("job_uuid="+small, http.StatusUnsupportedMediaType)
	plain.contentType, plain.body, plain.invalid = "text/plain", []byte("hello"), true
	do(plain)
	noAuth := oapiRetry("job_uuid="+small, http.StatusUnauthorized)
	noAuth.noAuth, noAuth.invalid = true, true
	do(noAuth)
	wrong := oapiRetry("job_uuid="+small, http.StatusUnauthorized)
	wrong.user, wrong.key = "demo", "wrong"
	do(wrong)

	// 500: the jobs table gone under a running server.
	broken := startServer(t, "-dev")
	db, err := sql.Open("sqlite", dsn(broken.DB))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("ALTER TABLE jobs RENAME TO oapi_retry_jobs_gone"); err != nil {
		t.Fatal(err)
	}
	c.do(t, broken.URL, oapiRetry("job_uuid="+small, http.StatusInternalServerError))
}
