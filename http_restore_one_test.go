package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestSingleNumberEndpointMapsUpstreamStatusesThatReadAsTheCallersOwn(t *testing.T) {
	forEachStore(t, testSingleNumberEndpointMapsUpstreamStatusesThatReadAsTheCallersOwn)
}

// testSingleNumberEndpointMapsUpstreamStatusesThatReadAsTheCallersOwn runs TestSingleNumberEndpointMapsUpstreamStatusesThatReadAsTheCallersOwn on one database.
func testSingleNumberEndpointMapsUpstreamStatusesThatReadAsTheCallersOwn(t *testing.T, db string) {
	const number = "15551230111"
	cases := []struct {
		name        string
		answer      func(string, int) upstreamAnswer
		wantHTTP    int
		wantMessage string // the message must contain it; {host} is the upstream's host
		wantRetry   func(v string) bool
		wantHits    int
	}{
		{"an upstream 401 becomes 502 naming the upstream, so the caller does not doubt its own key",
			fixedAnswer(upstreamAnswer{status: 401, body: `{"message":"bad credentials"}`}),
			502, "upstream {host} refused our credentials (HTTP 401)", nil, 1},
		{"an upstream 403 becomes 502 naming the upstream",
			fixedAnswer(upstreamAnswer{status: 403}),
			502, "upstream {host} refused our credentials (HTTP 403)", nil, 1},
		{"an upstream 407 becomes 502 naming the upstream",
			fixedAnswer(upstreamAnswer{status: 407}),
			502, "upstream {host} refused our credentials (HTTP 407)", nil, 1},
		{"a 429 on every attempt becomes 503 with the upstream's Retry-After",
			fixedAnswer(upstreamAnswer{status: 429, header: map[string]string{"Retry-After": "0"}}),
			503, "upstream {host} is limiting our request rate (HTTP 429)", func(v string) bool { return v == "1" }, 2},
		{"a 429 asking for 7 seconds becomes 503 with Retry-After 7",
			func(_ string, n int) upstreamAnswer {
				if n == 1 {
					return upstreamAnswer{status: 429, header: map[string]string{"Retry-After": "0"}}
				}
				return upstreamAnswer{status: 429, header: map[string]string{"Retry-After": "7"}}
			},
			503, "(HTTP 429)", func(v string) bool { return v == "7" }, 2},
		{"a 429 without Retry-After becomes 503 with Retry-After of at least 1 second",
			fixedAnswer(upstreamAnswer{status: 429}),
			503, "(HTTP 429)", func(v string) bool { n, err := strconv.Atoi(v); return err == nil && n >= 1 }, 2},
		{"an upstream 503 on every attempt stays 503 and gains a Retry-After",
			fixedAnswer(upstreamAnswer{status: 503, body: `{"message":"busy"}`}),
			503, "busy", func(v string) bool { n, err := strconv.Atoi(v); return err == nil && n >= 1 }, 2},
		{"a 429 that clears on the second attempt is a plain success",
			func(_ string, n int) upstreamAnswer {
				if n == 1 {
					return upstreamAnswer{status: 429}
				}
				return upstreamAnswer{status: 200, body: `{"message":"Number restored"}`}
			},
			200, "Number restored", nil, 2},
		{"an upstream 404 is about the number and passes through",
			fixedAnswer(upstreamAnswer{status: 404, body: `{"message":"Error: 'number not found'"}`}),
			404, "number not found", nil, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newUpstreamFake(t, c.answer)
			s, key := startUpstreamServer(t, f.URL+"/v3/restore/{number}", "-db", anotherDB(t, db), "-restore-max-attempts", "2")
			host := strings.TrimPrefix(f.URL, "http://")
			resp := call(t, http.MethodPost, s.URL+"/v3/restore/"+number, "alice", key, nil)
			if resp.Status != c.wantHTTP || resp.Body["status_code"] != float64(c.wantHTTP) {
				t.Fatalf("got=HTTP %d status_code %v, want %d for both: %s", resp.Status, resp.Body["status_code"], c.wantHTTP, resp.Raw)
			}
			want := strings.ReplaceAll(c.wantMessage, "{host}", host)
			if msg, _ := resp.Body["message"].(string); !strings.Contains(msg, want) {
				t.Fatalf("message=%q, want it to contain %q", msg, want)
			}
			retry := resp.Header.Get("Retry-After")
			if c.wantRetry == nil && retry != "" {
				t.Fatalf("Retry-After=%q, want none", retry)
			}
			if c.wantRetry != nil && !c.wantRetry(retry) {
				t.Fatalf("Retry-After=%q, not the expected value", retry)
			}
			if got := len(f.hitsFor(number)); got != c.wantHits {
				t.Fatalf("upstream calls=%d, want %d", got, c.wantHits)
			}
			// What was recorded is what was answered.
			id, _ := resp.Body["job_uuid"].(string)
			st := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+id, "alice", key, nil)
			if r := results(t, st.Body)[0]; r["status_code"] != float64(c.wantHTTP) || r["message"] != resp.Body["message"] {
				t.Fatalf("recorded %v, want status_code %d and message %v", r, c.wantHTTP, resp.Body["message"])
			}
			rows := attemptRows(t, s.DB, id)
			if last := rows[len(rows)-1]; last[2] != c.wantHTTP {
				t.Fatalf("last attempt row %v, want status_code %d", last, c.wantHTTP)
			}
		})
	}
}

func TestBulkJobsKeepTheUpstreamsStatusPerNumber(t *testing.T) {
	forEachStore(t, testBulkJobsKeepTheUpstreamsStatusPerNumber)
}

// testBulkJobsKeepTheUpstreamsStatusPerNumber runs TestBulkJobsKeepTheUpstreamsStatusPerNumber on one database.
func testBulkJobsKeepTheUpstreamsStatusPerNumber(t *testing.T, db string) {
	cases := []struct {
		name   string
		status int
	}{
		{"an upstream 401 stays 401 in a bulk job's result", 401},
		{"an upstream 429 stays 429 in a bulk job's result", 429},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newUpstreamFake(t, fixedAnswer(upstreamAnswer{status: c.status}))
			s, key := startUpstreamServer(t, f.URL+"/v3/restore/{number}", "-db", anotherDB(t, db), "-restore-max-attempts", "2")
			numbers := []string{"15551230111"}
			_, body := submitAndFinish(t, s, key, numbers)
			attempts := 1
			if transientStatus[c.status] {
				attempts = 2
			}
			checkEvery(t, body.Body, numbers, "failed", c.status, attempts)
		})
	}
}
