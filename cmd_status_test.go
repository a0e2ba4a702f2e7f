package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// `bulkrestore status` and a job's per-number results.

// finishedDemoJob submits numbers to a -dev server and waits for the job.
func finishedDemoJob(t *testing.T, s *testServer, numbers []string) string {
	t.Helper()
	r := runClient(t, demoEnv(s), "", "submit", writeLines(t, "n.txt", numbers))
	jobID := strings.TrimSpace(r.stdout)
	waitJobDone(t, s, "demo", "demo", jobID, 30*time.Second)
	return jobID
}

// failedOnly keeps the demo numbers that fail (those ending in 7 or 9).
func failedOnly(numbers []string) []string {
	var out []string
	for _, n := range numbers {
		if expectDemo(n).status == "failed" {
			out = append(out, n)
		}
	}
	return out
}

// checkTable checks the results table after the summary, row by row.
func checkTable(t *testing.T, stdout string, numbers []string) {
	t.Helper()
	_, table, ok := strings.Cut(stdout, "\n\n")
	if !ok || !strings.HasPrefix(stdout, "job_uuid") {
		t.Fatalf("want the summary, a blank line and the table:\n%s", stdout)
	}
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "NUMBER STATUS CODE MESSAGE" {
		t.Fatalf("table header: got=%q", lines[0])
	}
	if len(lines)-1 != len(numbers) {
		t.Fatalf("table rows: got=%d, want %d:\n%s", len(lines)-1, len(numbers), table)
	}
	for i, n := range numbers {
		e := expectDemo(n)
		f := strings.Fields(lines[i+1])
		msg := strings.Join(f[3:], " ")
		if f[0] != n || f[1] != e.status || f[2] != strconv.Itoa(e.code) || !strings.HasPrefix(msg, e.message) {
			t.Errorf("row %d: got=%q, want %s %s %d %s", i+1, lines[i+1], n, e.status, e.code, e.message)
		}
		if flagged := strings.Contains(msg, "requires identity update"); flagged != (e.riu == 1) {
			t.Errorf("row %d: got=%q, want the identity-update note only where it applies", i+1, lines[i+1])
		}
	}
}

