package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// oapiJSON marshals a request body.
func oapiJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// oapiReceiver is a webhook receiver on loopback that answers every POST
// with the status in code (204 unless set) and keeps what it was sent.
type oapiReceiver struct {
	URL  string
	code atomic.Int32
	mu   sync.Mutex
	got  []oapiWebhook
}

// oapiWebhook is one message a receiver was sent.
type oapiWebhook struct {
	header http.Header
	body   []byte
}

// messages returns what the receiver was sent so far.
func (r *oapiReceiver) messages() []oapiWebhook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// newOAPIReceiver starts a receiver, stopped at cleanup.
func newOAPIReceiver(t testing.TB) *oapiReceiver {
	t.Helper()
	r := &oapiReceiver{}
	r.code.Store(http.StatusNoContent)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, oapiWebhook{header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		w.WriteHeader(int(r.code.Load()))
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/hook"
	return r
}

// oapiPost is a JSON POST /v3/bulk_restore.
func oapiPost(t testing.TB, body any, want int) oapiRequest {
	return oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore", contentType: "application/json", body: oapiJSON(t, body), want: want}
}

// oapiGet is an authenticated GET.
func oapiGet(path string, want int) oapiRequest {
	return oapiRequest{method: http.MethodGet, path: path, want: want}
}

// oapiJobRequests are one request to each /v3 operation, about job id.
func oapiJobRequests(t testing.TB, id string) []oapiRequest {
	q := "?job_uuid=" + id
	return []oapiRequest{
		oapiPost(t, map[string]any{"numbers": []string{"15551230100"}}, 0),
		oapiPost(t, map[string]any{"numbers": seqNumbers(15551230100, 12)}, 0),
		{method: http.MethodGet, path: "/v3/bulk_restore_status" + q},
		{method: http.MethodHead, path: "/v3/bulk_restore_status" + q},
		{method: http.MethodGet, path: "/v3/restore/15551230100"},
		{method: http.MethodPost, path: "/v3/restore/15551230100"},
		{method: http.MethodPost, path: "/v3/bulk_restore_cancel" + q},
		{method: http.MethodPost, path: "/v3/bulk_restore_webhook" + q},
		{method: http.MethodGet, path: "/v3/bulk_restore_jobs"},
		{method: http.MethodHead, path: "/v3/bulk_restore_jobs"},
	}
}

// oapiWaitStatus polls a job's status, checking every answer, until cond
// holds for its body.
func oapiWaitStatus(t testing.TB, c *oapiContract, base, id, what string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	var body map[string]any
	waitFor(t, 20*time.Second, what, func() bool {
		body = c.do(t, base, oapiGet("/v3/bulk_restore_status?job_uuid="+id, http.StatusOK)).Body
		return cond(body)
	})
	return body
}

// oapiInventoryScenario drives a -dev server (demo inventory) through every
// endpoint's successes and the errors of state: 404, 409, 410, 422.
func oapiInventoryScenario(t *testing.T, c *oapiContract) {
	s := startServer(t, "-dev")
	recv := newOAPIReceiver(t)
	do := func(rq oapiRequest) oapiResponse { t.Helper(); return c.do(t, s.URL, rq) }

	traced := do(oapiRequest{method: http.MethodGet, path: "/healthz", noAuth: true, header: map[string]string{"X-Request-Id": "oapi-trace-1"}, want: http.StatusOK})
	if id := traced.Header.Get("X-Request-Id"); id != "oapi-trace-1" {
		t.Fatalf("X-Request-Id=%q, want the client's own", id)
	}
	for _, path := range []string{"/healthz", "/readyz", "/openapi.yaml"} {
		do(oapiRequest{method: http.MethodGet, path: path, noAuth: true, want: http.StatusOK})
		do(oapiRequest{method: http.MethodHead, path: path, noAuth: true, want: http.StatusOK})
	}

	// Synchronous: JSON (success, identity and registration flags, 409), a
	// form, plain text.
	first := do(oapiPost(t, map[string]any{"numbers": []string{"15551230111", "15551230113", "15551230117"}}, http.StatusOK))
	syncID := first.Body["job_uuid"].(string)
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore", contentType: "application/x-www-form-urlencoded",
		body: []byte("numbers=15551230121&numbers=15551230122&numbers%5B%5D=15551230126&numbers_text=15551230123%0D%0A15551230125%0A"),
		want: http.StatusOK})
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore", contentType: "text/plain; charset=utf-8",
		body: []byte("15551230131\r\n 15551230132 \n\n"), want: http.StatusOK})
	do(oapiPost(t, map[string]any{"numbers": nil, "numbers_text": "15551230133", "webhook_url": nil}, http.StatusOK))

	// A webhook that fails first, then is delivered again on request.
	recv.code.Store(http.StatusInternalServerError)
	hooked := do(oapiPost(t, map[string]any{"numbers": []string{"15551230141"}, "webhook_url": recv.URL}, http.StatusOK))
	if hooked.Body["webhook_error"] != "HTTP 500 from webhook" {
		t.Fatalf("webhook_error=%v, want HTTP 500 from webhook", hooked.Body["webhook_error"])
	}
	hookedID := hooked.Body["job_uuid"].(string)
	st := do(oapiGet("/v3/bulk_restore_status?job_uuid="+hookedID, http.StatusOK))
	if log, _ := st.Body["webhook_attempt_log"].([]any); len(log) == 0 {
		t.Fatalf("status after a failed delivery has no webhook_attempt_log: %s", st.Raw)
	}
	do(oapiGet("/v3/bulk_restore_status?job_uuid="+hookedID+"&number=15551230141", http.StatusOK))
	do(oapiGet("/v3/bulk_restore_status?job_uuid="+hookedID+"&number=15551230142", http.StatusNotFound))
	do(oapiGet("/v3/bulk_restore_status?job_uuid="+strings.ToUpper(hookedID), http.StatusOK))
	recv.code.Store(http.StatusNoContent)
	re := do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore_webhook?job_uuid=" + hookedID, want: http.StatusOK})
	if re.Body["delivered"] != true {
		t.Fatalf("redelivery: %s", re.Raw)
	}
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore_webhook?job_uuid=" + syncID, want: http.StatusConflict})
	if n := c.checkWebhooks(t, recv.messages()); n < 2 {
		t.Fatalf("the receiver got %d messages, want the first attempt and the redelivery", n)
	}

	// Queued: 202 with Location, polled to completion, paged, filtered.
	queued := do(oapiPost(t, map[string]any{"numbers": seqNumbers(15551230150, 12)}, http.StatusAccepted))
	queuedID := queued.Body["job_uuid"].(string)
	if loc := queued.Header.Get("Location"); loc != "/v3/bulk_restore_status?job_uuid="+queuedID {
		t.Fatalf("Location=%q", loc)
	}
	oapiWaitStatus(t, c, s.URL, queuedID, "the queued job to complete", func(b map[string]any) bool { return b["status"] == "completed" })
	do(oapiGet("/v3/bulk_restore_status?job_uuid="+queuedID+"&offset=2&limit=3", http.StatusOK))
	do(oapiGet("/v3/bulk_restore_status?job_uuid="+queuedID+"&limit=0", http.StatusOK))
	do(oapiRequest{method: http.MethodHead, path: "/v3/bulk_restore_status?job_uuid=" + queuedID, want: http.StatusOK})
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore_cancel?job_uuid=" + queuedID, want: http.StatusConflict})

	// Idempotency-Key: the original answer again, 422 for another body.
	keyed := oapiPost(t, map[string]any{"numbers": []string{"15551230171"}}, http.StatusOK)
	keyed.header = map[string]string{"Idempotency-Key": "oapi-sync-1"}
	do(keyed)
	if again := do(keyed); again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay has no Idempotent-Replayed: %v", again.Header)
	}
	other := oapiPost(t, map[string]any{"numbers": []string{"15551230172"}}, http.StatusUnprocessableEntity)
	other.header = keyed.header
	do(other)
	big := oapiPost(t, map[string]any{"numbers": seqNumbers(15551230180, 12)}, http.StatusAccepted)
	big.header = map[string]string{"Idempotency-Key": "oapi-queued-1"}
	do(big)
	if again := do(big); again.Header.Get("Idempotent-Replayed") != "true" || again.Header.Get("Location") == "" {
		t.Fatalf("queued replay headers: %v", again.Header)
	}

	// One number: restored, already active, 409, 410, 404.
	do(oapiGet("/v3/restore/15551230142", http.StatusOK))
	do(oapiRequest{method: http.MethodPost, path: "/v3/restore/15551230142", want: http.StatusOK})
	do(oapiGet("/v3/restore/15551230147", http.StatusConflict))
	do(oapiGet("/v3/restore/15551230149", http.StatusGone))
	do(oapiRequest{method: http.MethodPost, path: "/v3/restore/15559990000", want: http.StatusNotFound})

	// The job list, a page at a time.
	do(oapiGet("/v3/bulk_restore_jobs", http.StatusOK))
	do(oapiRequest{method: http.MethodHead, path: "/v3/bulk_restore_jobs?limit=2", want: http.StatusOK})
	page := do(oapiGet("/v3/bulk_restore_jobs?status=completed&limit=1", http.StatusOK))
	next, _ := page.Body["next_before"].(string)
	if next == "" {
		t.Fatalf("first page of one has no next_before: %s", page.Raw)
	}
	do(oapiGet("/v3/bulk_restore_jobs?limit=500&before="+next, http.StatusOK))

	// Unknown jobs are 404 everywhere.
	unknown := "00000000-0000-4000-8000-000000000000"
	do(oapiGet("/v3/bulk_restore_status?job_uuid="+unknown, http.StatusNotFound))
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore_cancel?job_uuid=" + unknown, want: http.StatusNotFound})
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore_webhook?job_uuid=" + unknown, want: http.StatusNotFound})
	do(oapiGet("/v3/bulk_restore_jobs?before="+unknown, http.StatusNotFound))

	// Credentials: none, or wrong, on every /v3 operation.
	for _, rq := range oapiJobRequests(t, syncID) {
		rq.noAuth, rq.want, rq.invalid = true, http.StatusUnauthorized, true
		do(rq)
		rq.noAuth, rq.user, rq.key, rq.invalid = false, "demo", "wrong", false
		got := do(rq)
		if got.Header.Get("WWW-Authenticate") != `Basic realm="bulkrestore"` {
			t.Fatalf("401 without the Basic challenge: %v", got.Header)
		}
	}
}

