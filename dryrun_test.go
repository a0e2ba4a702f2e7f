package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dryDB is a second, read-only look at a running server's database.
func dryDB(t *testing.T, path string) testSQL {
	t.Helper()
	return rawSQL(t, path)
}

// dryFootprint is everything a restore writes, read back: the row counts of
// the tables a job fills, and every inventory row's state.
func dryFootprint(t *testing.T, db testSQL) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"jobs", "job_numbers", "attempts", "webhook_attempts", "idempotency_keys"} {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		fmt.Fprintf(&b, "%s=%d ", table, n)
	}
	rows, err := db.Query("SELECT number, state FROM inventory ORDER BY user_id, number")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n, state string
		if err := rows.Scan(&n, &state); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s ", n, state)
	}
	return b.String()
}

// dryHook is a webhook receiver that counts what it is sent.
type dryHook struct {
	URL string
	got atomic.Int32
}

// newDryHook starts a receiver on loopback, stopped at cleanup.
func newDryHook(t *testing.T) *dryHook {
	h := &dryHook{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL + "/hook"
	return h
}

// dryInventory is the inventory of the dry-run tests: one row per case of
// the result table, released times relative to now.
func dryInventory(now time.Time) string {
	at := func(ago time.Duration) string { return now.Add(-ago).UTC().Format(timeLayout) }
	return "number,state,released_at,requires_identity_update,needs_registration\n" +
		"15552000001,active," + at(24*time.Hour) + ",0,0\n" +
		"15552000002,released," + at(time.Hour) + ",0,0\n" +
		"15552000003,released," + at(719*time.Hour) + ",1,1\n" +
		"15552000004,released," + at(721*time.Hour) + ",0,0\n" +
		"15552000005,unavailable," + at(time.Hour) + ",0,0\n"
}

// dryResult is the part of a result the dry run and the restore share.
type dryResult struct {
	number, status, message string
	code                    any
	riu, nr                 any
}

// dryResults reads the results of a body as dryResults.
func dryResults(t *testing.T, body map[string]any) []dryResult {
	t.Helper()
	var out []dryResult
	for _, r := range results(t, body) {
		out = append(out, dryResult{number: r["number"].(string), status: r["status"].(string), message: r["message"].(string),
			code: r["status_code"], riu: r["requires_identity_update"], nr: r["needs_registration"]})
	}
	return out
}

func TestDryRunShowsWhatARestoreWouldGiveAndChangesNothing(t *testing.T) {
	forEachStore(t, testDryRunShowsWhatARestoreWouldGiveAndChangesNothing)
}

// testDryRunShowsWhatARestoreWouldGiveAndChangesNothing runs TestDryRunShowsWhatARestoreWouldGiveAndChangesNothing on one database.
func testDryRunShowsWhatARestoreWouldGiveAndChangesNothing(t *testing.T, dbURL string) {
	s := startServer(t, "-db", dbURL, "-allow-private-webhooks")
	key, _ := addUser(t, s.DB, "acme")
	importCSV(t, s.DB, "acme", dryInventory(time.Now()))
	db := dryDB(t, s.DB)
	hook := newDryHook(t)
	numbers := []string{"15552000001", "15552000002", "15552000003", "15552000004", "15552000005", "15552000006"}
	before := dryFootprint(t, db)

	dry := callKeyed(t, s.URL+"/v3/bulk_restore", "acme", key, "dry-1",
		map[string]any{"numbers": numbers, "webhook_url": hook.URL, "dry_run": true})
	if dry.Status != http.StatusOK {
		t.Fatalf("dry run: status=%d, want 200: %s", dry.Status, dry.Raw)
	}
	want := []dryResult{
		{"15552000001", "success", msgAlreadyActive, 200.0, 0.0, nil},
		{"15552000002", "success", msgRestored, 200.0, 0.0, nil},
		{"15552000003", "success", msgRestored, 200.0, 1.0, 1.0},
		{"15552000004", "failed", msgWindowExpired, 410.0, 0.0, nil},
		{"15552000005", "failed", msgNoLongerAvail, 409.0, 0.0, nil},
		{"15552000006", "failed", msgNotFound, 404.0, 0.0, nil},
	}
	t.Run("each number gets the result of the inventory table, in input order", func(t *testing.T) {
		if got := dryResults(t, dry.Body); !slices.Equal(got, want) {
			t.Fatalf("results\n got %v\nwant %v", got, want)
		}
		for field, n := range map[string]float64{"total_numbers": 6, "success_count": 3, "failure_count": 3, "unknown_count": 0} {
			if dry.Body[field] != n {
				t.Errorf("%s=%v, want %v", field, dry.Body[field], n)
			}
		}
		if dry.Body["dry_run"] != true || dry.Body["job_uuid"] != nil {
			t.Errorf("dry_run=%v job_uuid=%v, want true and no job", dry.Body["dry_run"], dry.Body["job_uuid"])
		}
	})
	t.Run("no job, inventory change, key or webhook comes of it", func(t *testing.T) {
		if after := dryFootprint(t, db); after != before {
			t.Fatalf("the database changed:\nbefore %s\nafter  %s", before, after)
		}
		if n := hook.got.Load(); n != 0 {
			t.Fatalf("the webhook receiver got %d messages", n)
		}
	})
	t.Run("the real request after it gives the same results", func(t *testing.T) {
		// Under the key the dry run was sent with: a key the dry run had
		// recorded would answer 422 (another body) instead of restoring.
		real := callKeyed(t, s.URL+"/v3/bulk_restore", "acme", key, "dry-1",
			map[string]any{"numbers": numbers, "webhook_url": hook.URL})
		if real.Status != http.StatusOK || real.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("real request: status=%d replayed=%q: %s", real.Status, real.Header.Get("Idempotent-Replayed"), real.Raw)
		}
		if got := dryResults(t, real.Body); !slices.Equal(got, want) {
			t.Fatalf("the restore gave\n%v\nthe dry run said\n%v", got, want)
		}
		if hook.got.Load() != 1 {
			t.Fatalf("the receiver got %d messages from the real request, want 1", hook.got.Load())
		}
	})
	t.Run("a dry run after the restore sees the numbers active", func(t *testing.T) {
		again := call(t, http.MethodPost, s.URL+"/v3/bulk_restore?dry_run=1", "acme", key, map[string]any{"numbers": numbers[1:3]})
		got := dryResults(t, again.Body)
		if len(got) != 2 || got[0].message != msgAlreadyActive || got[1].message != msgAlreadyActive || got[1].riu != 1.0 {
			t.Fatalf("after the restore: %v", got)
		}
	})
}