// TestClientStatusPrintsResults checks -results, -failed and -o of status against a finished job.
func TestClientStatusPrintsResults(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	numbers := demoRange(150, 189, false)
	jobID := finishedDemoJob(t, s, numbers)
	status := func(t *testing.T, args ...string) clientRun {
		t.Helper()
		r := runClient(t, demoEnv(s), "", append(append([]string{"status"}, args...), jobID)...)
		if r.code != 0 {
			t.Fatalf("exit: got=%d (%v), want 0", r.code, r.err)
		}
		return r
	}
	t.Run("-results prints the summary, then a table of every number", func(t *testing.T) {
		checkTable(t, status(t, "-results").stdout, numbers)
	})
	t.Run("-failed prints the failed numbers only", func(t *testing.T) {
		checkTable(t, status(t, "-failed").stdout, failedOnly(numbers))
	})
	t.Run("-o FILE.csv writes the server's CSV of every result and keeps the summary on stdout", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "results.csv")
		r := status(t, "-o", out)
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		checkServerCSVRows(t, parseCSV(t, string(data)), numbers)
		if !strings.HasPrefix(r.stdout, "job_uuid      "+jobID) || !strings.Contains(r.stderr, "wrote 40 result(s) to "+out) {
			t.Fatalf("stdout %q, stderr %q: want the summary and a note of the file", r.stdout, r.stderr)
		}
	})
	t.Run("-failed -o FILE.json writes the failed results as JSON", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "failed.json")
		status(t, "-failed", "-o", out)
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var got []clientResult
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatalf("not a JSON array: %v\n%s", err, data)
		}
		want := failedOnly(numbers)
		if len(got) != len(want) {
			t.Fatalf("got=%d results, want %d", len(got), len(want))
		}
		for i, n := range want {
			if got[i].Number != n || got[i].Status != "failed" || got[i].JobUUID != jobID || *got[i].StatusCode != expectDemo(n).code {
				t.Errorf("result %d: got=%+v, want %s failed %d", i, got[i], n, expectDemo(n).code)
			}
		}
	})
	t.Run("-o - writes the CSV alone on stdout", func(t *testing.T) {
		checkServerCSVRows(t, parseCSV(t, status(t, "-o", "-").stdout), numbers)
	})
	t.Run("-failed -o FILE.csv writes the failed results", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "failed.csv")
		r := status(t, "-failed", "-o", out)
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		failed := failedOnly(numbers)
		checkServerCSVRows(t, parseCSV(t, string(data)), failed)
		if !strings.Contains(r.stderr, "wrote "+strconv.Itoa(len(failed))+" result(s) to "+out) {
			t.Fatalf("stderr %q: want the count of the failed results", r.stderr)
		}
	})
	t.Run("-o - -format json writes a JSON array alone on stdout", func(t *testing.T) {
		var got []clientResult
		if err := json.Unmarshal([]byte(status(t, "-o", "-", "-format", "json").stdout), &got); err != nil || len(got) != len(numbers) {
			t.Fatalf("got=%d results (%v), want %d", len(got), err, len(numbers))
		}
	})
	cases := []struct {
		name string
		args []string
		says string
	}{
		{"-json with -results is refused", []string{"-json", "-results"}, "-json prints the summary alone"},
		{"-json with -o - is refused", []string{"-json", "-o", "-"}, "-json prints the summary alone"},
		{"-format without -o is refused", []string{"-format", "json"}, "give -o too"},
		{"an unknown -format is refused", []string{"-o", "-", "-format", "xml"}, "-format must be csv or json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runClient(t, demoEnv(s), "", append(append([]string{"status"}, c.args...), jobID)...)
			if r.code != 2 || r.stdout != "" || !strings.Contains(errText(r.err), c.says) {
				t.Fatalf("got exit %d, stdout %q, %v; want 2, nothing printed and %q", r.code, r.stdout, r.err, c.says)
			}
		})
	}
}

// checkServerCSVRows checks rows of the server's CSV against the demo
// inventory, in order.
func checkServerCSVRows(t *testing.T, rows [][]string, numbers []string) {
	t.Helper()
	if len(rows) != len(numbers) {
		t.Fatalf("got=%d rows, want %d", len(rows), len(numbers))
	}
	for i, n := range numbers {
		e := expectDemo(n)
		want := []string{n, e.status, strconv.Itoa(e.code), e.message, "1"}
		flags := []string{strconv.Itoa(e.riu), strconv.Itoa(e.nr)}
		if got := rows[i]; strings.Join(got[:5], "|") != strings.Join(want, "|") || strings.Join(got[7:], "|") != strings.Join(flags, "|") ||
			got[5] == "" || got[6] == "" {
			t.Errorf("row %d: got=%q, want %q, both times and flags %q", i+1, got, want, flags)
		}
	}
}

// TestClientReadsResultsAPageAtATime checks that results are fetched with offset and limit, page by page, in order.
func TestClientReadsResultsAPageAtATime(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	numbers := demoRange(150, 189, false)
	jobID := finishedDemoJob(t, s, numbers)
	target, _ := url.Parse(s.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var pages []string
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		pages = append(pages, r.URL.Query().Get("offset")+"+"+r.URL.Query().Get("limit"))
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	conn := connFlags{server: front.URL, user: "demo", key: "demo"}
	api, err := conn.client(mapEnv(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	api.pageSize = 7
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	err = api.eachResult(ctx, jobReply{jobSummaryJSON: jobSummaryJSON{JobUUID: jobID, TotalNumbers: len(numbers)}}, func(r clientResult) error {
		got = append(got, r.Number)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(numbers, ",") {
		t.Fatalf("results: got=%v, want %v", got, numbers)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "+7 7+7 14+7 21+7 28+7 35+7"; strings.Join(pages, " ") != want {
		t.Fatalf("pages asked for (offset+limit): got=%q, want %q", strings.Join(pages, " "), want)
	}
}
