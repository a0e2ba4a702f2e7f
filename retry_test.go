package main

import (
	"context"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestRetryPolicyNext(t *testing.T) {
	transient := Outcome{StatusCode: 503, Transient: true}
	cases := []struct {
		name      string
		policy    retryPolicy
		done      int
		outcome   Outcome
		wantAgain bool
		min, max  time.Duration
	}{
		{"a transient failure after the first try waits between base/2 and base",
			retryPolicy{3, 100 * time.Millisecond, time.Minute}, 1, transient, true, 50 * time.Millisecond, 100 * time.Millisecond},
		{"the wait doubles after the second try",
			retryPolicy{5, 100 * time.Millisecond, time.Minute}, 2, transient, true, 100 * time.Millisecond, 200 * time.Millisecond},
		{"the wait never exceeds the cap",
			retryPolicy{50, 100 * time.Millisecond, time.Second}, 20, transient, true, 500 * time.Millisecond, time.Second},
		{"no retry once maxAttempts tries are done",
			retryPolicy{3, time.Millisecond, time.Minute}, 3, transient, false, 0, 0},
		{"no retry past maxAttempts",
			retryPolicy{3, time.Millisecond, time.Minute}, 4, transient, false, 0, 0},
		{"maxAttempts 1 never retries",
			retryPolicy{1, time.Millisecond, time.Minute}, 1, transient, false, 0, 0},
		{"a final failure is not retried",
			retryPolicy{3, time.Millisecond, time.Minute}, 1, Outcome{StatusCode: 404}, false, 0, 0},
		{"a 500 is not retried",
			retryPolicy{3, time.Millisecond, time.Minute}, 1, Outcome{StatusCode: 500}, false, 0, 0},
		{"a success is not retried",
			retryPolicy{3, time.Millisecond, time.Minute}, 1, Outcome{Success: true, StatusCode: 200}, false, 0, 0},
		{"a Retry-After longer than the backoff wins",
			retryPolicy{3, 10 * time.Millisecond, time.Minute}, 1, Outcome{StatusCode: 429, Transient: true, RetryAfter: time.Second}, true, time.Second, time.Second},
		{"a Retry-After shorter than the backoff is outwaited",
			retryPolicy{3, time.Second, time.Minute}, 1, Outcome{StatusCode: 503, Transient: true, RetryAfter: time.Millisecond}, true, 500 * time.Millisecond, time.Second},
		{"a Retry-After beyond the cap is cut to the cap",
			retryPolicy{3, 10 * time.Millisecond, 10 * time.Minute}, 1, Outcome{StatusCode: 503, Transient: true, RetryAfter: 24 * time.Hour}, true, 10 * time.Minute, 10 * time.Minute},
		{"a Retry-After does not buy a try past maxAttempts",
			retryPolicy{2, 10 * time.Millisecond, time.Minute}, 2, Outcome{StatusCode: 503, Transient: true, RetryAfter: time.Second}, false, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for range 200 {
				wait, again := c.policy.next(c.done, c.outcome)
				if again != c.wantAgain {
					t.Fatalf("got=again %v, want %v", again, c.wantAgain)
				}
				if !again {
					return
				}
				if wait < c.min || wait > c.max {
					t.Fatalf("got=%v, want within [%v, %v]", wait, c.min, c.max)
				}
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Run("the n-th wait lies in [d/2, d] for d = base*2^(n-1)", func(t *testing.T) {
		base := 8 * time.Millisecond
		for n := 1; n <= 6; n++ {
			d := base << (n - 1)
			for range 300 {
				if got := backoff(base, time.Hour, n); got < d/2 || got > d {
					t.Fatalf("got=%v for n=%d, want within [%v, %v]", got, n, d/2, d)
				}
			}
		}
	})
	t.Run("the wait is bounded by the cap however many failures", func(t *testing.T) {
		ceiling := 300 * time.Millisecond
		for n := 1; n <= 200; n++ {
			got := backoff(10*time.Millisecond, ceiling, n)
			if got > ceiling {
				t.Fatalf("got=%v for n=%d, want at most %v", got, n, ceiling)
			}
			if n >= 7 && got < ceiling/2 {
				t.Fatalf("got=%v for n=%d, want at least %v once capped", got, n, ceiling/2)
			}
		}
	})
	t.Run("a base above the cap is cut to the cap", func(t *testing.T) {
		for range 100 {
			if got := backoff(time.Hour, time.Second, 1); got < 500*time.Millisecond || got > time.Second {
				t.Fatalf("got=%v, want within [500ms, 1s]", got)
			}
		}
	})
	t.Run("the wait grows exponentially: every wait is at least the one before", func(t *testing.T) {
		for range 100 {
			prev := time.Duration(0)
			for n := 1; n <= 10; n++ {
				got := backoff(time.Millisecond, time.Hour, n)
				if got < prev {
					t.Fatalf("got=%v for n=%d, want at least %v (n=%d)", got, n, prev, n-1)
				}
				prev = got
			}
			if prev < 256*time.Millisecond {
				t.Fatalf("got=%v after 10 failures from 1ms, want at least 256ms", prev)
			}
		}
	})
	t.Run("the wait is jittered: repeated calls differ", func(t *testing.T) {
		seen := map[time.Duration]bool{}
		for range 100 {
			seen[backoff(time.Second, time.Hour, 3)] = true
		}
		if len(seen) < 10 {
			t.Fatalf("got=%d distinct waits in 100 calls, want at least 10", len(seen))
		}
	})
	t.Run("tiny bases do not panic", func(t *testing.T) {
		for _, base := range []time.Duration{0, 1, 2, 3} {
			if got := backoff(base, time.Second, 1); got < base/2 || got > base {
				t.Fatalf("got=%v for base %v, want within [%v, %v]", got, base, base/2, base)
			}
		}
	})
	t.Run("a huge cap does not overflow into a negative or zero wait", func(t *testing.T) {
		ceiling := time.Duration(math.MaxInt64)
		for _, n := range []int{40, 45, 64, 70, 100} {
			got := backoff(time.Millisecond, ceiling, n)
			if got < time.Millisecond {
				t.Fatalf("got=%v for n=%d, want at least the base 1ms", got, n)
			}
		}
	})
}

// scriptedRestorer answers from a list of outcomes, repeating the last; it
// panics on an outcome with status code -1.
type scriptedRestorer struct {
	mu     sync.Mutex
	script []Outcome
	calls  int
}

// Restore implements Restorer with the next scripted outcome.
func (s *scriptedRestorer) Restore(ctx context.Context, _ int64, _ string) Outcome {
	s.mu.Lock()
	o := s.script[min(s.calls, len(s.script)-1)]
	s.calls++
	s.mu.Unlock()
	if o.StatusCode == -1 {
		panic("scripted panic")
	}
	return o
}

func TestRestoreWithRetries(t *testing.T) {
	ok := Outcome{Success: true, StatusCode: 200, Message: "Number restored"}
	busy := Outcome{StatusCode: 503, Message: "busy", Transient: true}
	gone := Outcome{StatusCode: 404, Message: "Error: 'number not found'"}
	boom := Outcome{StatusCode: -1}
	cases := []struct {
		name       string
		maxAtt     int
		script     []Outcome
		wantTries  int
		wantStatus int
		wantPanics int
	}{
		{"a first-try success is one attempt", 3, []Outcome{ok}, 1, 200, 0},
		{"two transient failures then success are three attempts", 3, []Outcome{busy, busy, ok}, 3, 200, 0},
		{"an always transient failure stops at maxAttempts", 3, []Outcome{busy}, 3, 503, 0},
		{"maxAttempts 5 allows five tries", 5, []Outcome{busy}, 5, 503, 0},
		{"a final failure is one attempt", 3, []Outcome{gone}, 1, 404, 0},
		{"a final failure after a transient one stops there", 5, []Outcome{busy, gone, ok}, 2, 404, 0},
		{"maxAttempts 1 means no retry", 1, []Outcome{busy, ok}, 1, 503, 0},
		{"a panic is an internal failure, not retried", 3, []Outcome{boom, ok}, 1, 500, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &scriptedRestorer{script: c.script}
			panics := 0
			p := retryPolicy{maxAttempts: c.maxAtt, base: 2 * time.Millisecond, max: 20 * time.Millisecond}
			recs := restoreWithRetries(context.Background(), r, p, 1, "15551230111", nil, func(any, []byte) { panics++ })
			if len(recs) != c.wantTries || r.calls != c.wantTries {
				t.Fatalf("got=%d records and %d calls, want %d", len(recs), r.calls, c.wantTries)
			}
			if last := recs[len(recs)-1].Outcome; last.StatusCode != c.wantStatus {
				t.Fatalf("got=%+v, want status_code %d", last, c.wantStatus)
			}
			if panics != c.wantPanics {
				t.Fatalf("got=%d panics reported, want %d", panics, c.wantPanics)
			}
			for i, rec := range recs {
				if rec.Finished.Before(rec.Started) {
					t.Fatalf("got=attempt %d finished %v before it started %v", i+1, rec.Finished, rec.Started)
				}
				if i > 0 && rec.Started.Sub(recs[i-1].Finished) < time.Millisecond {
					t.Fatalf("got=attempt %d started %v after the previous one, want at least base/2", i+1, rec.Started.Sub(recs[i-1].Finished))
				}
			}
		})
	}
	t.Run("a cancelled context stops the waiting and keeps the attempts made", func(t *testing.T) {
		r := &scriptedRestorer{script: []Outcome{busy}}
		ctx, cancel := context.WithCancel(context.Background())
		p := retryPolicy{maxAttempts: 3, base: time.Hour, max: time.Hour}
		time.AfterFunc(20*time.Millisecond, cancel)
		start := time.Now()
		recs := restoreWithRetries(ctx, r, p, 1, "15551230111", nil, nil)
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("got=returned after %v, want promptly after cancel", d)
		}
		if len(recs) != 1 || recs[0].Outcome.StatusCode != 503 {
			t.Fatalf("got=%d records, want the 1 attempt made", len(recs))
		}
	})
}

// upstreamEnv carries the upstream credentials the tests expect to arrive.
var upstreamEnv = map[string]string{"BULKRESTORE_UPSTREAM_USER": "u", "BULKRESTORE_UPSTREAM_PASSWORD": "p"}

// startUpstreamServer runs bulkrestore on the fake upstream with a 10ms
// retry base and returns it with user alice's API key.
func startUpstreamServer(t *testing.T, upstreamURL string, extra ...string) (*testServer, string) {
	t.Helper()
	args := append([]string{"-backend", "upstream", "-upstream-url", upstreamURL, "-restore-retry-base", "10ms"}, extra...)
	s := startServerEnv(t, upstreamEnv, args...)
	key, _ := addUser(t, s.DB, "alice")
	return s, key
}

// submitAndFinish posts the numbers and returns the final status body,
// whether the job ran synchronously or was queued.
func submitAndFinish(t *testing.T, s *testServer, key string, numbers []string) (string, apiResponse) {
	t.Helper()
	resp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "alice", key, map[string]any{"numbers": numbers})
	want := http.StatusOK
	if len(numbers) > 10 {
		want = http.StatusAccepted
	}
	if resp.Status != want {
		t.Fatalf("got=%d, want %d: %s", resp.Status, want, resp.Raw)
	}
	id, _ := resp.Body["job_uuid"].(string)
	if id == "" {
		t.Fatalf("got=no job_uuid in %s, want one", resp.Raw)
	}
	return id, waitJobDone(t, s, "alice", key, id, 30*time.Second)
}

// attemptRows returns (position, attempt, status_code) of every attempt
// of the job (number_attempts: attempt rows, and first tries that were
// final, which are their number's row), read from the file read-only.
func attemptRows(t *testing.T, dbPath, jobUUID string) [][3]int {
	t.Helper()
	db := rawSQL(t, dbPath)
	rows, err := db.Query(`SELECT a.position, a.attempt, a.status_code FROM number_attempts a
		JOIN jobs j ON j.id = a.job_id WHERE j.uuid = ? ORDER BY a.position, a.attempt`, jobUUID)
	if err != nil {
		t.Fatalf("query attempts: %v", err)
	}
	defer rows.Close()
	var out [][3]int
	for rows.Next() {
		var r [3]int
		if err := rows.Scan(&r[0], &r[1], &r[2]); err != nil {
			t.Fatalf("scan attempts: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read attempts: %v", err)
	}
	return out
}

// flakyThenOK fails each number with 503 `failures` times, then succeeds.
func flakyThenOK(failures int) func(string, int) upstreamAnswer {
	return func(_ string, n int) upstreamAnswer {
		if n <= failures {
			return upstreamAnswer{status: 503, body: `{"message":"busy"}`}
		}
		return upstreamAnswer{status: 200, body: `{"message":"Number restored","requires_identity_update":1}`}
	}
}

// checkEvery checks every result of a final status body.
func checkEvery(t *testing.T, body map[string]any, numbers []string, status string, code, attempts int) {
	t.Helper()
	rs := results(t, body)
	if len(rs) != len(numbers) {
		t.Fatalf("got=%d results, want %d", len(rs), len(numbers))
	}
	for i, r := range rs {
		if r["number"] != numbers[i] || r["status"] != status || r["status_code"] != float64(code) || r["attempts"] != float64(attempts) {
			t.Fatalf("got=%v, want number %s status %s status_code %d attempts %d", r, numbers[i], status, code, attempts)
		}
	}
}

func TestUpstreamRetriesEndToEnd(t *testing.T) {
	forEachStore(t, testUpstreamRetriesEndToEnd)
}

// testUpstreamRetriesEndToEnd runs TestUpstreamRetriesEndToEnd on one database.
func testUpstreamRetriesEndToEnd(t *testing.T, db string) {
	paths := []struct {
		name    string
		numbers []string
	}{
		{"the synchronous path", seqNumbers(15551230100, 3)},
		{"a queued job", seqNumbers(15551230200, 12)},
	}
	for _, p := range paths {
		t.Run("on "+p.name+" numbers failing 503 twice then succeeding all succeed after 3 attempts", func(t *testing.T) {
			f := newUpstreamFake(t, flakyThenOK(2))
			s, key := startUpstreamServer(t, f.URL+"/v3/restore/{number}", "-db", anotherDB(t, db))
			id, done := submitAndFinish(t, s, key, p.numbers)
			checkEvery(t, done.Body, p.numbers, "success", 200, 3)
			if done.Body["success_count"] != float64(len(p.numbers)) || done.Body["failure_count"] != float64(0) {
				t.Fatalf("got=success %v failure %v, want %d and 0", done.Body["success_count"], done.Body["failure_count"], len(p.numbers))
			}
			if r := results(t, done.Body)[0]; r["message"] != "Number restored" || r["requires_identity_update"] != float64(1) {
				t.Fatalf("got=%v, want the upstream's message and flag", r)
			}
			for _, n := range p.numbers {
				if got := len(f.hitsFor(n)); got != 3 {
					t.Fatalf("got=%d upstream calls for %s, want 3", got, n)
				}
			}
			rows := attemptRows(t, s.DB, id)
			if len(rows) != 3*len(p.numbers) {
				t.Fatalf("got=%d attempt rows, want %d", len(rows), 3*len(p.numbers))
			}
			for i, r := range rows {
				want := [3]int{i / 3, i%3 + 1, []int{503, 503, 200}[i%3]}
				if r != want {
					t.Fatalf("got=%v, want %v (position, attempt, status_code)", r, want)
				}
			}
		})
		t.Run("on "+p.name+" a number that always answers 503 fails after exactly -restore-max-attempts tries", func(t *testing.T) {
			f := newUpstreamFake(t, fixedAnswer(upstreamAnswer{status: 503, body: `{"error":"overloaded"}`}))
			s, key := startUpstreamServer(t, f.URL+"/v3/restore/{number}", "-db", anotherDB(t, db), "-restore-max-attempts", "4")
			id, done := submitAndFinish(t, s, key, p.numbers)
			checkEvery(t, done.Body, p.numbers, "failed", 503, 4)
			if r := results(t, done.Body)[0]; r["message"] != "overloaded" {
				t.Fatalf("got=%v, want message overloaded", r["message"])
			}
			if done.Body["failure_count"] != float64(len(p.numbers)) {
				t.Fatalf("got=failure_count %v, want %d", done.Body["failure_count"], len(p.numbers))
			}
			for _, n := range p.numbers {
				if got := len(f.hitsFor(n)); got != 4 {
					t.Fatalf("got=%d upstream calls for %s, want 4", got, n)
				}
			}
			if got := len(attemptRows(t, s.DB, id)); got != 4*len(p.numbers) {
				t.Fatalf("got=%d attempt rows, want %d", got, 4*len(p.numbers))
			}
		})
		t.Run("on "+p.name+" a 404 is final after one attempt", func(t *testing.T) {
			f := newUpstreamFake(t, fixedAnswer(upstreamAnswer{status: 404, body: `{"message":"Number not found"}`}))
			s, key := startUpstreamServer(t, f.URL+"/v3/restore/{number}", "-db", anotherDB(t, db))
			id, done := submitAndFinish(t, s, key, p.numbers)
			checkEvery(t, done.Body, p.numbers, "failed", 404, 1)
			if r := results(t, done.Body)[0]; r["message"] != "Number not found" {
				t.Fatalf("got=%v, want message Number not found", r["message"])
			}
			if got := len(f.allHits()); got != len(p.numbers) {
				t.Fatalf("got=%d upstream calls, want %d", got, len(p.numbers))
			}
			if got := len(attemptRows(t, s.DB, id)); got != len(p.numbers) {
				t.Fatalf("got=%d attempt rows, want %d", got, len(p.numbers))
			}
		})
		t.Run("on "+p.name+" -restore-max-attempts 1 means no retry", func(t *testing.T) {
			f := newUpstreamFake(t, flakyThenOK(1))
			s, key := startUpstreamServer(t, f.URL+"/v3/restore/{number}", "-db", anotherDB(t, db), "-restore-max-attempts", "1")
			id, done := submitAndFinish(t, s, key, p.numbers)
			checkEvery(t, done.Body, p.numbers, "failed", 503, 1)
			if got := len(f.allHits()); got != len(p.numbers) {
				t.Fatalf("got=%d upstream calls, want %d", got, len(p.numbers))
			}
			if got := len(attemptRows(t, s.DB, id)); got != len(p.numbers) {
				t.Fatalf("got=%d attempt rows, want %d", got, len(p.numbers))
			}
		})
		t.Run("on "+p.name+" Retry-After: 1 delays the next attempt by at least a second", func(t *testing.T) {
			f := newUpstreamFake(t, func(_ string, n int) upstreamAnswer {
				if n == 1 {
					return upstreamAnswer{status: 503, header: map[string]string{"Retry-After": "1"}}
				}
				return upstreamAnswer{status: 200, body: `{}`}
			})
			s, key := startUpstreamServer(t, f.URL+"/v3/restore/{number}", "-db", anotherDB(t, db))
			_, done := submitAndFinish(t, s, key, p.numbers)
			checkEvery(t, done.Body, p.numbers, "success", 200, 2)
			for _, n := range p.numbers {
				h := f.hitsFor(n)
				if len(h) != 2 {
					t.Fatalf("got=%d upstream calls for %s, want 2", len(h), n)
				}
				if gap := h[1].at.Sub(h[0].at); gap < 950*time.Millisecond || gap > 10*time.Second {
					t.Fatalf("got=gap %v between tries of %s, want at least ~1s (Retry-After) and well under 10s", gap, n)
				}
			}
		})
		t.Run("on "+p.name+" the upstream credentials from the environment reach the upstream", func(t *testing.T) {
			f := newUpstreamFake(t, flakyThenOK(1))
			s, key := startUpstreamServer(t, f.URL+"/v3/restore/{number}", "-db", anotherDB(t, db))
			submitAndFinish(t, s, key, p.numbers)
			hits := f.allHits()
			if len(hits) != 2*len(p.numbers) {
				t.Fatalf("got=%d upstream calls, want %d", len(hits), 2*len(p.numbers))
			}
			for _, h := range hits {
				if !h.hasAuth || h.user != "u" || h.pass != "p" || h.accept != "application/json" {
					t.Fatalf("got=auth %v %q:%q Accept %q, want u:p and application/json", h.hasAuth, h.user, h.pass, h.accept)
				}
			}
		})
	}
}

func TestUpstreamRetriesBetweenTriesWaitTheBackoff(t *testing.T) {
	f := newUpstreamFake(t, flakyThenOK(2))
	s, key := startUpstreamServer(t, f.URL+"/v3/restore/{number}", "-restore-retry-base", "100ms")
	numbers := seqNumbers(15551230300, 12)
	submitAndFinish(t, s, key, numbers)
	for _, n := range numbers {
		h := f.hitsFor(n)
		if len(h) != 3 {
			t.Fatalf("got=%d upstream calls for %s, want 3", len(h), n)
		}
		// Waits: [base/2, base] after the first failure, [base, 2*base] after the second.
		if gap := h[1].at.Sub(h[0].at); gap < 45*time.Millisecond {
			t.Fatalf("got=first gap %v for %s, want at least base/2 = 50ms", gap, n)
		}
		if gap := h[2].at.Sub(h[1].at); gap < 95*time.Millisecond {
			t.Fatalf("got=second gap %v for %s, want at least base = 100ms", gap, n)
		}
	}
}

func TestUpstreamSingleNumberEndpointRetries(t *testing.T) {
	forEachStore(t, testUpstreamSingleNumberEndpointRetries)
}

// testUpstreamSingleNumberEndpointRetries runs TestUpstreamSingleNumberEndpointRetries on one database.
func testUpstreamSingleNumberEndpointRetries(t *testing.T, db string) {
	cases := []struct {
		name         string
		upstreamURL  func(t *testing.T) (string, *upstreamFake)
		extra        []string
		wantHTTP     int
		wantAttempts int
		wantHits     int
	}{
		{"a number that succeeds on the third try answers 200 with attempts 3",
			func(t *testing.T) (string, *upstreamFake) {
				f := newUpstreamFake(t, flakyThenOK(2))
				return f.URL + "/v3/restore/{number}", f
			}, nil, 200, 3, 3},
		{"an upstream that never answers fails 504 after every attempt timed out",
			func(t *testing.T) (string, *upstreamFake) {
				f := newUpstreamFake(t, fixedAnswer(upstreamAnswer{block: true}))
				return f.URL + "/v3/restore/{number}", f
			}, []string{"-restore-timeout", "100ms", "-restore-max-attempts", "2"}, 504, 2, 2},
		{"an unreachable upstream fails 502 after every attempt",
			func(t *testing.T) (string, *upstreamFake) {
				return "http://" + closedPortAddr(t) + "/v3/restore/{number}", nil
			}, nil, 502, 3, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, f := c.upstreamURL(t)
			s, key := startUpstreamServer(t, u, append([]string{"-db", anotherDB(t, db)}, c.extra...)...)
			resp := call(t, http.MethodPost, s.URL+"/v3/restore/15551230111", "alice", key, nil)
			if resp.Status != c.wantHTTP || resp.Body["status_code"] != float64(c.wantHTTP) {
				t.Fatalf("got=HTTP %d status_code %v, want %d: %s", resp.Status, resp.Body["status_code"], c.wantHTTP, resp.Raw)
			}
			id, _ := resp.Body["job_uuid"].(string)
			st := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+id, "alice", key, nil)
			if st.Status != http.StatusOK {
				t.Fatalf("got=%d, want 200: %s", st.Status, st.Raw)
			}
			if r := results(t, st.Body)[0]; r["attempts"] != float64(c.wantAttempts) {
				t.Fatalf("got=attempts %v, want %d", r["attempts"], c.wantAttempts)
			}
			if got := len(attemptRows(t, s.DB, id)); got != c.wantAttempts {
				t.Fatalf("got=%d attempt rows, want %d", got, c.wantAttempts)
			}
			if f != nil {
				if got := len(f.hitsFor("15551230111")); got != c.wantHits {
					t.Fatalf("got=%d upstream calls, want %d", got, c.wantHits)
				}
			}
		})
	}
}