// callKeyed is a JSON POST with an Idempotency-Key.
func callKeyed(t *testing.T, target, user, key, idem string, body any) apiResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(string(oapiJSON(t, body))))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idem)
	req.SetBasicAuth(user, key)
	return dryDo(t, req)
}

// dryDo sends a request and decodes the JSON object it answers.
func dryDo(t *testing.T, req *http.Request) apiResponse {
	t.Helper()
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := apiResponse{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if err := json.Unmarshal(raw, &out.Body); err != nil {
		t.Fatalf("%s %s: %v: %s", req.Method, req.URL, err, raw)
	}
	return out
}

func TestDryRunSpellings(t *testing.T) {
	forEachStore(t, testDryRunSpellings)
}

// testDryRunSpellings runs TestDryRunSpellings on one database.
func testDryRunSpellings(t *testing.T, dbURL string) {
	s := startServer(t, "-db", dbURL, "-dev")
	db := dryDB(t, s.DB)
	const n = "15551230111"
	cases := []struct {
		name        string
		query       string
		contentType string
		body        string
		want        any // true: a dry run; false: a real restore; an int: that error status
	}{
		{"JSON true is a dry run", "", "application/json", `{"numbers":["` + n + `"],"dry_run":true}`, true},
		{"JSON 1 is a dry run", "", "application/json", `{"numbers":["` + n + `"],"dry_run":1}`, true},
		{`JSON "1" is a dry run`, "", "application/json", `{"numbers":["` + n + `"],"dry_run":"1"}`, true},
		{`JSON "true" is a dry run`, "", "application/json", `{"numbers":["` + n + `"],"dry_run":"true"}`, true},
		{"the field name matches in any case", "", "application/json", `{"numbers":["` + n + `"],"Dry_Run":true}`, true},
		{"a form's dry_run=1 is a dry run", "", "application/x-www-form-urlencoded", "numbers=" + n + "&dry_run=1", true},
		{"a form's dry_run=true is a dry run", "", "application/x-www-form-urlencoded", "numbers=" + n + "&dry_run=true", true},
		{"a form may repeat dry_run when it agrees", "", "application/x-www-form-urlencoded", "numbers=" + n + "&dry_run=1&dry_run=true", true},
		{"the query's dry_run=1 makes a plain-text body a dry run", "dry_run=1", "text/plain", n, true},
		{"the query's dry_run=true with a JSON body is a dry run", "dry_run=true", "application/json", `{"numbers":["` + n + `"]}`, true},
		{"the query and the body may both say so", "dry_run=1", "application/json", `{"numbers":["` + n + `"],"dry_run":true}`, true},
		{"JSON false is a real restore", "", "application/json", `{"numbers":["` + n + `"],"dry_run":false}`, false},
		{"JSON null counts as absent", "", "application/json", `{"numbers":["` + n + `"],"dry_run":null}`, false},
		{"the query's dry_run=0 is a real restore", "dry_run=0", "text/plain", n, false},
		{"a form's dry_run=false is a real restore", "", "application/x-www-form-urlencoded", "numbers=" + n + "&dry_run=false", false},
		{"JSON yes is refused", "", "application/json", `{"numbers":["` + n + `"],"dry_run":"yes"}`, 400},
		{"JSON 2 is refused", "", "application/json", `{"numbers":["` + n + `"],"dry_run":2}`, 400},
		{"a JSON array is refused", "", "application/json", `{"numbers":["` + n + `"],"dry_run":[true]}`, 400},
		{"a JSON object is refused", "", "application/json", `{"numbers":["` + n + `"],"dry_run":{}}`, 400},
		{"JSON dry_run given twice is refused", "", "application/json", `{"numbers":["` + n + `"],"dry_run":true,"dry_run":true}`, 400},
		{"a form's dry_run=yes is refused", "", "application/x-www-form-urlencoded", "numbers=" + n + "&dry_run=yes", 400},
		{"a form's empty dry_run is refused", "", "application/x-www-form-urlencoded", "numbers=" + n + "&dry_run=", 400},
		{"a form whose dry_run values disagree is refused", "", "application/x-www-form-urlencoded", "numbers=" + n + "&dry_run=1&dry_run=0", 400},
		{"the query's dry_run=TRUE is refused", "dry_run=TRUE", "text/plain", n, 400},
		{"the query's empty dry_run is refused", "dry_run", "text/plain", n, 400},
		{"a query that disagrees with the body is refused", "dry_run=1", "application/json", `{"numbers":["` + n + `"],"dry_run":false}`, 400},
		{"a query whose dry_run values disagree is refused", "dry_run=1&dry_run=0", "text/plain", n, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dryFootprint(t, db)
			target := s.URL + "/v3/bulk_restore"
			if c.query != "" {
				target += "?" + c.query
			}
			got := callRaw(t, http.MethodPost, target, c.contentType, strings.NewReader(c.body), "demo", "demo")
			switch want := c.want.(type) {
			case bool:
				if got.Status != http.StatusOK || (got.Body["dry_run"] == true) != want {
					t.Fatalf("status=%d dry_run=%v, want 200 and dry run %v: %s", got.Status, got.Body["dry_run"], want, got.Raw)
				}
				if changed := dryFootprint(t, db) != before; changed == want {
					t.Fatalf("database changed=%v for dry run %v", changed, want)
				}
			case int:
				if got.Status != want || !strings.Contains(got.Body["message"].(string), "dry_run") {
					t.Fatalf("status=%d, want %d naming dry_run: %s", got.Status, want, got.Raw)
				}
				if dryFootprint(t, db) != before {
					t.Fatal("a refused request changed the database")
				}
			}
		})
	}
}

