package main

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// retryRequest is one POST /v3/bulk_restore_retry.
type retryRequest struct {
	query       string // after ?
	contentType string
	body        string
	header      map[string]string
	user, key   string // demo/demo unless set
}

// retryPost sends a retry request to the server at base.
func retryPost(t *testing.T, base string, rq retryRequest) apiResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v3/bulk_restore_retry?"+rq.query, strings.NewReader(rq.body))
	if err != nil {
		t.Fatal(err)
	}
	if rq.contentType != "" {
		req.Header.Set("Content-Type", rq.contentType)
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	if rq.user == "" {
		rq.user, rq.key = "demo", "demo"
	}
	req.SetBasicAuth(rq.user, rq.key)
	return dryDo(t, req)
}

// retryNumbers returns the numbers of a body's results, in order.
func retryNumbers(t *testing.T, body map[string]any) []string {
	t.Helper()
	var out []string
	for _, r := range results(t, body) {
		out = append(out, r["number"].(string))
	}
	return out
}

// retryStatus reads a job's status body.
func retryStatus(t *testing.T, base, id string) map[string]any {
	t.Helper()
	got := call(t, http.MethodGet, base+"/v3/bulk_restore_status?job_uuid="+id, "demo", "demo", nil)
	if got.Status != http.StatusOK {
		t.Fatalf("status of %s: %d %s", id, got.Status, got.Raw)
	}
	return got.Body
}

// retriedBy is a body's retried_by list (nil when absent).
func retriedBy(body map[string]any) []string {
	var out []string
	list, _ := body["retried_by"].([]any)
	for _, v := range list {
		out = append(out, v.(string))
	}
	return out
}

// The numbers of the retry tests, under oapiBackend: two restored, three
// failing with the status their number ends with.
var (
	retryOK1, retryOK2           = "15557770001", "15557770002"
	retry500, retry404, retry503 = "15558880500", "15558880404", "15558880503"
	retryOriginal                = []string{retryOK1, retry500, retryOK2, retry404, retry503}
	retryFailedInOrder           = []string{retry500, retry404, retry503}
	retryFailedWith500Or503      = []string{retry500, retry503}
	retryGatedNumbers            = seqNumbers(15559990100, 11)
)

