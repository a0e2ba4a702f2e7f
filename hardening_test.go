package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedUpstream is a fake upstream whose answers wait until the test opens
// the gate, so that a job stays in flight as long as the test needs.
type gatedUpstream struct {
	srv     *httptest.Server
	gate    chan struct{}
	once    sync.Once
	started atomic.Int64
}

// newGatedUpstream starts one; the gate opens at cleanup at the latest.
func newGatedUpstream(t *testing.T) *gatedUpstream {
	g := &gatedUpstream{gate: make(chan struct{})}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.started.Add(1)
		<-g.gate
		w.Write([]byte(`{"message":"Number restored"}`))
	}))
	t.Cleanup(func() { g.open(); g.srv.Close() })
	return g
}

// open lets every waiting and future call answer.
func (g *gatedUpstream) open() { g.once.Do(func() { close(g.gate) }) }

// upstreamArgs are the flags that point a server at the fake.
func (g *gatedUpstream) upstreamArgs() []string {
	return []string{"-backend", "upstream", "-upstream-url", g.srv.URL + "/v3/restore/{number}"}
}

func TestIdempotencyKeyReturnsTheOriginalAnswer(t *testing.T) {
	forEachStore(t, testIdempotencyKeyReturnsTheOriginalAnswer)
}

// testIdempotencyKeyReturnsTheOriginalAnswer runs TestIdempotencyKeyReturnsTheOriginalAnswer on one database.
func testIdempotencyKeyReturnsTheOriginalAnswer(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	post := func(key string, body string) apiResponse {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/v3/bulk_restore", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Idempotency-Key", key)
		req.SetBasicAuth("demo", "demo")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return apiResponse{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	}
	countJobs := func() int {
		store, err := openStore(s.DB)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		var n int
		store.r.QueryRow(store.q("SELECT count(*) FROM jobs")).Scan(&n)
		return n
	}

	t.Run("a synchronous request replayed gives the same body and creates nothing", func(t *testing.T) {
		first := post("sync-1", "numbers=15551230160&numbers=15551230161")
		before := countJobs()
		again := post("sync-1", "numbers=15551230160&numbers=15551230161")
		if first.Status != 200 || again.Status != 200 {
			t.Fatalf("status=%d then %d, want 200 twice", first.Status, again.Status)
		}
		if string(first.Raw) != string(again.Raw) {
			t.Fatalf("replay differs:\n%s\n%s", first.Raw, again.Raw)
		}
		if again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatal("replay is not marked Idempotent-Replayed: true")
		}
		if after := countJobs(); after != before {
			t.Fatalf("jobs=%d after replay, want %d", after, before)
		}
	})
	t.Run("a queued request replayed gives the 202 and its Location again", func(t *testing.T) {
		body := "numbers_text=" + strings.Join(seqNumbers(15551230170, 12), "%0A")
		first := post("queued-1", body)
		again := post("queued-1", body)
		if first.Status != 202 || again.Status != 202 {
			t.Fatalf("status=%d then %d, want 202 twice", first.Status, again.Status)
		}
		if string(first.Raw) != string(again.Raw) || first.Header.Get("Location") != again.Header.Get("Location") {
			t.Fatalf("replay differs:\n%s %s\n%s %s", first.Raw, first.Header.Get("Location"), again.Raw, again.Header.Get("Location"))
		}
	})
	t.Run("the same key with another body is 422", func(t *testing.T) {
		post("diff-1", "numbers=15551230180")
		if got := post("diff-1", "numbers=15551230181"); got.Status != http.StatusUnprocessableEntity {
			t.Fatalf("status=%d, want 422: %s", got.Status, got.Raw)
		}
	})
	t.Run("a malformed key is 400", func(t *testing.T) {
		if got := post("has space", "numbers=15551230182"); got.Status != http.StatusBadRequest {
			t.Fatalf("status=%d, want 400", got.Status)
		}
	})
	t.Run("a key older than 24 hours is forgotten", func(t *testing.T) {
		first := post("old-1", "numbers=15551230183")
		store, err := openStore(s.DB)
		if err != nil {
			t.Fatal(err)
		}
		_, err = store.w.Exec(store.q("UPDATE idempotency_keys SET created_at = ? WHERE key = 'old-1'"), ms(time.Now().Add(-25*time.Hour)))
		store.Close()
		if err != nil {
			t.Fatal(err)
		}
		again := post("old-1", "numbers=15551230183")
		if again.Status != 200 || string(first.Raw) == string(again.Raw) || again.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("an expired key was replayed: status=%d", again.Status)
		}
	})
}