func TestDryRunAppliesTheLimitsOfARealRequest(t *testing.T) {
	backend := &oapiBackend{gate: make(chan struct{})}
	svc, srv := startServiceWith(t, backend, "-dev", "-max-numbers", "12", "-max-active-jobs", "1", "-workers", "1")
	t.Cleanup(backend.open)
	db := dryDB(t, svc.app.cfg.db)
	// An active queued job that holds the -max-active-jobs cap.
	held := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": seqNumbers(15559990000, 11)})
	if held.Status != http.StatusAccepted {
		t.Fatalf("held job: %d %s", held.Status, held.Raw)
	}
	before := dryFootprint(t, db)
	dry := func(body any) apiResponse {
		t.Helper()
		return call(t, http.MethodPost, srv.URL+"/v3/bulk_restore?dry_run=1", "demo", "demo", body)
	}
	cases := []struct {
		name string
		body any
		want int
	}{
		{"an invalid number is a 400 listing it", map[string]any{"numbers": []string{"15551230111", "12ab"}}, 400},
		{"no numbers is a 400", map[string]any{"numbers": []string{}}, 400},
		{"more than -max-numbers is a 413", map[string]any{"numbers": seqNumbers(15551230100, 13)}, 413},
		{"a webhook_url that is not http is a 400", map[string]any{"numbers": []string{"15551230111"}, "webhook_url": "ftp://x.example/h"}, 400},
		{"an unknown field is a 400", map[string]any{"numbers": []string{"15551230111"}, "dryrun": true}, 400},
		{"as many as -max-numbers is a 200, even with the active-jobs cap reached", map[string]any{"numbers": seqNumbers(15551230100, 12)}, 200},
		{"duplicates are dropped as in a real request", map[string]any{"numbers": []string{"15551230111", " 15551230111", "15551230112"}}, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := dry(c.body)
			if got.Status != c.want {
				t.Fatalf("status=%d, want %d: %s", got.Status, c.want, got.Raw)
			}
			if c.want == http.StatusBadRequest && strings.Contains(c.name, "invalid number") {
				if list, _ := got.Body["invalid_numbers"].([]any); len(list) != 1 || list[0] != "12ab" {
					t.Fatalf("invalid_numbers=%v, want [12ab]", got.Body["invalid_numbers"])
				}
			}
			if c.want == http.StatusOK {
				body := c.body.(map[string]any)
				uniq := slices.Compact(slices.Clone(body["numbers"].([]string)))
				if strings.Contains(c.name, "duplicates") {
					uniq = []string{"15551230111", "15551230112"}
				}
				if got.Body["total_numbers"] != float64(len(uniq)) || len(results(t, got.Body)) != len(uniq) {
					t.Fatalf("total_numbers=%v with %d results, want %d", got.Body["total_numbers"], len(results(t, got.Body)), len(uniq))
				}
			}
			if dryFootprint(t, db) != before {
				t.Fatal("the dry run changed the database")
			}
		})
	}
	t.Run("a Content-Type the endpoint does not take is a 415", func(t *testing.T) {
		got := callRaw(t, http.MethodPost, srv.URL+"/v3/bulk_restore?dry_run=1", "application/xml", strings.NewReader("<x/>"), "demo", "demo")
		if got.Status != http.StatusUnsupportedMediaType {
			t.Fatalf("status=%d, want 415", got.Status)
		}
	})
	t.Run("a malformed Idempotency-Key is ignored, as the key itself", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v3/bulk_restore?dry_run=1", strings.NewReader("15551230111"))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Idempotency-Key", "not a key!")
		req.SetBasicAuth("demo", "demo")
		if got := dryDo(t, req); got.Status != http.StatusOK || got.Body["dry_run"] != true {
			t.Fatalf("status=%d: %s", got.Status, got.Raw)
		}
	})
}