func TestRetryMakesAJobOfTheFailedNumbersInOrder(t *testing.T) {
	_, srv := startServiceWith(t, &oapiBackend{gate: make(chan struct{})}, "-dev")
	recv := newOAPIReceiver(t)
	orig := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": retryOriginal})
	if orig.Status != http.StatusOK || orig.Body["failure_count"] != 3.0 {
		t.Fatalf("original: %d %s", orig.Status, orig.Raw)
	}
	u := orig.Body["job_uuid"].(string)
	if _, has := orig.Body["retry_of"]; has {
		t.Fatalf("a job that retries nothing says retry_of: %s", orig.Raw)
	}

	var first string
	t.Run("every failure, in the original's order, answered as a synchronous request", func(t *testing.T) {
		got := retryPost(t, srv.URL, retryRequest{query: "job_uuid=" + u})
		if got.Status != http.StatusOK || got.Body["status"] != "completed" || got.Body["retry_of"] != u {
			t.Fatalf("status=%d: %s", got.Status, got.Raw)
		}
		if n := retryNumbers(t, got.Body); !slices.Equal(n, retryFailedInOrder) {
			t.Fatalf("numbers %v, want %v", n, retryFailedInOrder)
		}
		if got.Body["total_numbers"] != 3.0 || got.Body["failure_count"] != 3.0 || got.Body["webhook_url"] != nil {
			t.Fatalf("summary: %s", got.Raw)
		}
		first = got.Body["job_uuid"].(string)
		if st := retryStatus(t, srv.URL, first); st["retry_of"] != u || st["retried_by"] != nil {
			t.Fatalf("the retry's status: retry_of=%v retried_by=%v", st["retry_of"], st["retried_by"])
		}
		if by := retriedBy(retryStatus(t, srv.URL, u)); !slices.Equal(by, []string{first}) {
			t.Fatalf("the original's retried_by=%v, want [%s]", by, first)
		}
	})
	var narrowed string
	t.Run("status_code narrows the retry to those codes", func(t *testing.T) {
		for _, q := range []string{"status_code=500,503", "status_code=503&status_code=500", "status_code=%20503%20,500,500"} {
			got := retryPost(t, srv.URL, retryRequest{query: "job_uuid=" + u + "&" + q})
			if got.Status != http.StatusOK {
				t.Fatalf("%s: status=%d %s", q, got.Status, got.Raw)
			}
			if n := retryNumbers(t, got.Body); !slices.Equal(n, retryFailedWith500Or503) {
				t.Fatalf("%s: numbers %v, want %v", q, n, retryFailedWith500Or503)
			}
			narrowed = got.Body["job_uuid"].(string)
		}
		got := retryPost(t, srv.URL, retryRequest{query: "job_uuid=" + u + "&status_code=502"})
		if got.Status != http.StatusConflict || got.Body["message"] != "no failed numbers to retry" {
			t.Fatalf("a code no number failed with: status=%d %s", got.Status, got.Raw)
		}
	})
	t.Run("retried_by lists every retry, oldest first, in the status and the job list", func(t *testing.T) {
		by := retriedBy(retryStatus(t, srv.URL, u))
		if len(by) != 4 || by[0] != first || by[3] != narrowed {
			t.Fatalf("retried_by=%v, want 4 jobs from %s to %s", by, first, narrowed)
		}
		list := call(t, http.MethodGet, srv.URL+"/v3/bulk_restore_jobs", "demo", "demo", nil)
		jobs, _ := list.Body["jobs"].([]any)
		links := map[string]string{}
		for _, j := range jobs {
			m := j.(map[string]any)
			retryOf, _ := m["retry_of"].(string)
			links[m["job_uuid"].(string)] = retryOf + "|" + strings.Join(retriedBy(m), ",")
		}
		if links[u] != "|"+strings.Join(by, ",") || links[first] != u+"|" {
			t.Fatalf("job list links: original %q, first retry %q", links[u], links[first])
		}
	})
	t.Run("a retry of a retry links to the retry", func(t *testing.T) {
		got := retryPost(t, srv.URL, retryRequest{query: "job_uuid=" + first + "&status_code=404"})
		if got.Status != http.StatusOK || got.Body["retry_of"] != first {
			t.Fatalf("status=%d %s", got.Status, got.Raw)
		}
		second := got.Body["job_uuid"].(string)
		if by := retriedBy(retryStatus(t, srv.URL, first)); !slices.Equal(by, []string{second}) {
			t.Fatalf("the first retry's retried_by=%v, want [%s]", by, second)
		}
		if by := retriedBy(retryStatus(t, srv.URL, u)); slices.Contains(by, second) {
			t.Fatalf("the original's retried_by %v lists the retry of its retry", by)
		}
	})
	t.Run("the webhook is the original's unless the body names another, or none", func(t *testing.T) {
		hooked := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo",
			map[string]any{"numbers": []string{retry500}, "webhook_url": recv.URL})
		h := hooked.Body["job_uuid"].(string)
		other := recv.URL + "?other=1"
		for _, c := range []struct {
			name, contentType, body string
			want                    any
		}{
			{"no body", "", "", recv.URL},
			{"an empty JSON object", "application/json", "{}", recv.URL},
			{"null", "application/json", `{"webhook_url":null}`, recv.URL},
			{"another URL", "application/json", `{"webhook_url":"` + other + `"}`, other},
			{"another URL without a Content-Type", "", `{"Webhook_URL":"` + other + `"}`, other},
			{"another URL in a form", "application/x-www-form-urlencoded", "webhook_url=" + strings.ReplaceAll(other, "?", "%3F"), other},
			{"an empty string", "application/json", `{"webhook_url":""}`, nil},
		} {
			got := retryPost(t, srv.URL, retryRequest{query: "job_uuid=" + h, contentType: c.contentType, body: c.body})
			if got.Status != http.StatusOK || got.Body["webhook_url"] != c.want {
				t.Fatalf("%s: status=%d webhook_url=%v, want %v: %s", c.name, got.Status, got.Body["webhook_url"], c.want, got.Raw)
			}
		}
		var sawRetry bool
		for _, m := range recv.messages() {
			sawRetry = sawRetry || strings.Contains(string(m.body), `"retry_of":"`+h+`"`)
		}
		if !sawRetry {
			t.Fatal("no webhook message of a retry carries its retry_of")
		}
	})
}