func TestCancelStopsNumbersNotYetStarted(t *testing.T) {
	forEachStore(t, testCancelStopsNumbersNotYetStarted)
}

// testCancelStopsNumbersNotYetStarted runs TestCancelStopsNumbersNotYetStarted on one database.
func testCancelStopsNumbersNotYetStarted(t *testing.T, db string) {
	up := newGatedUpstream(t)
	s := startServer(t, append([]string{"-db", db}, append(up.upstreamArgs(), "-workers", "2", "-allow-private-webhooks")...)...)
	key, _ := addUser(t, s.DB, "alice")
	hooks := make(chan []byte, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooks <- b
	}))
	defer receiver.Close()
	resp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "alice", key,
		map[string]any{"numbers": seqNumbers(15550000100, 30), "webhook_url": receiver.URL})
	id := resp.Body["job_uuid"].(string)
	waitFor(t, 10*time.Second, "two restores to start", func() bool { return up.started.Load() == 2 })

	got := call(t, http.MethodPost, s.URL+"/v3/bulk_restore_cancel?job_uuid="+id, "alice", key, nil)
	if got.Status != http.StatusOK || got.Body["status"] != "cancelled" {
		t.Fatalf("cancel: status=%d body=%s", got.Status, got.Raw)
	}
	up.open() // the two under way finish as usual
	var final apiResponse
	waitFor(t, 10*time.Second, "the two in flight to finish", func() bool {
		final = call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+id, "alice", key, nil)
		return final.Body["success_count"] == float64(2) && final.Body["cancelled_count"] == float64(28)
	})
	if final.Body["status"] != "cancelled" {
		t.Fatalf("job status=%v, want cancelled", final.Body["status"])
	}
	statuses := map[string]int{}
	for _, r := range results(t, final.Body) {
		statuses[r["status"].(string)]++
		if r["status"] == "cancelled" && (r["message"] != msgCancelled || r["status_code"] != nil || r["attempts"] != float64(0)) {
			t.Fatalf("cancelled number looks tried: %v", r)
		}
	}
	if statuses["success"] != 2 || statuses["cancelled"] != 28 {
		t.Fatalf("per-number statuses=%v, want 2 success and 28 cancelled", statuses)
	}
	select {
	case b := <-hooks:
		if !strings.Contains(string(b), `"status":"cancelled"`) || !strings.Contains(string(b), `"cancelled_count":28`) {
			t.Fatalf("webhook payload does not report the cancellation: %s", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no final webhook after cancel")
	}
	if again := call(t, http.MethodPost, s.URL+"/v3/bulk_restore_cancel?job_uuid="+id, "alice", key, nil); again.Status != http.StatusConflict {
		t.Fatalf("cancelling a cancelled job: status=%d, want 409", again.Status)
	}
	if up.started.Load() != 2 {
		t.Fatalf("upstream was called %d times, want 2: cancelled numbers were tried", up.started.Load())
	}
}

func TestCancelAnswers(t *testing.T) {
	forEachStore(t, testCancelAnswers)
}

// testCancelAnswers runs TestCancelAnswers on one database.
func testCancelAnswers(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	done := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": []string{"15551230111"}})
	id := done.Body["job_uuid"].(string)
	cases := []struct {
		name  string
		query string
		want  int
	}{
		{"a completed job cannot be cancelled", "job_uuid=" + id, http.StatusConflict},
		{"an unknown job is 404", "job_uuid=8f6c1f0e-23d2-4717-8c8e-1a518e5738f0", http.StatusNotFound},
		{"a malformed uuid is 400", "job_uuid=nope", http.StatusBadRequest},
		{"a missing uuid is 400", "", http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := call(t, http.MethodPost, s.URL+"/v3/bulk_restore_cancel?"+c.query, "demo", "demo", nil); got.Status != c.want {
				t.Fatalf("status=%d, want %d: %s", got.Status, c.want, got.Raw)
			}
		})
	}
}