// oapiRequestErrorScenario provokes every 400, 405, 413, 415 and 431 and the
// 404 of a path no endpoint serves.
func oapiRequestErrorScenario(t *testing.T, c *oapiContract) {
	s := startServer(t, "-dev")
	do := func(rq oapiRequest) oapiResponse { t.Helper(); return c.do(t, s.URL, rq) }
	id := do(oapiPost(t, map[string]any{"numbers": []string{"15551230111"}}, http.StatusOK)).Body["job_uuid"].(string)
	bad := func(method, path string) {
		t.Helper()
		do(oapiRequest{method: method, path: path, want: http.StatusBadRequest, invalid: true})
	}

	// POST /v3/bulk_restore: what the document already refuses, then what
	// only the server can.
	for _, body := range []string{`{"numbers":`, `{"numbers":"15551230111"}`, `{"numbers":[15551230111]}`, `[1,2]`, `{"webhook_url":7}`} {
		do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore", contentType: "application/json", body: []byte(body),
			want: http.StatusBadRequest, invalid: true})
	}
	withKey := oapiPost(t, map[string]any{"numbers": []string{"15551230111"}}, http.StatusBadRequest)
	withKey.header, withKey.invalid = map[string]string{"Idempotency-Key": "not a key!"}, true
	do(withKey)
	invalid := do(oapiPost(t, map[string]any{"numbers": []string{"12", "15551230111", "abc"}}, http.StatusBadRequest))
	if list, _ := invalid.Body["invalid_numbers"].([]any); len(list) != 2 {
		t.Fatalf("invalid_numbers: %s", invalid.Raw)
	}
	do(oapiPost(t, map[string]any{}, http.StatusBadRequest))
	do(oapiPost(t, map[string]any{"numbers": []string{"15551230111"}, "webhook_url": "ftp://example.com/x"}, http.StatusBadRequest))
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore", contentType: "text/plain", body: []byte("\n\n"), want: http.StatusBadRequest})

	// 413: too many numbers, too big a body.
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore", contentType: "text/plain",
		body: []byte(strings.Join(seqNumbers(15550000000, 10001), "\n")), want: http.StatusRequestEntityTooLarge})
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore", contentType: "text/plain",
		body: []byte(strings.Repeat("1", 4<<20+1)), want: http.StatusRequestEntityTooLarge})

	// 408: a body that trickles in, cut off once its grace has passed.
	_, slow := startServiceConfigured(t, func(cfg *serveConfig) { cfg.bodyGrace = 200 * time.Millisecond }, "-dev")
	c.do(t, slow.URL, oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore", contentType: "application/json",
		body: []byte(`{"numbers":["1555`), trickle: true, want: http.StatusRequestTimeout, unchecked: true})

	// 415: a type the endpoint does not take, a malformed one.
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore", contentType: "application/xml", body: []byte("15551230111"),
		want: http.StatusUnsupportedMediaType, invalid: true})
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore", contentType: "text/plain; charset", body: []byte("15551230111"),
		want: http.StatusUnsupportedMediaType, unchecked: true})

	// Parameters.
	bad(http.MethodGet, "/v3/bulk_restore_status")
	bad(http.MethodGet, "/v3/bulk_restore_status?job_uuid=nope")
	bad(http.MethodGet, "/v3/bulk_restore_status?job_uuid={"+id+"}")
	bad(http.MethodGet, "/v3/bulk_restore_status?job_uuid="+id+"&number=12a")
	bad(http.MethodGet, "/v3/bulk_restore_status?job_uuid="+id+"&offset=-1")
	bad(http.MethodGet, "/v3/bulk_restore_status?job_uuid="+id+"&limit=x")
	bad(http.MethodGet, "/v3/restore/123")
	bad(http.MethodPost, "/v3/restore/1555123011x")
	bad(http.MethodPost, "/v3/bulk_restore_cancel")
	bad(http.MethodPost, "/v3/bulk_restore_cancel?job_uuid=nope")
	bad(http.MethodPost, "/v3/bulk_restore_webhook?job_uuid=nope")
	bad(http.MethodGet, "/v3/bulk_restore_jobs?status=done")
	bad(http.MethodGet, "/v3/bulk_restore_jobs?limit=0")
	bad(http.MethodGet, "/v3/bulk_restore_jobs?limit=501")
	bad(http.MethodGet, "/v3/bulk_restore_jobs?before=nope")

	// Headers well over 64 KiB (the server allows a few KiB of slack): the
	// HTTP server's own 431, whatever the path.
	huge := map[string]string{"X-Padding": strings.Repeat("a", 100<<10)}
	for _, path := range []string{"/healthz", "/readyz", "/openapi.yaml"} {
		do(oapiRequest{method: http.MethodGet, path: path, noAuth: true, header: huge, want: http.StatusRequestHeaderFieldsTooLarge})
	}

	// No such endpoint, no such method, and paths not in clean form (no
	// redirect: info.description says 404).
	for _, rq := range []oapiRequest{
		{method: http.MethodGet, path: "/nope", want: http.StatusNotFound},
		{method: http.MethodGet, path: "/v3/nope", want: http.StatusNotFound},
		{method: http.MethodGet, path: "//healthz", noAuth: true, want: http.StatusNotFound},
		{method: http.MethodGet, path: "/./healthz", noAuth: true, want: http.StatusNotFound},
		{method: http.MethodGet, path: "/v3/../healthz", noAuth: true, want: http.StatusNotFound},
		{method: http.MethodGet, path: "/v3/bulk_restore", want: http.StatusMethodNotAllowed},
		{method: http.MethodDelete, path: "/healthz", want: http.StatusMethodNotAllowed},
		{method: http.MethodPut, path: "/v3/bulk_restore_jobs", want: http.StatusMethodNotAllowed},
	} {
		do(rq)
	}
}