func TestRetryOfAQueuedJobIsQueued(t *testing.T) {
	_, srv := startServiceWith(t, &oapiBackend{gate: make(chan struct{})}, "-dev")
	numbers := append(seqNumbers(15558880400, 12), retryOK1)
	orig := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": numbers})
	u := orig.Body["job_uuid"].(string)
	waitFor(t, 20*time.Second, "the original to complete", func() bool { return retryStatus(t, srv.URL, u)["status"] == "completed" })

	got := retryPost(t, srv.URL, retryRequest{query: "job_uuid=" + u})
	if got.Status != http.StatusAccepted || got.Body["retry_of"] != u || got.Body["total_numbers"] != 12.0 {
		t.Fatalf("status=%d: %s", got.Status, got.Raw)
	}
	v := got.Body["job_uuid"].(string)
	if loc := got.Header.Get("Location"); loc != statusPath(v) {
		t.Fatalf("Location=%q, want %q", loc, statusPath(v))
	}
	waitFor(t, 20*time.Second, "the retry to complete", func() bool { return retryStatus(t, srv.URL, v)["status"] == "completed" })
	st := retryStatus(t, srv.URL, v)
	if n := retryNumbers(t, st); !slices.Equal(n, numbers[:12]) || st["retry_of"] != u {
		t.Fatalf("the retry holds %v (retry_of %v), want %v", n, st["retry_of"], numbers[:12])
	}
}

func TestRetryRefusals(t *testing.T) {
	backend := &oapiBackend{gate: make(chan struct{})}
	svc, srv := startServiceWith(t, backend, "-dev", "-max-active-jobs", "1", "-workers", "1")
	t.Cleanup(backend.open)
	db := dryDB(t, svc.app.cfg.db)
	key, _ := addUser(t, svc.app.cfg.db, "other")
	post := func(body any) string {
		t.Helper()
		got := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", body)
		return got.Body["job_uuid"].(string)
	}
	failing := post(map[string]any{"numbers": retryOriginal})
	allGood := post(map[string]any{"numbers": []string{retryOK1}})
	manyFailures := post(map[string]any{"numbers": seqNumbers(15558880400, 12)})
	waitFor(t, 20*time.Second, "the queued job to complete", func() bool {
		return retryStatus(t, srv.URL, manyFailures)["status"] == "completed"
	})
	gated := post(map[string]any{"numbers": retryGatedNumbers}) // holds the one active job allowed
	waitFor(t, 10*time.Second, "the gated job to start", func() bool { return backend.started.Load() > 0 })
	q := "job_uuid=" + failing
	cases := []struct {
		name string
		rq   retryRequest
		want int
		says string
	}{
		{"no job_uuid is a 400", retryRequest{}, 400, "job_uuid is required"},
		{"a job_uuid that is no UUID is a 400", retryRequest{query: "job_uuid=nope"}, 400, "UUID"},
		{"a status_code that is no number is a 400", retryRequest{query: q + "&status_code=abc"}, 400, "status_code"},
		{"an empty status_code is a 400", retryRequest{query: q + "&status_code="}, 400, "status_code"},
		{"a status_code list with an empty item is a 400", retryRequest{query: q + "&status_code=500,"}, 400, "status_code"},
		{"a status_code below 100 is a 400", retryRequest{query: q + "&status_code=99"}, 400, "status_code"},
		{"a status_code above 599 is a 400", retryRequest{query: q + "&status_code=600"}, 400, "status_code"},
		{"a webhook_url that is not http is a 400", retryRequest{query: q, contentType: "application/json", body: `{"webhook_url":"ftp://x.example/h"}`}, 400, "webhook_url"},
		{"a webhook_url that is no string is a 400", retryRequest{query: q, contentType: "application/json", body: `{"webhook_url":7}`}, 400, "webhook_url must be a string"},
		{"an unknown field is a 400", retryRequest{query: q, contentType: "application/json", body: `{"numbers":["15551230111"]}`}, 400, `unknown field "numbers"`},
		{"a body that is no JSON object is a 400", retryRequest{query: q, contentType: "application/json", body: `["x"]`}, 400, "JSON object"},
		{"malformed JSON is a 400", retryRequest{query: q, contentType: "application/json", body: `{"webhook_url":`}, 400, "malformed JSON"},
		{"webhook_url given twice is a 400", retryRequest{query: q, contentType: "application/json",
			body: `{"webhook_url":"https://a.example/h","webhook_url":"https://b.example/h"}`}, 400, "given twice"},
		{"a malformed Idempotency-Key is a 400", retryRequest{query: q, header: map[string]string{"Idempotency-Key": "no good"}}, 400, "Idempotency-Key"},
		{"a plain-text body is a 415", retryRequest{query: q, contentType: "text/plain", body: "hello"}, 415, "Content-Type"},
		{"a body over 64KiB is a 413", retryRequest{query: q, contentType: "application/json", body: `{"webhook_url":"` + strings.Repeat("a", 64<<10) + `"}`}, 413, "larger than"},
		{"an unknown job is a 404", retryRequest{query: "job_uuid=00000000-0000-4000-8000-000000000000"}, 404, "job not found"},
		{"another user's job is a 404", retryRequest{query: q, user: "other", key: key}, 404, "job not found"},
		{"a job still running is a 409", retryRequest{query: "job_uuid=" + gated}, 409, "not finished"},
		{"a job without failures is a 409", retryRequest{query: "job_uuid=" + allGood}, 409, "no failed numbers to retry"},
		{"a queued retry over -max-active-jobs is a 429", retryRequest{query: "job_uuid=" + manyFailures}, 429, "queued jobs unfinished"},
	}
	before := dryFootprint(t, db)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := retryPost(t, srv.URL, c.rq)
			msg, _ := got.Body["message"].(string)
			if got.Status != c.want || got.Body["status"] != "error" || !strings.Contains(msg, c.says) {
				t.Fatalf("status=%d, want %d saying %q: %s", got.Status, c.want, c.says, got.Raw)
			}
			if dryFootprint(t, db) != before {
				t.Fatal("a refused retry changed the database")
			}
		})
	}
}