func TestRedeliverSendsTheFinalPayloadAgainAndLogsAttempts(t *testing.T) {
	forEachStore(t, testRedeliverSendsTheFinalPayloadAgainAndLogsAttempts)
}

// testRedeliverSendsTheFinalPayloadAgainAndLogsAttempts runs TestRedeliverSendsTheFinalPayloadAgainAndLogsAttempts on one database.
func testRedeliverSendsTheFinalPayloadAgainAndLogsAttempts(t *testing.T, db string) {
	var fail atomic.Bool
	fail.Store(true)
	var deliveries atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		deliveries.Add(1)
	}))
	defer receiver.Close()
	s := startServer(t, "-db", db, "-dev", "-webhook-max-attempts", "1")
	resp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo",
		map[string]any{"numbers": []string{"15551230112"}, "webhook_url": receiver.URL})
	if resp.Body["webhook_error"] != "HTTP 500 from webhook" {
		t.Fatalf("webhook_error=%v, want HTTP 500 from webhook", resp.Body["webhook_error"])
	}
	id := resp.Body["job_uuid"].(string)
	fail.Store(false)
	again := call(t, http.MethodPost, s.URL+"/v3/bulk_restore_webhook?job_uuid="+id, "demo", "demo", nil)
	if again.Status != http.StatusOK || again.Body["delivered"] != true || deliveries.Load() != 1 {
		t.Fatalf("redeliver: status=%d body=%s deliveries=%d", again.Status, again.Raw, deliveries.Load())
	}
	st := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+id, "demo", "demo", nil)
	log, _ := st.Body["webhook_attempt_log"].([]any)
	if len(log) != 2 {
		t.Fatalf("webhook_attempt_log has %d entries, want 2: %s", len(log), st.Raw)
	}
	first, second := log[0].(map[string]any), log[1].(map[string]any)
	if first["error"] != "HTTP 500 from webhook" || first["http_status"] != float64(500) {
		t.Fatalf("first attempt=%v", first)
	}
	if second["error"] != nil || second["http_status"] != float64(200) || st.Body["webhook_delivered_at"] == nil {
		t.Fatalf("second attempt=%v delivered_at=%v", second, st.Body["webhook_delivered_at"])
	}

	noHook := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": []string{"15551230114"}})
	if got := call(t, http.MethodPost, s.URL+"/v3/bulk_restore_webhook?job_uuid="+noHook.Body["job_uuid"].(string), "demo", "demo", nil); got.Status != http.StatusConflict {
		t.Fatalf("redeliver without webhook_url: status=%d, want 409", got.Status)
	}
}

func TestRateLimitsAnswer429WithRetryAfter(t *testing.T) {
	forEachStore(t, testRateLimitsAnswer429WithRetryAfter)
}