// oapiRateLimitScenario provokes a 429 on every /v3 operation.
func oapiRateLimitScenario(t *testing.T, c *oapiContract) {
	s := startServer(t, "-dev", "-rate-limit", "0.5", "-rate-burst", "1")
	id := c.do(t, s.URL, oapiPost(t, map[string]any{"numbers": []string{"15551230111"}}, http.StatusOK)).Body["job_uuid"].(string)
	for _, rq := range oapiJobRequests(t, id) {
		limited := false
		for try := 0; try < 5 && !limited; try++ { // a token may come back between two tries
			got := c.do(t, s.URL, rq)
			limited = got.Status == http.StatusTooManyRequests
			if limited && got.Header.Get("Retry-After") == "" {
				t.Fatalf("429 without Retry-After: %v", got.Header)
			}
		}
		if !limited {
			t.Fatalf("%s %s: no 429 in 5 tries at 0.5 requests a second", rq.method, rq.path)
		}
	}
}

// oapiBackend is a Restorer whose answers the contract test picks by
// number: 1555999xxxx waits for the gate, 15558880NNN fails with status NNN,
// anything else is restored.
type oapiBackend struct {
	gate    chan struct{}
	once    sync.Once
	started atomic.Int32 // numbers that began waiting for the gate
}

// open lets the waiting numbers finish; it may be called twice.
func (b *oapiBackend) open() { b.once.Do(func() { close(b.gate) }) }