func TestRetryOverMaxNumbersIsTooLarge(t *testing.T) {
	forEachStore(t, testRetryOverMaxNumbersIsTooLarge)
}

// testRetryOverMaxNumbersIsTooLarge runs TestRetryOverMaxNumbersIsTooLarge on one database.
func testRetryOverMaxNumbersIsTooLarge(t *testing.T, db string) {
	first := startServer(t, "-db", db, "-dev")
	// 404, 409, 410 under the demo inventory.
	orig := call(t, http.MethodPost, first.URL+"/v3/bulk_restore", "demo", "demo",
		map[string]any{"numbers": []string{"15559000001", "15551230117", "15551230119", "15551230111"}})
	if orig.Body["failure_count"] != 3.0 {
		t.Fatalf("original: %s", orig.Raw)
	}
	u := orig.Body["job_uuid"].(string)
	first.stop()
	s := startServer(t, "-db", anotherDB(t, db), "-dev", "-db", first.DB, "-max-numbers", "2")
	got := retryPost(t, s.URL, retryRequest{query: "job_uuid=" + u})
	if got.Status != http.StatusRequestEntityTooLarge || !strings.Contains(got.Body["message"].(string), "status_code") {
		t.Fatalf("status=%d, want 413 suggesting status_code: %s", got.Status, got.Raw)
	}
	narrowed := retryPost(t, s.URL, retryRequest{query: "job_uuid=" + u + "&status_code=404,410"})
	if n := retryNumbers(t, narrowed.Body); !slices.Equal(n, []string{"15559000001", "15551230119"}) {
		t.Fatalf("narrowed to 404 and 410: %d %v", narrowed.Status, n)
	}
}