// testRateLimitsAnswer429WithRetryAfter runs TestRateLimitsAnswer429WithRetryAfter on one database.
func testRateLimitsAnswer429WithRetryAfter(t *testing.T, db string) {
	t.Run("a user past its rate gets 429", func(t *testing.T) {
		s := startServer(t, "-db", db, "-dev", "-rate-limit", "0.5", "-rate-burst", "2")
		url := s.URL + "/v3/bulk_restore_status?job_uuid=8f6c1f0e-23d2-4717-8c8e-1a518e5738f0"
		for i := range 2 {
			if got := call(t, http.MethodGet, url, "demo", "demo", nil); got.Status != http.StatusNotFound {
				t.Fatalf("request %d: status=%d, want 404", i, got.Status)
			}
		}
		got := call(t, http.MethodGet, url, "demo", "demo", nil)
		if got.Status != http.StatusTooManyRequests {
			t.Fatalf("status=%d, want 429", got.Status)
		}
		if secs, err := strconv.Atoi(got.Header.Get("Retry-After")); err != nil || secs < 1 {
			t.Fatalf("Retry-After=%q, want a positive number of seconds", got.Header.Get("Retry-After"))
		}
	})
	t.Run("an address that keeps failing authentication is refused even with the right key", func(t *testing.T) {
		s := startServer(t, "-db", anotherDB(t, db), "-dev")
		url := s.URL + "/v3/bulk_restore_status?job_uuid=8f6c1f0e-23d2-4717-8c8e-1a518e5738f0"
		for i := range authFailureBurst {
			if got := call(t, http.MethodGet, url, "demo", "wrong-"+strconv.Itoa(i), nil); got.Status != http.StatusUnauthorized {
				t.Fatalf("failure %d: status=%d, want 401", i, got.Status)
			}
		}
		got := call(t, http.MethodGet, url, "demo", "demo", nil)
		if got.Status != http.StatusTooManyRequests || got.Header.Get("Retry-After") == "" {
			t.Fatalf("status=%d Retry-After=%q, want 429 with Retry-After", got.Status, got.Header.Get("Retry-After"))
		}
	})
	t.Run("a user at -max-active-jobs cannot queue another", func(t *testing.T) {
		up := newGatedUpstream(t)
		s := startServer(t, append([]string{"-db", anotherDB(t, db)}, append(up.upstreamArgs(), "-max-active-jobs", "1")...)...)
		key, _ := addUser(t, s.DB, "carol")
		body := map[string]any{"numbers": seqNumbers(15550000200, 11)}
		if got := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "carol", key, body); got.Status != http.StatusAccepted {
			t.Fatalf("first job: status=%d, want 202", got.Status)
		}
		if got := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "carol", key, body); got.Status != http.StatusTooManyRequests {
			t.Fatalf("second job: status=%d, want 429: %s", got.Status, got.Raw)
		}
	})
}

// verifyStandardWebhook checks a webhook-signature header against one
// secret, written from the Standard Webhooks spec, apart from the sender.
func verifyStandardWebhook(secret string, h http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

func TestRotatedSecretSignsAlongsideTheNewOneForADay(t *testing.T) {
	forEachStore(t, testRotatedSecretSignsAlongsideTheNewOneForADay)
}

// testRotatedSecretSignsAlongsideTheNewOneForADay runs TestRotatedSecretSignsAlongsideTheNewOneForADay on one database.
func testRotatedSecretSignsAlongsideTheNewOneForADay(t *testing.T, db string) {
	type delivery struct {
		header http.Header
		body   []byte
	}
	got := make(chan delivery, 8)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), b}
	}))
	defer receiver.Close()
	s := startServer(t, "-db", db, "-dev")
	key, oldSecret := addUser(t, s.DB, "dave")
	importCSV(t, s.DB, "dave", "number,state\n15550000300,active\n")
	var out strings.Builder
	if err := run(t.Context(), []string{"user", "rotate-secret", "-db", s.DB, "dave"}, mapEnv(nil), nil, &out, io.Discard); err != nil {
		t.Fatalf("rotate-secret: %v", err)
	}
	newSecret := out.String()[strings.Index(out.String(), "whsec_"):]
	newSecret = newSecret[:strings.IndexByte(newSecret, '"')]

	send := func() delivery {
		call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "dave", key,
			map[string]any{"numbers": []string{"15550000300"}, "webhook_url": receiver.URL})
		select {
		case d := <-got:
			return d
		case <-time.After(10 * time.Second):
			t.Fatal("no webhook")
			return delivery{}
		}
	}
	d := send()
	if n := len(strings.Fields(d.header.Get("webhook-signature"))); n != 2 {
		t.Fatalf("signatures=%d, want 2 during the overlap", n)
	}
	if !verifyStandardWebhook(newSecret, d.header, d.body) || !verifyStandardWebhook(oldSecret, d.header, d.body) {
		t.Fatal("the message does not verify with both the new and the old secret")
	}
	store, err := openStore(s.DB)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.w.Exec(store.q("UPDATE users SET previous_until = ? WHERE name = 'dave'"), ms(time.Now().Add(-time.Minute)))
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	d = send()
	if !verifyStandardWebhook(newSecret, d.header, d.body) || verifyStandardWebhook(oldSecret, d.header, d.body) {
		t.Fatal("after the overlap only the new secret may verify")
	}
}

// countRows counts rows of a store's database; query is in SQLite's
// dialect.
func countRows(t *testing.T, s *Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.r.QueryRow(s.q(query), args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