// Restore implements Restorer.
func (b *oapiBackend) Restore(ctx context.Context, _ int64, number string) Outcome {
	switch {
	case strings.HasPrefix(number, "1555999"):
		b.started.Add(1)
		select {
		case <-b.gate:
		case <-ctx.Done():
			return Outcome{StatusCode: http.StatusGatewayTimeout, Message: "Error: 'HTTP 504'"}
		}
	case strings.HasPrefix(number, "15558880"):
		code, _ := strconv.Atoi(number[8:])
		return Outcome{StatusCode: code, Message: fmt.Sprintf("Error: 'HTTP %d'", code)}
	}
	return Outcome{Success: true, StatusCode: http.StatusOK, Message: msgRestored, RequiresIdentityUpdate: true, NeedsRegistration: true}
}

// oapiBackendScenario uses a backend the test controls: every failure
// status of a single restore, a job caught while it runs (pending and
// processing numbers, the active-jobs cap, an early redelivery), then
// cancelled.
func oapiBackendScenario(t *testing.T, c *oapiContract) {
	backend := &oapiBackend{gate: make(chan struct{})}
	svc, srv := startServiceWith(t, backend, "-dev", "-max-active-jobs", "1", "-workers", "2")
	svc.app.idempotencyWait = 50 * time.Millisecond
	t.Cleanup(backend.open) // runs before the service stops
	do := func(rq oapiRequest) oapiResponse { t.Helper(); return c.do(t, srv.URL, rq) }
	recv := newOAPIReceiver(t)

	do(oapiGet("/v3/restore/15557770000", http.StatusOK))
	for _, code := range []int{400, 401, 404, 409, 410, 418, 422, 429, 500, 502, 503, 504, 507} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			got := do(oapiRequest{method: method, path: fmt.Sprintf("/v3/restore/15558880%d", code), want: code})
			if got.Body["status"] != "failed" || got.Body["status_code"] != float64(code) {
				t.Fatalf("restore failing with %d: %s", code, got.Raw)
			}
		}
	}
	redirected := do(oapiRequest{method: http.MethodPost, path: "/v3/restore/15558880302", want: http.StatusBadGateway})
	if redirected.Body["status_code"] != float64(302) {
		t.Fatalf("a 302 failure: %s", redirected.Raw)
	}

	// A synchronous request whose restore is held, and the same request
	// again: it waits for the first one's answer, then is told to retry.
	held := oapiPost(t, map[string]any{"numbers": []string{"15559991000"}}, http.StatusOK)
	held.header = map[string]string{"Idempotency-Key": "oapi-held"}
	heldDone := make(chan struct{})
	go func() {
		defer close(heldDone)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+held.path, bytes.NewReader(held.body))
		req.Header.Set("Content-Type", held.contentType)
		req.Header.Set("Idempotency-Key", "oapi-held")
		req.SetBasicAuth("demo", "demo")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, 10*time.Second, "the held restore to start", func() bool { return backend.started.Load() == 1 })
	held.want = http.StatusConflict
	if got := do(held); got.Header.Get("Retry-After") == "" {
		t.Fatalf("409 for a key still in progress without Retry-After: %v", got.Header)
	}

	job := oapiPost(t, map[string]any{"numbers": seqNumbers(15559990000, 12), "webhook_url": recv.URL}, http.StatusAccepted)
	job.header = map[string]string{"Idempotency-Key": "oapi-gated"}
	id := do(job).Body["job_uuid"].(string)
	do(job) // the replay
	capped := do(oapiPost(t, map[string]any{"numbers": seqNumbers(15557770100, 12)}, http.StatusTooManyRequests))
	if capped.Header.Get("Retry-After") == "" {
		t.Fatalf("active-jobs 429 without Retry-After: %v", capped.Header)
	}
	oapiWaitStatus(t, c, srv.URL, id, "a number to be under way", func(map[string]any) bool {
		return backend.started.Load() > 1 // the held request's restore is the first
	})
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore_webhook?job_uuid=" + id, want: http.StatusConflict})
	do(oapiGet("/v3/bulk_restore_jobs?status=processing", http.StatusOK))

	cancelled := do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore_cancel?job_uuid=" + id, want: http.StatusOK})
	if cancelled.Body["status"] != "cancelled" {
		t.Fatalf("cancel: %s", cancelled.Raw)
	}
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore_cancel?job_uuid=" + id, want: http.StatusConflict})
	do(oapiGet("/v3/bulk_restore_status?job_uuid="+id, http.StatusOK))
	backend.open()
	<-heldDone
	oapiWaitStatus(t, c, srv.URL, id, "the cancelled job's webhook", func(b map[string]any) bool {
		return b["webhook_delivered_at"] != nil
	})
	do(oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore_webhook?job_uuid=" + id, want: http.StatusOK})
	do(oapiGet("/v3/bulk_restore_jobs?status=cancelled", http.StatusOK))
	if n := c.checkWebhooks(t, recv.messages()); n < 2 {
		t.Fatalf("the receiver got %d messages, want the cancelled job's and its redelivery", n)
	}
	do(job) // the replay, after the job ended
}

// oapiBrokenStorageScenario renames the jobs table under a running server,
// so that every /v3 operation fails with 500.
func oapiBrokenStorageScenario(t *testing.T, c *oapiContract) {
	s := startServer(t, "-dev")
	oapiBreakJobsTable(t, s.DB)
	for _, rq := range oapiJobRequests(t, "00000000-0000-4000-8000-000000000000") {
		rq.want = http.StatusInternalServerError
		c.do(t, s.URL, rq)
	}
}