func TestRetryIdempotencyKey(t *testing.T) {
	_, srv := startServiceWith(t, &oapiBackend{gate: make(chan struct{})}, "-dev")
	orig := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": retryOriginal})
	u := orig.Body["job_uuid"].(string)
	big := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": seqNumbers(15558880400, 12)})
	b := big.Body["job_uuid"].(string)
	waitFor(t, 20*time.Second, "the queued job to complete", func() bool { return retryStatus(t, srv.URL, b)["status"] == "completed" })
	keyed := func(query, key string) apiResponse {
		t.Helper()
		return retryPost(t, srv.URL, retryRequest{query: query, header: map[string]string{"Idempotency-Key": key}})
	}

	t.Run("a repeat gets the first answer and makes no second job", func(t *testing.T) {
		first := keyed("job_uuid="+u, "retry-k1")
		again := keyed("job_uuid="+u, "retry-k1")
		if first.Status != http.StatusOK || again.Status != http.StatusOK || again.Header.Get("Idempotent-Replayed") != "true" ||
			again.Body["job_uuid"] != first.Body["job_uuid"] || string(again.Raw) != string(first.Raw) {
			t.Fatalf("first %d %s\nagain %d %s", first.Status, first.Raw, again.Status, again.Raw)
		}
		if by := retriedBy(retryStatus(t, srv.URL, u)); len(by) != 1 {
			t.Fatalf("retried_by=%v, want the one job", by)
		}
	})
	t.Run("a queued retry's repeat gets its 202 and Location again", func(t *testing.T) {
		first := keyed("job_uuid="+b, "retry-k2")
		again := keyed("job_uuid="+b, "retry-k2")
		if first.Status != http.StatusAccepted || again.Status != http.StatusAccepted ||
			again.Header.Get("Location") != first.Header.Get("Location") || again.Body["job_uuid"] != first.Body["job_uuid"] {
			t.Fatalf("first %d %v\nagain %d %v", first.Status, first.Header, again.Status, again.Header)
		}
		if by := retriedBy(retryStatus(t, srv.URL, b)); len(by) != 1 {
			t.Fatalf("retried_by=%v, want the one job", by)
		}
	})
	t.Run("the same key on another retry is a 422", func(t *testing.T) {
		for _, q := range []string{"job_uuid=" + u + "&status_code=500", "job_uuid=" + b} {
			if got := keyed(q, "retry-k1"); got.Status != http.StatusUnprocessableEntity {
				t.Fatalf("%s: status=%d, want 422: %s", q, got.Status, got.Raw)
			}
		}
	})
	t.Run("a key of a bulk restore is a 422 on a retry", func(t *testing.T) {
		req := callKeyed(t, srv.URL+"/v3/bulk_restore", "demo", "demo", "retry-k3", map[string]any{"numbers": []string{retryOK2}})
		if req.Status != http.StatusOK {
			t.Fatalf("bulk restore: %d", req.Status)
		}
		if got := keyed("job_uuid="+u, "retry-k3"); got.Status != http.StatusUnprocessableEntity {
			t.Fatalf("status=%d, want 422: %s", got.Status, got.Raw)
		}
	})
}

func TestRetryLinkOutlivesTheOriginalsRetention(t *testing.T) {
	svc, srv := startServiceWith(t, &oapiBackend{gate: make(chan struct{})}, "-dev")
	orig := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": retryOriginal})
	u := orig.Body["job_uuid"].(string)
	v := retryPost(t, srv.URL, retryRequest{query: "job_uuid=" + u}).Body["job_uuid"].(string)
	// The original finished two hours ago; the retry just now.
	db := dryDB(t, svc.app.cfg.db)
	if _, err := db.Exec("UPDATE jobs SET completed_at = completed_at - ? WHERE uuid = ?", (2 * time.Hour).Milliseconds(), u); err != nil {
		t.Fatal(err)
	}
	jan := newJanitor(svc.store, svc.writer, time.Hour, slog.New(slog.NewTextHandler(&testLogWriter{t: t}, nil)))
	if err := jan.sweep(context.Background()); err != nil {
		t.Fatalf("retention sweep: %v", err)
	}
	if got := call(t, http.MethodGet, srv.URL+"/v3/bulk_restore_status?job_uuid="+u, "demo", "demo", nil); got.Status != http.StatusNotFound {
		t.Fatalf("the original after retention: status=%d, want 404", got.Status)
	}
	if st := retryStatus(t, srv.URL, v); st["retry_of"] != u {
		t.Fatalf("the retry's retry_of=%v after the original's deletion, want %s kept", st["retry_of"], u)
	}
	if got := retryPost(t, srv.URL, retryRequest{query: "job_uuid=" + u}); got.Status != http.StatusNotFound {
		t.Fatalf("retrying the deleted original: status=%d, want 404", got.Status)
	}
	if got := retryPost(t, srv.URL, retryRequest{query: "job_uuid=" + v}); got.Status != http.StatusOK || got.Body["retry_of"] != v {
		t.Fatalf("retrying the retry: status=%d %s", got.Status, got.Raw)
	}
}

func TestParseStatusCodes(t *testing.T) {
	cases := []struct {
		name   string
		values []string
		want   []int
		bad    bool
	}{
		{"none is every failure", nil, nil, false},
		{"one list is sorted and its repeats dropped", []string{"503,500,503"}, []int{500, 503}, false},
		{"several values are joined", []string{"500", " 404 "}, []int{404, 500}, false},
		{"an empty value is refused", []string{""}, nil, true},
		{"a trailing comma is refused", []string{"500,"}, nil, true},
		{"a code out of range is refused", []string{"1000"}, nil, true},
		{"a word is refused", []string{"5xx"}, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseStatusCodes(c.values)
			if (err != nil) != c.bad || !slices.Equal(got, c.want) {
				t.Fatalf("got %v, %v; want %v, error %v", got, err, c.want, c.bad)
			}
		})
	}
}
