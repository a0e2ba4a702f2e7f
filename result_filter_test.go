package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scriptedBackend is a Restorer whose answer the test picks by number:
// outcomes by number, numbers held until the gate opens (counted as they
// start), and success for every other.
type scriptedBackend struct {
	outcomes map[string]Outcome
	held     map[string]bool
	gate     chan struct{}
	once     sync.Once
	started  atomic.Int32 // held numbers that began waiting
}

// newScriptedBackend builds a backend with a closed gate.
func newScriptedBackend(outcomes map[string]Outcome, held ...string) *scriptedBackend {
	b := &scriptedBackend{outcomes: outcomes, held: map[string]bool{}, gate: make(chan struct{})}
	for _, n := range held {
		b.held[n] = true
	}
	return b
}

// open lets the held numbers finish; it may be called twice.
func (b *scriptedBackend) open() { b.once.Do(func() { close(b.gate) }) }

// Restore implements Restorer.
func (b *scriptedBackend) Restore(ctx context.Context, _ int64, number string) Outcome {
	if b.held[number] {
		b.started.Add(1)
		select {
		case <-b.gate:
		case <-ctx.Done():
			return Outcome{StatusCode: http.StatusGatewayTimeout, Message: "Error: 'HTTP 504'"}
		}
	}
	if o, ok := b.outcomes[number]; ok {
		return o
	}
	return Outcome{Success: true, StatusCode: http.StatusOK, Message: msgRestored}
}

// statusNumbers returns the numbers of a status body's results, in order.
func statusNumbers(t testing.TB, body map[string]any) []string {
	t.Helper()
	var out []string
	for _, r := range results(t, body) {
		out = append(out, r["number"].(string))
	}
	return out
}

// liveJobFixture is a queued job caught while it runs, through a server
// whose backend the test controls: positions 0-3 restored, 4-6 failed, 7-8
// waiting for a retry an hour away (pending), 9 and 10 being restored and
// held there by the two workers (processing), 11 and 12 handed out behind
// them (a window of two per worker) and 13-15 not read yet: 11-15 pending,
// since no worker has started them.
type liveJobFixture struct {
	url     string
	id      string
	numbers []string
	backend *scriptedBackend
}

// startLiveJob builds a liveJobFixture.
func startLiveJob(t *testing.T, db string) liveJobFixture {
	t.Helper()
	numbers := seqNumbers(15550100000, 16)
	notFound := Outcome{StatusCode: http.StatusNotFound, Message: "Error: 'number not found'"}
	busy := Outcome{StatusCode: http.StatusServiceUnavailable, Message: "Error: 'HTTP 503'", Transient: true}
	b := newScriptedBackend(map[string]Outcome{numbers[4]: notFound, numbers[5]: notFound, numbers[6]: notFound,
		numbers[7]: busy, numbers[8]: busy}, numbers[9], numbers[10])
	svc, srv := startServiceWith(t, b, "-dev", "-workers", "2", "-restore-retry-base", "1h", "-db", db)
	t.Cleanup(b.open) // runs before the service stops
	resp := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": numbers})
	if resp.Status != http.StatusAccepted {
		t.Fatalf("submit: status=%d, want 202: %s", resp.Status, resp.Raw)
	}
	f := liveJobFixture{url: srv.URL, id: resp.Body["job_uuid"].(string), numbers: numbers, backend: b}
	waitFor(t, 10*time.Second, "the job to reach its live state", func() bool {
		body := f.status(t, "").Body
		return b.started.Load() == 2 && body["success_count"] == float64(4) && body["failure_count"] == float64(3) &&
			svc.pool.registry.size() == 4
	})
	return f
}

// status reads the job's status with more query parameters.
func (f liveJobFixture) status(t *testing.T, query string) apiResponse {
	t.Helper()
	return call(t, http.MethodGet, f.url+"/v3/bulk_restore_status?job_uuid="+f.id+query, "demo", "demo", nil)
}

// at returns the numbers at some positions.
func (f liveJobFixture) at(positions ...int) []string {
	out := []string{}
	for _, p := range positions {
		out = append(out, f.numbers[p])
	}
	return out
}

func TestResultStatusNarrowsTheResultsOfALiveJob(t *testing.T) {
	forEachStore(t, testResultStatusNarrowsTheResultsOfALiveJob)
}