// dryUpstream is a fake upstream that answers restores and previews by
// number and keeps every request it got: 15553000200 can be restored,
// 15553000404 is not found, 15553000503 is unavailable, 15553000504 never
// answers (until the caller gives up), and any other is restored after a
// short latency, counting how many calls are under way at once.
type dryUpstream struct {
	URL      string
	mu       sync.Mutex
	requests []string // "METHOD /path user:password accept"
	inFlight atomic.Int32
	most     atomic.Int32
}

// newDryUpstream starts the fake upstream, stopped at cleanup.
func newDryUpstream(t *testing.T) *dryUpstream {
	u := &dryUpstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		u.mu.Lock()
		u.requests = append(u.requests, fmt.Sprintf("%s %s %s:%s %s", r.Method, r.URL.Path, user, pass, r.Header.Get("Accept")))
		u.mu.Unlock()
		switch r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:] {
		case "15553000200":
			fmt.Fprint(w, `{"message":"Number can be restored","requires_identity_update":"1","needs_registration":true}`)
		case "15553000404":
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"no such number"}`)
		case "15553000503":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "15553000504":
			<-r.Context().Done()
		default:
			n := u.inFlight.Add(1)
			for m := u.most.Load(); n > m && !u.most.CompareAndSwap(m, n); m = u.most.Load() {
			}
			select { // the latency of the fake: time for other calls to arrive
			case <-time.After(20 * time.Millisecond):
			case <-r.Context().Done():
			}
			u.inFlight.Add(-1)
			fmt.Fprint(w, `{}`)
		}
	}))
	t.Cleanup(srv.Close)
	u.URL = srv.URL
	return u
}

// seen returns the requests so far.
func (u *dryUpstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.requests)
}

func TestDryRunOnTheUpstreamBackend(t *testing.T) {
	forEachStore(t, testDryRunOnTheUpstreamBackend)
}

// testDryRunOnTheUpstreamBackend runs TestDryRunOnTheUpstreamBackend on one database.
func testDryRunOnTheUpstreamBackend(t *testing.T, dbURL string) {
	up := newDryUpstream(t)
	env := map[string]string{"BULKRESTORE_UPSTREAM_USER": "svc", "BULKRESTORE_UPSTREAM_PASSWORD": "pw"}
	base := []string{"-backend", "upstream", "-upstream-url", up.URL + "/restore/{number}", "-restore-timeout", "300ms"}
	numbers := []string{"15553000200", "15553000404", "15553000503", "15553000504"}

	t.Run("without a preview URL every number is unknown and the upstream hears nothing", func(t *testing.T) {
		s := startServerEnv(t, env, append([]string{"-db", dbURL}, base...)...)
		key, _ := addUser(t, s.DB, "acme")
		got := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "acme", key, map[string]any{"numbers": numbers, "dry_run": true})
		if got.Status != http.StatusOK || got.Body["unknown_count"] != 4.0 || got.Body["success_count"] != 0.0 || got.Body["failure_count"] != 0.0 {
			t.Fatalf("status=%d: %s", got.Status, got.Raw)
		}
		for _, r := range results(t, got.Body) {
			if r["status"] != "unknown" || r["message"] != msgNotChecked || r["status_code"] != nil {
				t.Fatalf("result %v, want unknown, %q, status_code null", r, msgNotChecked)
			}
		}
		if seen := up.seen(); len(seen) != 0 {
			t.Fatalf("the upstream got %v", seen)
		}
	})

	t.Run("with a preview URL each number is one GET to it, read as a restore's answer", func(t *testing.T) {
		s := startServerEnv(t, env, append([]string{"-db", anotherDB(t, dbURL)}, append(slices.Clone(base), "-upstream-preview-url", up.URL+"/preview/{number}")...)...)
		key, _ := addUser(t, s.DB, "acme")
		db := dryDB(t, s.DB)
		before := dryFootprint(t, db)
		start := len(up.seen())
		got := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "acme", key, map[string]any{"numbers": numbers, "dry_run": true})
		if got.Status != http.StatusOK {
			t.Fatalf("status=%d: %s", got.Status, got.Raw)
		}
		want := []dryResult{
			{"15553000200", "success", "Number can be restored", 200.0, 1.0, 1.0},
			{"15553000404", "failed", "no such number", 404.0, 0.0, nil},
			{"15553000503", "failed", "Error: 'HTTP 503'", 503.0, 0.0, nil},
			{"15553000504", "failed", "Error: 'upstream preview did not answer within 300ms'", 504.0, 0.0, nil},
		}
		if res := dryResults(t, got.Body); !slices.Equal(res, want) {
			t.Fatalf("results\n got %v\nwant %v", res, want)
		}
		seen := up.seen()[start:]
		slices.Sort(seen)
		var wantSeen []string
		for _, n := range numbers { // one try each: a preview is not retried
			wantSeen = append(wantSeen, "GET /preview/"+n+" svc:pw application/json")
		}
		if !slices.Equal(seen, wantSeen) {
			t.Fatalf("the upstream got\n%q\nwant\n%q", seen, wantSeen)
		}
		if dryFootprint(t, db) != before {
			t.Fatal("the dry run changed the database")
		}
	})

	t.Run("preview calls are at most -workers at a time", func(t *testing.T) {
		s := startServerEnv(t, env, append([]string{"-db", anotherDB(t, dbURL)}, append(slices.Clone(base), "-upstream-preview-url", up.URL+"/preview/{number}", "-workers", "2")...)...)
		key, _ := addUser(t, s.DB, "acme")
		up.most.Store(0)
		got := call(t, http.MethodPost, s.URL+"/v3/bulk_restore?dry_run=1", "acme", key, map[string]any{"numbers": seqNumbers(15554000000, 8)})
		if got.Status != http.StatusOK || got.Body["success_count"] != 8.0 {
			t.Fatalf("status=%d: %s", got.Status, got.Raw)
		}
		if most := up.most.Load(); most != 2 {
			t.Fatalf("at most %d preview calls at once, want 2 (-workers)", most)
		}
	})
}

func TestUpstreamPreviewURLIsValidated(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // part of the error; "" for none
	}{
		{"a template with {number} on the upstream backend is taken",
			[]string{"-backend", "upstream", "-upstream-url", "http://u.example/r/{number}", "-upstream-preview-url", "https://u.example/p/{number}"}, ""},
		{"a template without {number} is refused",
			[]string{"-backend", "upstream", "-upstream-url", "http://u.example/r/{number}", "-upstream-preview-url", "https://u.example/p"}, "-upstream-preview-url must contain {number}"},
		{"a template that is not http is refused",
			[]string{"-backend", "upstream", "-upstream-url", "http://u.example/r/{number}", "-upstream-preview-url", "ftp://u.example/{number}"}, "-upstream-preview-url"},
		{"a preview URL on the inventory backend is refused",
			[]string{"-upstream-preview-url", "https://u.example/p/{number}"}, "needs -backend upstream"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseServeFlags(c.args, mapEnv(nil), io.Discard)
			if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("err=%v, want %q", err, c.want)
			}
		})
	}
	t.Run("the environment sets it too", func(t *testing.T) {
		cfg, err := parseServeFlags([]string{"-backend", "upstream", "-upstream-url", "http://u.example/r/{number}"},
			mapEnv(map[string]string{"BULKRESTORE_UPSTREAM_PREVIEW_URL": "http://u.example/p/{number}"}), io.Discard)
		if err != nil || cfg.upstreamPreviewURL != "http://u.example/p/{number}" {
			t.Fatalf("cfg=%q err=%v", cfg.upstreamPreviewURL, err)
		}
	})
}

// TestAQueryStringThatDoesNotParseIsRefused: Go's URL.Query drops a pair
// holding a ';' without a word, so "?dry_run=1;" read that way restored
// the number for real and "status_code=409;" retried every failure. Every
// /v3 and admin endpoint answers such a query 400 and changes nothing.
func TestAQueryStringThatDoesNotParseIsRefused(t *testing.T) {
	s := startAdminServer(t)
	key, _ := addUser(t, s.DB, "acme")
	importCSV(t, s.DB, "acme", dryInventory(time.Now()))
	db := dryDB(t, s.DB)
	before := dryFootprint(t, db)
	for _, query := range []string{"?dry_run=1;", "?dry_run=1;x=2", "?dry_run=%zz"} {
		resp := callRaw(t, http.MethodPost, s.URL+"/v3/bulk_restore"+query, "text/plain", strings.NewReader("15552000002\n"), "acme", key)
		if resp.Status != http.StatusBadRequest || !strings.Contains(resp.Body["message"].(string), "malformed query string") {
			t.Errorf("POST /v3/bulk_restore%s: %d %s, want 400 malformed query string", query, resp.Status, resp.Raw)
		}
	}
	if after := dryFootprint(t, db); after != before {
		t.Fatalf("the database changed:\nbefore %s\nafter  %s", before, after)
	}
	for _, path := range []string{
		"/v3/bulk_restore_retry?job_uuid=8f6c1f0e-23d2-4717-8c8e-1a518e5738f0&status_code=409;",
		"/v3/bulk_restore_jobs?limit=5;",
	} {
		method := map[bool]string{true: http.MethodPost, false: http.MethodGet}[strings.Contains(path, "retry")]
		if resp := call(t, method, s.URL+path, "acme", key, nil); resp.Status != http.StatusBadRequest {
			t.Errorf("%s %s: %d %s, want 400", method, path, resp.Status, resp.Raw)
		}
	}
	resp, raw := adminRequest(t, http.MethodPut, s.URL+"/admin/v1/users/acme/inventory?replace=1;",
		"Bearer "+testAdminToken, "text/csv", strings.NewReader("number,state\n15559990000,released\n"))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PUT inventory?replace=1;: %d %s, want 400", resp.StatusCode, raw)
	}
	if after := dryFootprint(t, db); after != before {
		t.Fatalf("the database changed:\nbefore %s\nafter  %s", before, after)
	}
}
