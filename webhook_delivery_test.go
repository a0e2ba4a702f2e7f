package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// whRetryFlags keep the webhook retry schedule in milliseconds.
var whRetryFlags = []string{"-webhook-retry-base", "10ms", "-webhook-retry-max", "50ms"}

// whFlags is the dev server's flags with the fast retry schedule and more.
func whFlags(extra ...string) []string {
	return append(append([]string{"-dev"}, whRetryFlags...), extra...)
}

// whOpenDB opens a server's database for the test's own reads.
func whOpenDB(t testing.TB, path string) testSQL {
	t.Helper()
	return rawSQL(t, path)
}

// whAttemptRow is one row of the webhook_attempts table.
type whAttemptRow struct {
	Attempt    int
	At         int64
	HTTPStatus sql.NullInt64
	Error      sql.NullString
	DurationMs int64
}

// whAttemptRows returns a job's stored delivery attempts in order.
func whAttemptRows(t testing.TB, db testSQL, jobUUID string) []whAttemptRow {
	t.Helper()
	rows, err := db.Query(`SELECT a.attempt, a.at, a.http_status, a.error, a.duration_ms FROM webhook_attempts a
		JOIN jobs j ON j.id = a.job_id WHERE j.uuid = ? ORDER BY a.attempt`, jobUUID)
	if err != nil {
		t.Fatalf("read webhook_attempts: %v", err)
	}
	defer rows.Close()
	var out []whAttemptRow
	for rows.Next() {
		var r whAttemptRow
		if err := rows.Scan(&r.Attempt, &r.At, &r.HTTPStatus, &r.Error, &r.DurationMs); err != nil {
			t.Fatalf("scan webhook_attempts: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read webhook_attempts: %v", err)
	}
	return out
}

// whJobState returns a job's outbox state and attempt count.
func whJobState(t testing.TB, db testSQL, jobUUID string) (state string, attempts int) {
	t.Helper()
	err := db.QueryRow("SELECT webhook_state, webhook_attempts FROM jobs WHERE uuid = ?", jobUUID).Scan(&state, &attempts)
	if err != nil {
		t.Fatalf("read job %s: %v", jobUUID, err)
	}
	return state, attempts
}

// whDemoSecret returns the demo user's webhook secret.
func whDemoSecret(t testing.TB, db testSQL) string {
	t.Helper()
	var secret string
	if err := db.QueryRow("SELECT webhook_secret FROM users WHERE name = 'demo'").Scan(&secret); err != nil {
		t.Fatalf("read demo secret: %v", err)
	}
	return secret
}

// whSubmit posts a bulk restore with a webhook.
func whSubmit(t testing.TB, s *testServer, user, key string, numbers []string, hook string) apiResponse {
	t.Helper()
	return call(t, http.MethodPost, s.URL+"/v3/bulk_restore", user, key,
		map[string]any{"numbers": numbers, "webhook_url": hook})
}

// whStatus reads a job through the status endpoint.
func whStatus(t testing.TB, s *testServer, user, key, jobUUID string) apiResponse {
	t.Helper()
	r := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+jobUUID, user, key, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("status of %s: %d %s", jobUUID, r.Status, r.Raw)
	}
	return r
}

