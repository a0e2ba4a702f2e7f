package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// recordingFront is a reverse proxy in front of a server that remembers
// the query of every status request, and can be told to answer the first
// ones itself.
type recordingFront struct {
	URL     string
	mu      sync.Mutex
	queries []url.Values
}

// statusQueries returns the queries of the status requests so far.
func (f *recordingFront) statusQueries() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries
}

// newRecordingFront starts a front for s; override, when set, may answer a
// request itself (returning true).
func newRecordingFront(t *testing.T, s *testServer, override func(w http.ResponseWriter, r *http.Request) bool) *recordingFront {
	t.Helper()
	target, _ := url.Parse(s.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	f := &recordingFront{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v3/bulk_restore_status" {
			f.mu.Lock()
			f.queries = append(f.queries, r.URL.Query())
			f.mu.Unlock()
		}
		if override != nil && override(w, r) {
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func TestClientStatusAsksTheServerToFilterAndStreamsItsCSV(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	numbers := demoRange(150, 189, false)
	jobID := finishedDemoJob(t, s, numbers)
	front := newRecordingFront(t, s, nil)
	env := map[string]string{"BULKRESTORE_SERVER": front.URL, "BULKRESTORE_USER": "demo", "BULKRESTORE_API_KEY": "demo"}

	t.Run("-failed asks for result_status=failed and prints what comes back", func(t *testing.T) {
		r := runClient(t, env, "", "status", "-failed", jobID)
		if r.code != 0 {
			t.Fatalf("exit %d: %v", r.code, r.err)
		}
		checkTable(t, r.stdout, failedOnly(numbers))
		qs := front.statusQueries()
		last := qs[len(qs)-1]
		if last.Get("result_status") != "failed" || last.Get("limit") != "1000" {
			t.Fatalf("the results page asked for %v, want result_status=failed", last)
		}
	})
	t.Run("-o FILE.csv downloads the server's CSV in one request", func(t *testing.T) {
		before := len(front.statusQueries())
		out := filepath.Join(t.TempDir(), "r.csv")
		if r := runClient(t, env, "", "status", "-o", out, jobID); r.code != 0 {
			t.Fatalf("exit %d: %v", r.code, r.err)
		}
		qs := front.statusQueries()[before:]
		if len(qs) != 2 || qs[1].Get("format") != "csv" || qs[1].Has("offset") || qs[1].Has("limit") {
			t.Fatalf("status requests %v, want the summary then one CSV download", qs)
		}
	})
}

func TestClientStatusCSVRetriesBeforeTheFirstByteOnly(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	numbers := demoRange(150, 161, false)
	jobID := finishedDemoJob(t, s, numbers)
	var busy, cut atomic.Int32
	busy.Store(1)
	front := newRecordingFront(t, s, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Query().Get("format") != "csv" {
			return false
		}
		if busy.Add(-1) >= 0 { // the first download: busy, try again
			w.Header().Set("Retry-After", "0")
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Status: "error", Message: "busy"})
			return true
		}
		if cut.Load() == 1 { // a transfer that breaks after its first rows
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(resultsCSVHeader + numbers[0] + ",success,200,Number restored,1,,,0,0\n"))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		return false
	})
	env := map[string]string{"BULKRESTORE_SERVER": front.URL, "BULKRESTORE_USER": "demo", "BULKRESTORE_API_KEY": "demo"}

	t.Run("a 503 before the file is retried", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "r.csv")
		r := runClient(t, env, "", "status", "-o", out, jobID)
		if r.code != 0 || !strings.Contains(r.stderr, "retry 1 of") {
			t.Fatalf("exit %d (%v), stderr %q: want a retry, then success", r.code, r.err, r.stderr)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		checkServerCSVRows(t, parseCSV(t, string(data)), numbers)
	})
	t.Run("a transfer cut short fails and leaves no file", func(t *testing.T) {
		cut.Store(1)
		before := len(front.statusQueries())
		dir := t.TempDir()
		out := filepath.Join(dir, "r.csv")
		r := runClient(t, env, "", "status", "-o", out, jobID)
		if r.code != 2 || !strings.Contains(errText(r.err), "cut short") {
			t.Fatalf("exit %d (%v): want 2 and the transfer named", r.code, r.err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("files left: %v", entries)
		}
		if n := len(front.statusQueries()) - before; n != 2 {
			t.Fatalf("%d status requests, want the summary and one download (no retry once bytes came)", n)
		}
	})
}

func TestCSVRowCounterCountsRecordsNotLines(t *testing.T) {
	cases := []struct {
		name string
		in   []string // written in these pieces
		want int
	}{
		{"the header alone is no record", []string{resultsCSVHeader}, 0},
		{"two plain rows", []string{"h\n", "a,b\nc,d\n"}, 2},
		{"a line break inside quotes is part of its record", []string{"h\n", "a,\"x\ny\"\n"}, 1},
		{"a doubled quote keeps the field quoted", []string{"h\n", "a,\"say \"\"hi\"\"\nthere\"\n"}, 1},
		{"a quoted field split across writes", []string{"h\na,\"x", "\ny\"\nb,c\n"}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var sb strings.Builder
			counter := &csvRowCounter{w: &sb}
			for _, p := range c.in {
				counter.Write([]byte(p))
			}
			if counter.records() != c.want || sb.String() != strings.Join(c.in, "") {
				t.Fatalf("records %d (passed %q), want %d", counter.records(), sb.String(), c.want)
			}
		})
	}
}