// testResultStatusNarrowsTheResultsOfALiveJob runs
// TestResultStatusNarrowsTheResultsOfALiveJob on one database: on
// PostgreSQL, processing comes from the live leases in the database.
func testResultStatusNarrowsTheResultsOfALiveJob(t *testing.T, db string) {
	f := startLiveJob(t, db)
	cases := []struct {
		name  string
		query string
		want  []string
	}{
		{"success gives the restored numbers", "&result_status=success", f.at(0, 1, 2, 3)},
		{"failed gives the failed ones", "&result_status=failed", f.at(4, 5, 6)},
		{"pending gives the numbers no worker has started, handed out or not", "&result_status=pending", f.at(7, 8, 11, 12, 13, 14, 15)},
		{"processing gives the numbers the workers hold", "&result_status=processing", f.at(9, 10)},
		{"pending,processing gives both, in input order", "&result_status=pending,processing", f.at(7, 8, 9, 10, 11, 12, 13, 14, 15)},
		{"two final states give both", "&result_status=failed,success", f.at(0, 1, 2, 3, 4, 5, 6)},
		{"a state no number is in gives none", "&result_status=cancelled", f.at()},
		{"a state named twice counts once", "&result_status=failed,failed", f.at(4, 5, 6)},
		{"the parameter repeated is read as one list", "&result_status=failed&result_status=pending",
			f.at(4, 5, 6, 7, 8, 11, 12, 13, 14, 15)},
		{"offset and limit count the failures, not the positions", "&result_status=failed&offset=1&limit=1", f.at(5)},
		{"offset and limit count the processing numbers", "&result_status=processing&offset=1&limit=1", f.at(10)},
		{"offset and limit count the pending numbers", "&result_status=pending&offset=2&limit=3", f.at(11, 12, 13)},
		{"offset past the matches gives none", "&result_status=pending&offset=7", f.at()},
		{"limit=0 gives none", "&result_status=success&limit=0", f.at()},
		{"a number in one of the states is the one result", "&result_status=pending&number=" + f.numbers[7], f.at(7)},
		{"a number handed out but not started is pending", "&result_status=pending&number=" + f.numbers[11], f.at(11)},
		{"a number in another state gives none", "&result_status=failed&number=" + f.numbers[7], f.at()},
		{"without a filter offset seeks by position", "&offset=14", f.at(14, 15)},
		{"without a filter offset and limit page", "&offset=3&limit=2", f.at(3, 4)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := f.status(t, c.query)
			if resp.Status != http.StatusOK {
				t.Fatalf("status=%d, want 200: %s", resp.Status, resp.Raw)
			}
			if got := statusNumbers(t, resp.Body); !slices.Equal(got, c.want) && (len(got) > 0 || len(c.want) > 0) {
				t.Fatalf("results %v, want %v", got, c.want)
			}
			b := resp.Body
			if b["total_numbers"] != float64(16) || b["success_count"] != float64(4) || b["failure_count"] != float64(3) {
				t.Fatalf("the summary's counts changed with the filter: %s", resp.Raw)
			}
			for _, r := range results(t, b) {
				if st := r["status"].(string); strings.Contains(c.query, "result_status=") && !strings.Contains(c.query, st) {
					t.Fatalf("a %s result under %s", st, c.query)
				}
			}
		})
	}

	t.Run("after a cancel, the numbers not started are cancelled and the held ones still processing", func(t *testing.T) {
		cancel := call(t, http.MethodPost, f.url+"/v3/bulk_restore_cancel?job_uuid="+f.id, "demo", "demo", nil)
		if cancel.Status != http.StatusOK {
			t.Fatalf("cancel: status=%d: %s", cancel.Status, cancel.Raw)
		}
		for query, want := range map[string][]string{
			"&result_status=cancelled":  f.at(7, 8, 11, 12, 13, 14, 15),
			"&result_status=processing": f.at(9, 10),
			"&result_status=pending":    f.at(),
		} {
			if got := statusNumbers(t, f.status(t, query).Body); !slices.Equal(got, want) && (len(got) > 0 || len(want) > 0) {
				t.Fatalf("%s: results %v, want %v", query, got, want)
			}
		}
	})
	t.Run("once the held numbers finish, nothing is processing", func(t *testing.T) {
		f.backend.open()
		waitFor(t, 10*time.Second, "the held numbers to be recorded", func() bool {
			return f.status(t, "").Body["success_count"] == float64(6)
		})
		if got := statusNumbers(t, f.status(t, "&result_status=processing").Body); len(got) != 0 {
			t.Fatalf("processing after the job settled: %v", got)
		}
	})
}

func TestStatusRefusesBadFiltersAndFormats(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	id := apiSyncJob(t, s, "15551230100", "15551230199")
	cases := []struct {
		name, query, accept string
	}{
		{"an unknown result_status", "&result_status=bogus", ""},
		{"an empty result_status", "&result_status=", ""},
		{"a trailing comma", "&result_status=failed,", ""},
		{"a state in capitals", "&result_status=FAILED", ""},
		{"a space after the comma", "&result_status=failed,%20pending", ""},
		{"a job state rather than a number state", "&result_status=completed", ""},
		{"one good state and one bad", "&result_status=failed,bogus", ""},
		{"an unknown format", "&format=xml", ""},
		{"an empty format", "&format=", ""},
		{"a format in capitals", "&format=CSV", ""},
		{"a bad filter asked as CSV is still a JSON 400", "&result_status=bogus", "text/csv"},
		{"a bad offset asked as CSV is still a JSON 400", "&format=csv&offset=-1", "text/csv"},
	}
	for _, c := range cases {
		t.Run(c.name+" is a 400", func(t *testing.T) {
			resp, body := getCSV(t, s.URL, "job_uuid="+id+c.query, c.accept)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/json" ||
				!strings.Contains(body, `"status":"error"`) {
				t.Fatalf("status=%d %s: %s, want a JSON 400", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		})
	}
	t.Run("an unknown job asked as CSV is a JSON 404", func(t *testing.T) {
		resp, body := getCSV(t, s.URL, "format=csv&job_uuid=00000000-0000-4000-8000-000000000000", "")
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("status=%d %s: %s, want a JSON 404", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})
	t.Run("a number not in the job asked as CSV is a JSON 404", func(t *testing.T) {
		resp := apiStatus(t, s, "demo", "demo", "format=csv&number=15550000001&job_uuid="+id)
		if resp.Status != http.StatusNotFound {
			t.Fatalf("status=%d, want 404: %s", resp.Status, resp.Raw)
		}
	})
}

// doRequest sends req and returns the answer with its body read whole.
func doRequest(t testing.TB, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", req.URL, err)
	}
	return resp, string(body)
}