// whTimePattern matches an API timestamp.
var whTimePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`)

// whWantDelivered checks the status endpoint reports a delivered webhook
// after the given number of attempts.
func whWantDelivered(t testing.TB, st apiResponse, attempts int) {
	t.Helper()
	if st.Body["webhook_attempts"] != float64(attempts) {
		t.Fatalf("webhook_attempts = %v, want %d", st.Body["webhook_attempts"], attempts)
	}
	at, _ := st.Body["webhook_delivered_at"].(string)
	if !whTimePattern.MatchString(at) {
		t.Fatalf("webhook_delivered_at = %v, want a UTC timestamp", st.Body["webhook_delivered_at"])
	}
}

func TestWebhookSyncJobIsDeliveredBeforeTheResponse(t *testing.T) {
	forEachStore(t, testWebhookSyncJobIsDeliveredBeforeTheResponse)
}

// testWebhookSyncJobIsDeliveredBeforeTheResponse runs TestWebhookSyncJobIsDeliveredBeforeTheResponse on one database.
func testWebhookSyncJobIsDeliveredBeforeTheResponse(t *testing.T, dbURL string) {
	s := startServer(t, append([]string{"-db", dbURL}, whFlags()...)...)
	db := whOpenDB(t, s.DB)
	h := newWHReceiver(t, http.StatusOK)
	resp := whSubmit(t, s, "demo", "demo", []string{"15551230100", "15551230103", "15551230107"}, h.URL)
	if resp.Status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", resp.Status, resp.Raw)
	}
	id, _ := resp.Body["job_uuid"].(string)

	t.Run("the 200 body has no webhook_error", func(t *testing.T) {
		if v, ok := resp.Body["webhook_error"]; ok {
			t.Fatalf("webhook_error = %v on a delivered webhook", v)
		}
	})
	t.Run("the receiver got exactly one POST before the response", func(t *testing.T) {
		reqs := h.requests()
		if len(reqs) != 1 || reqs[0].Method != http.MethodPost {
			t.Fatalf("receiver saw %d requests (%v), want one POST", len(reqs), reqs)
		}
	})
	t.Run("the webhook body is the 200 body", func(t *testing.T) {
		got := whDecode(t, h.requests()[0].Body)
		want := resp.Body
		delete(want, "webhook_error")
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("webhook body\n%v\nwant the 200 body\n%v", got, want)
		}
		if len(results(t, got)) != 3 {
			t.Fatalf("webhook body has %d results, want 3", len(results(t, got)))
		}
	})
	t.Run("the webhook is signed with the demo user's secret", func(t *testing.T) {
		r := h.requests()[0]
		if err := whVerify(whDemoSecret(t, db), r.Header, r.Body); err != nil {
			t.Fatal(err)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		if ua := r.Header.Get("User-Agent"); !strings.Contains(ua, "bulkrestore") {
			t.Fatalf("User-Agent %q does not name bulkrestore", ua)
		}
	})
	t.Run("the status endpoint reports one attempt, delivered", func(t *testing.T) {
		st := whStatus(t, s, "demo", "demo", id)
		whWantDelivered(t, st, 1)
		if st.Body["webhook_error"] != nil {
			t.Fatalf("webhook_error = %v, want null", st.Body["webhook_error"])
		}
	})
	t.Run("no second delivery follows", func(t *testing.T) {
		whHolds(t, 300*time.Millisecond, "one delivery", func() bool {
			state, n := whJobState(t, db, id)
			return h.count() == 1 && n == 1 && state == "delivered"
		})
	})
}

func TestWebhookSyncJobIsRetriedUntilTheReceiverRecovers(t *testing.T) {
	forEachStore(t, testWebhookSyncJobIsRetriedUntilTheReceiverRecovers)
}

// testWebhookSyncJobIsRetriedUntilTheReceiverRecovers runs TestWebhookSyncJobIsRetriedUntilTheReceiverRecovers on one database.
func testWebhookSyncJobIsRetriedUntilTheReceiverRecovers(t *testing.T, dbURL string) {
	s := startServer(t, append([]string{"-db", dbURL}, whFlags("-webhook-max-attempts", "1000")...)...)
	db := whOpenDB(t, s.DB)
	h := newWHReceiver(t, http.StatusInternalServerError)
	resp := whSubmit(t, s, "demo", "demo", []string{"15551230101", "15551230102"}, h.URL)
	if resp.Status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", resp.Status, resp.Raw)
	}
	id, _ := resp.Body["job_uuid"].(string)

	t.Run("the 200 body says HTTP 500 from webhook, after results", func(t *testing.T) {
		if resp.Body["webhook_error"] != "HTTP 500 from webhook" {
			t.Fatalf("webhook_error = %v", resp.Body["webhook_error"])
		}
		keys := whTopKeys(t, resp.Raw)
		if keys[len(keys)-1] != "webhook_error" || keys[len(keys)-2] != "results" {
			t.Fatalf("key order %v, want webhook_error right after results", keys)
		}
		if len(results(t, resp.Body)) != 2 {
			t.Fatalf("results: %v", resp.Body["results"])
		}
	})

	waitFor(t, 10*time.Second, "two background retries", func() bool { return h.count() >= 3 })
	h.setStatus(http.StatusOK)
	var st apiResponse
	waitFor(t, 10*time.Second, "delivery after recovery", func() bool {
		st = whStatus(t, s, "demo", "demo", id)
		return st.Body["webhook_delivered_at"] != nil
	})
	reqs := h.requests()

	t.Run("every attempt carries the same message id and body, correctly signed", func(t *testing.T) {
		secret := whDemoSecret(t, db)
		for i, r := range reqs {
			if r.Header.Get("webhook-id") != reqs[0].Header.Get("webhook-id") {
				t.Fatalf("attempt %d webhook-id %q, want %q (same message)", i+1, r.Header.Get("webhook-id"), reqs[0].Header.Get("webhook-id"))
			}
			if !bytes.Equal(r.Body, reqs[0].Body) {
				t.Fatalf("attempt %d body differs:\n%s\n%s", i+1, r.Body, reqs[0].Body)
			}
			if err := whVerify(secret, r.Header, r.Body); err != nil {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
		}
		want := resp.Body
		delete(want, "webhook_error")
		if got := whDecode(t, reqs[0].Body); !reflect.DeepEqual(got, want) {
			t.Fatalf("webhook body\n%v\nwant the 200 body without webhook_error\n%v", got, want)
		}
	})
	t.Run("the status endpoint counts every attempt", func(t *testing.T) {
		whWantDelivered(t, st, len(reqs))
	})
	t.Run("every attempt is stored with its status or error", func(t *testing.T) {
		rows := whAttemptRows(t, db, id)
		if len(rows) != len(reqs) {
			t.Fatalf("%d stored attempts, receiver saw %d", len(rows), len(reqs))
		}
		for i, r := range rows {
			last := i == len(rows)-1
			switch {
			case r.Attempt != i+1:
				t.Fatalf("row %d is attempt %d", i, r.Attempt)
			case !last && (r.HTTPStatus.Int64 != 500 || r.Error.String != "HTTP 500 from webhook"):
				t.Fatalf("attempt %d: status %v error %v, want 500 and HTTP 500 from webhook", r.Attempt, r.HTTPStatus, r.Error)
			case last && (r.HTTPStatus.Int64 != 200 || r.Error.Valid):
				t.Fatalf("last attempt: status %v error %v, want 200 and no error", r.HTTPStatus, r.Error)
			case r.DurationMs < 0 || r.At <= 0:
				t.Fatalf("attempt %d: duration %d at %d", r.Attempt, r.DurationMs, r.At)
			case i > 0 && r.At < rows[i-1].At:
				t.Fatalf("attempt %d at %d is before attempt %d at %d", r.Attempt, r.At, i, rows[i-1].At)
			}
		}
	})
	t.Run("nothing is sent after the delivery", func(t *testing.T) {
		n := len(reqs)
		whHolds(t, 300*time.Millisecond, "no delivery after success", func() bool { return h.count() == n })
	})
}

func TestWebhookQueuedJobIsDeliveredOnceAfterCompletion(t *testing.T) {
	forEachStore(t, testWebhookQueuedJobIsDeliveredOnceAfterCompletion)
}

// testWebhookQueuedJobIsDeliveredOnceAfterCompletion runs TestWebhookQueuedJobIsDeliveredOnceAfterCompletion on one database.
func testWebhookQueuedJobIsDeliveredOnceAfterCompletion(t *testing.T, dbURL string) {
	s := startServer(t, append([]string{"-db", dbURL}, whFlags()...)...)
	db := whOpenDB(t, s.DB)
	h := newWHReceiver(t, http.StatusNoContent)
	numbers := seqNumbers(15551230110, 12)
	resp := whSubmit(t, s, "demo", "demo", numbers, h.URL)
	if resp.Status != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", resp.Status, resp.Raw)
	}
	id, _ := resp.Body["job_uuid"].(string)
	done := waitJobDone(t, s, "demo", "demo", id, 20*time.Second)
	waitFor(t, 10*time.Second, "the webhook", func() bool { return h.count() >= 1 })
	whHolds(t, 300*time.Millisecond, "exactly one delivery", func() bool { return h.count() == 1 })
	r := h.requests()[0]
	got := whDecode(t, r.Body)

	t.Run("the payload is the completed job", func(t *testing.T) {
		for _, k := range []string{"job_uuid", "status", "total_numbers", "success_count", "failure_count",
			"webhook_url", "created_at", "started_at", "completed_at"} {
			if !reflect.DeepEqual(got[k], done.Body[k]) {
				t.Fatalf("%s = %v, status endpoint says %v", k, got[k], done.Body[k])
			}
		}
		if got["status"] != "completed" || got["total_numbers"] != float64(12) {
			t.Fatalf("status %v total %v", got["status"], got["total_numbers"])
		}
		if _, ok := got["webhook_error"]; ok {
			t.Fatalf("webhook body carries webhook_error: %v", got["webhook_error"])
		}
	})
	t.Run("the payload has every final result in input order", func(t *testing.T) {
		rs, final := results(t, got), results(t, done.Body)
		if len(rs) != len(numbers) {
			t.Fatalf("%d results, want %d", len(rs), len(numbers))
		}
		for i, res := range rs {
			if res["number"] != numbers[i] {
				t.Fatalf("results[%d] = %v, want %s", i, res["number"], numbers[i])
			}
			if res["status"] != "success" && res["status"] != "failed" {
				t.Fatalf("results[%d].status = %v, want a final state", i, res["status"])
			}
			for _, k := range []string{"status", "message", "status_code", "requires_identity_update", "needs_registration"} {
				if !reflect.DeepEqual(res[k], final[i][k]) {
					t.Fatalf("results[%d].%s = %v, status endpoint says %v", i, k, res[k], final[i][k])
				}
			}
		}
	})
	t.Run("the payload is signed", func(t *testing.T) {
		if err := whVerify(whDemoSecret(t, db), r.Header, r.Body); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the status endpoint reports one attempt, delivered", func(t *testing.T) {
		whWantDelivered(t, whStatus(t, s, "demo", "demo", id), 1)
		if rows := whAttemptRows(t, db, id); len(rows) != 1 || rows[0].HTTPStatus.Int64 != 204 || rows[0].Error.Valid {
			t.Fatalf("stored attempts %+v, want one 204 without error", rows)
		}
	})
}

func TestWebhookGivesUpAfterMaxAttempts(t *testing.T) {
	forEachStore(t, testWebhookGivesUpAfterMaxAttempts)
}

// testWebhookGivesUpAfterMaxAttempts runs TestWebhookGivesUpAfterMaxAttempts on one database.
func testWebhookGivesUpAfterMaxAttempts(t *testing.T, dbURL string) {
	for _, max := range []int{1, 3} {
		t.Run(fmt.Sprintf("an always failing receiver gets exactly %d attempts", max), func(t *testing.T) {
			s := startServer(t, append([]string{"-db", anotherDB(t, dbURL)}, whFlags("-webhook-max-attempts", itoa(max))...)...)
			db := whOpenDB(t, s.DB)
			h := newWHReceiver(t, http.StatusServiceUnavailable)
			resp := whSubmit(t, s, "demo", "demo", []string{"15551230104"}, h.URL)
			if resp.Status != http.StatusOK || resp.Body["webhook_error"] != "HTTP 503 from webhook" {
				t.Fatalf("status %d webhook_error %v: %s", resp.Status, resp.Body["webhook_error"], resp.Raw)
			}
			id, _ := resp.Body["job_uuid"].(string)
			waitFor(t, 10*time.Second, "the sender to give up", func() bool {
				state, _ := whJobState(t, db, id)
				return state == "failed"
			})
			whHolds(t, 400*time.Millisecond, fmt.Sprintf("%d attempts and state failed", max), func() bool {
				state, n := whJobState(t, db, id)
				return state == "failed" && n == max && h.count() == max && len(whAttemptRows(t, db, id)) == max
			})
			st := whStatus(t, s, "demo", "demo", id)
			if st.Body["webhook_attempts"] != float64(max) || st.Body["webhook_delivered_at"] != nil ||
				st.Body["webhook_error"] != "HTTP 503 from webhook" {
				t.Fatalf("status reports attempts %v delivered_at %v error %v", st.Body["webhook_attempts"],
					st.Body["webhook_delivered_at"], st.Body["webhook_error"])
			}
		})
	}
}

func TestWebhookPendingDeliverySurvivesARestart(t *testing.T) {
	forEachStore(t, testWebhookPendingDeliverySurvivesARestart)
}

// testWebhookPendingDeliverySurvivesARestart runs TestWebhookPendingDeliverySurvivesARestart on one database.
func testWebhookPendingDeliverySurvivesARestart(t *testing.T, dbURL string) {
	h := newWHReceiver(t, http.StatusBadGateway)
	first := startServer(t, append([]string{"-db", dbURL}, whFlags("-webhook-max-attempts", "1000")...)...)
	resp := whSubmit(t, first, "demo", "demo", []string{"15551230105"}, h.URL)
	if resp.Status != http.StatusOK || resp.Body["webhook_error"] != "HTTP 502 from webhook" {
		t.Fatalf("status %d webhook_error %v: %s", resp.Status, resp.Body["webhook_error"], resp.Raw)
	}
	id, _ := resp.Body["job_uuid"].(string)
	waitFor(t, 10*time.Second, "a background retry", func() bool { return h.count() >= 2 })
	first.stop()

	db := whOpenDB(t, first.DB)
	state, before := whJobState(t, db, id)
	if state != "pending" {
		t.Fatalf("after stop the delivery is %q, want pending", state)
	}
	if before != h.count() {
		t.Fatalf("stored %d attempts, receiver saw %d", before, h.count())
	}
	h.setStatus(http.StatusOK)

	second := startServer(t, append([]string{"-db", anotherDB(t, dbURL)}, whFlags("-webhook-max-attempts", "1000", "-db", first.DB)...)...)
	var st apiResponse
	waitFor(t, 10*time.Second, "delivery by the restarted server", func() bool {
		st = whStatus(t, second, "demo", "demo", id)
		return st.Body["webhook_delivered_at"] != nil
	})
	t.Run("the restarted server delivers with the next attempt", func(t *testing.T) {
		whWantDelivered(t, st, before+1)
		rows := whAttemptRows(t, db, id)
		if len(rows) != before+1 || rows[before].HTTPStatus.Int64 != 200 || rows[before].Error.Valid {
			t.Fatalf("stored attempts %+v, want %d failures then one 200", rows, before)
		}
	})
	t.Run("the delivered message is the same one, still verifiable", func(t *testing.T) {
		reqs := h.requests()
		last := reqs[len(reqs)-1]
		if last.Header.Get("webhook-id") != reqs[0].Header.Get("webhook-id") || !bytes.Equal(last.Body, reqs[0].Body) {
			t.Fatalf("the message changed across the restart")
		}
		if err := whVerify(whDemoSecret(t, db), last.Header, last.Body); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("nothing is sent after the delivery", func(t *testing.T) {
		n := h.count()
		whHolds(t, 300*time.Millisecond, "no delivery after success", func() bool { return h.count() == n })
	})
}

func TestWebhookAddressPolicyWithoutDevMode(t *testing.T) {
	forEachStore(t, testWebhookAddressPolicyWithoutDevMode)
}

// testWebhookAddressPolicyWithoutDevMode runs TestWebhookAddressPolicyWithoutDevMode on one database.
func testWebhookAddressPolicyWithoutDevMode(t *testing.T, dbURL string) {
	const csv = "number,state,released_at,requires_identity_update,needs_registration\n15559870001,released,,0,0\n"
	s := startServer(t, append([]string{"-db", dbURL}, whRetryFlags...)...)
	db := whOpenDB(t, s.DB)
	key, _ := addUser(t, s.DB, "alice")
	importCSV(t, s.DB, "alice", csv)
	h := newWHReceiver(t, http.StatusOK)
	port := h.URL[strings.LastIndex(h.URL, ":")+1 : strings.LastIndex(h.URL, "/")]

	for _, hook := range []string{
		"http://127.0.0.1:" + port + "/hook",
		"http://[::1]:" + port + "/hook",
		"http://[::ffff:127.0.0.1]:" + port + "/hook",
		"http://0.0.0.0:" + port + "/hook",
		"http://10.0.0.1/hook",
		"http://192.168.0.10/hook",
		"http://100.64.1.1/hook",
		"http://169.254.169.254/latest/meta-data",
	} {
		t.Run("a literal "+hook+" is rejected at submit with 400", func(t *testing.T) {
			resp := whSubmit(t, s, "alice", key, []string{"15559870001"}, hook)
			if resp.Status != http.StatusBadRequest || resp.Body["status"] != "error" {
				t.Fatalf("status %d, want 400: %s", resp.Status, resp.Raw)
			}
			if msg, _ := resp.Body["message"].(string); !strings.Contains(msg, "webhook_url") {
				t.Fatalf("message %q does not name webhook_url", msg)
			}
		})
	}
	t.Run("a host resolving to loopback is refused at dial time and not retried", func(t *testing.T) {
		resp := whSubmit(t, s, "alice", key, []string{"15559870001"}, "http://localhost:"+port+"/hook")
		if resp.Status != http.StatusOK {
			t.Fatalf("status %d, want 200: %s", resp.Status, resp.Raw)
		}
		werr := resp.Body["webhook_error"]
		if werr != "Webhook address not allowed: 127.0.0.1" && werr != "Webhook address not allowed: ::1" {
			t.Fatalf("webhook_error = %v, want Webhook address not allowed: 127.0.0.1 (or ::1)", werr)
		}
		id, _ := resp.Body["job_uuid"].(string)
		whHolds(t, 400*time.Millisecond, "a single refused attempt", func() bool {
			state, n := whJobState(t, db, id)
			return state == "failed" && n == 1
		})
		st := whStatus(t, s, "alice", key, id)
		if st.Body["webhook_attempts"] != float64(1) || st.Body["webhook_error"] != werr || st.Body["webhook_delivered_at"] != nil {
			t.Fatalf("status reports attempts %v error %v delivered_at %v", st.Body["webhook_attempts"],
				st.Body["webhook_error"], st.Body["webhook_delivered_at"])
		}
		if rows := whAttemptRows(t, db, id); len(rows) != 1 || rows[0].HTTPStatus.Valid || rows[0].Error.String != werr {
			t.Fatalf("stored attempts %+v, want one without status and with the policy error", rows)
		}
	})
	t.Run("the receiver was never called", func(t *testing.T) {
		if n := h.count(); n != 0 {
			t.Fatalf("receiver saw %d requests", n)
		}
	})
	t.Run("with -allow-private-webhooks loopback receivers are called", func(t *testing.T) {
		open := startServer(t, append([]string{"-db", anotherDB(t, dbURL)}, append([]string{"-allow-private-webhooks"}, whRetryFlags...)...)...)
		okKey, _ := addUser(t, open.DB, "bob")
		importCSV(t, open.DB, "bob", csv)
		for i, hook := range []string{"http://127.0.0.1:" + port + "/hook", "http://localhost:" + port + "/hook"} {
			resp := whSubmit(t, open, "bob", okKey, []string{"15559870001"}, hook)
			if resp.Status != http.StatusOK {
				t.Fatalf("%s: status %d: %s", hook, resp.Status, resp.Raw)
			}
			if v, ok := resp.Body["webhook_error"]; ok {
				t.Fatalf("%s: webhook_error = %v", hook, v)
			}
			if h.count() != i+1 {
				t.Fatalf("%s: receiver saw %d requests, want %d", hook, h.count(), i+1)
			}
		}
	})
}

func TestWebhookAttemptsAreStoredWithStatusErrorAndDuration(t *testing.T) {
	forEachStore(t, testWebhookAttemptsAreStoredWithStatusErrorAndDuration)
}

// testWebhookAttemptsAreStoredWithStatusErrorAndDuration runs TestWebhookAttemptsAreStoredWithStatusErrorAndDuration on one database.
func testWebhookAttemptsAreStoredWithStatusErrorAndDuration(t *testing.T, dbURL string) {
	s := startServer(t, append([]string{"-db", dbURL}, whFlags("-webhook-max-attempts", "1", "-webhook-timeout", "1s")...)...)
	db := whOpenDB(t, s.DB)
	cases := []struct {
		name       string
		hook       func(t *testing.T) (url, wantErr string)
		wantStatus int64 // 0: stored as NULL
		minMs      int64
	}{
		{name: "a 500 answer is stored with its status and error", wantStatus: 500,
			hook: func(t *testing.T) (string, string) {
				return newWHReceiver(t, 500).URL, "HTTP 500 from webhook"
			}},
		{name: "a refused connection is stored with its error and no status",
			hook: func(t *testing.T) (string, string) {
				p := whClosedPort(t)
				return fmt.Sprintf("http://127.0.0.1:%d/hook", p), fmt.Sprintf("Failed to connect to 127.0.0.1 port %d: Connection refused", p)
			}},
		{name: "an unresolvable host is stored with its error and no status",
			hook: func(t *testing.T) (string, string) {
				return "http://nonexistent.invalid/hook", "Could not resolve host: nonexistent.invalid"
			}},
		{name: "a receiver that never answers is cut off at -webhook-timeout and stored as a timeout", minMs: 1000,
			hook: func(t *testing.T) (string, string) {
				h := newWHReceiver(t, 200)
				h.delay.Store(int64(10 * time.Second)) // or until the client gives up
				return h.URL, "Operation timed out after"
			}},
		{name: "a 204 answer is stored with its status and no error", wantStatus: 204,
			hook: func(t *testing.T) (string, string) {
				return newWHReceiver(t, 204).URL, ""
			}},
		{name: "a slow answer is stored with how long it took", wantStatus: 200, minMs: 150,
			hook: func(t *testing.T) (string, string) {
				h := newWHReceiver(t, 200)
				h.delay.Store(int64(150 * time.Millisecond))
				return h.URL, ""
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hook, wantErr := c.hook(t)
			before := time.Now().UnixMilli()
			resp := whSubmit(t, s, "demo", "demo", []string{"15551230106"}, hook)
			after := time.Now().UnixMilli()
			if resp.Status != http.StatusOK {
				t.Fatalf("status %d: %s", resp.Status, resp.Raw)
			}
			got, _ := resp.Body["webhook_error"].(string)
			if timeout := strings.HasPrefix(wantErr, "Operation timed out"); timeout {
				m := regexp.MustCompile(`^Operation timed out after (\d+) milliseconds$`).FindStringSubmatch(got)
				if m == nil || len(m[1]) < 4 { // n >= 1000 for -webhook-timeout 1s
					t.Fatalf("webhook_error = %q, want Operation timed out after <n >= 1000> milliseconds", got)
				}
				if after-before > 5000 {
					t.Fatalf("the answer took %d ms; the inline attempt must be bounded by -webhook-timeout 1s", after-before)
				}
				wantErr = got
			}
			if got != wantErr {
				t.Fatalf("webhook_error = %q, want %q", got, wantErr)
			}
			rows := whAttemptRows(t, db, resp.Body["job_uuid"].(string))
			if len(rows) != 1 {
				t.Fatalf("%d stored attempts, want 1", len(rows))
			}
			r := rows[0]
			if r.Attempt != 1 || r.HTTPStatus.Valid != (c.wantStatus != 0) || r.HTTPStatus.Int64 != c.wantStatus {
				t.Fatalf("stored attempt %d status %v, want attempt 1 status %d", r.Attempt, r.HTTPStatus, c.wantStatus)
			}
			if r.Error.Valid != (wantErr != "") || r.Error.String != wantErr {
				t.Fatalf("stored error %v, want %q", r.Error, wantErr)
			}
			if r.DurationMs < c.minMs || r.DurationMs > after-before {
				t.Fatalf("stored duration %d ms, want between %d and %d", r.DurationMs, c.minMs, after-before)
			}
			if r.At < before || r.At > after {
				t.Fatalf("stored time %d outside the request [%d, %d]", r.At, before, after)
			}
		})
	}
}

func TestWebhookRetryWaitsNeverExceedRetryMax(t *testing.T) {
	forEachStore(t, testWebhookRetryWaitsNeverExceedRetryMax)
}

// testWebhookRetryWaitsNeverExceedRetryMax runs TestWebhookRetryWaitsNeverExceedRetryMax on one database.
func testWebhookRetryWaitsNeverExceedRetryMax(t *testing.T, dbURL string) {
	// Uncapped, the waits from a 10ms base would reach 1.28s by the 9th retry.
	const attempts = 10
	s := startServer(t, "-db", dbURL, "-dev", "-webhook-retry-base", "10ms", "-webhook-retry-max", "20ms",
		"-webhook-max-attempts", itoa(attempts))
	db := whOpenDB(t, s.DB)
	h := newWHReceiver(t, http.StatusInternalServerError)
	resp := whSubmit(t, s, "demo", "demo", []string{"15551230108"}, h.URL)
	id, _ := resp.Body["job_uuid"].(string)
	waitFor(t, 20*time.Second, "every attempt", func() bool {
		state, _ := whJobState(t, db, id)
		return state == "failed"
	})
	rows := whAttemptRows(t, db, id)
	if len(rows) != attempts {
		t.Fatalf("%d stored attempts, want %d", len(rows), attempts)
	}
	for i := 1; i < len(rows); i++ {
		wait := rows[i].At - rows[i-1].At - rows[i-1].DurationMs
		if wait < 0 || wait > 20+500 { // 500ms of scheduling slack
			t.Fatalf("wait before attempt %d was %d ms, want at most -webhook-retry-max 20ms", rows[i].Attempt, wait)
		}
	}
}
