package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// demoFailing keeps the demo numbers that fail on a first restore (those
// ending in 7: 409, or 9: 410).
func demoFailing(numbers []string) []string {
	var out []string
	for _, n := range numbers {
		if expectDemo(n).status == "failed" {
			out = append(out, n)
		}
	}
	return out
}

func TestClientSubmitDryRun(t *testing.T) {
	s := startServer(t, "-dev")
	env := demoEnv(s)
	numbers := demoRange(110, 119, false)
	file := writeLines(t, "numbers.txt", numbers)

	t.Run("a table of what each number would give, nothing created, exit 1 as some would fail", func(t *testing.T) {
		r := runClient(t, env, "", "submit", "-dry-run", file)
		if r.code != 1 || !strings.Contains(r.stderr, "8 would succeed, 2 would fail, 0 unknown") {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != len(numbers)+1 || !strings.HasPrefix(lines[0], "NUMBER") {
			t.Fatalf("table:\n%s", r.stdout)
		}
		for i, n := range numbers {
			if f := strings.Fields(lines[i+1]); f[0] != n || f[1] != expectDemo(n).status {
				t.Errorf("line %d: %q, want %s %s", i+1, lines[i+1], n, expectDemo(n).status)
			}
		}
		if n := serverJobCount(t, s); n != 0 {
			t.Fatalf("the dry run made %d jobs", n)
		}
	})
	t.Run("-o writes the rows as submit writes results, without job or attempts", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "preview.csv")
		r := runClient(t, env, "", "submit", "-dry-run", "-batch", "3", "-o", out, file)
		data, err := os.ReadFile(out)
		if r.code != 1 || err != nil {
			t.Fatalf("exit %d, read %v", r.code, err)
		}
		rows := readResultsCSV(t, string(data))
		if len(rows) != len(numbers) {
			t.Fatalf("%d rows, want %d", len(rows), len(numbers))
		}
		for i, n := range numbers {
			e := expectDemo(n)
			if rows[i][0] != n || rows[i][1] != e.status || rows[i][3] != e.message || rows[i][6] != "" || rows[i][7] != "" {
				t.Errorf("row %d: %q", i+1, rows[i])
			}
		}
	})
	t.Run("JSON output, and exit 0 when every number would be restored", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "preview.json")
		ok := writeLines(t, "ok.txt", demoRange(120, 126, true))
		r := runClient(t, env, "", "submit", "-dry-run", "-o", out, ok)
		data, err := os.ReadFile(out)
		var rows []clientResult
		if r.code != 0 || err != nil || json.Unmarshal(data, &rows) != nil || len(rows) != 7 {
			t.Fatalf("exit %d, err %v, %s", r.code, err, data)
		}
		if n := serverJobCount(t, s); n != 0 {
			t.Fatalf("the dry run made %d jobs", n)
		}
	})
	t.Run("a 413 halves the batch, as submit does", func(t *testing.T) {
		small := startServer(t, "-dev", "-max-numbers", "4")
		r := runClient(t, demoEnv(small), "", "submit", "-dry-run", file)
		if r.code != 1 || strings.Count(r.stderr, "server refused") != 2 || strings.Count(r.stdout, "\n1555123011") != len(numbers) {
			t.Fatalf("exit %d, stderr %q, stdout:\n%s", r.code, r.stderr, r.stdout)
		}
	})
	t.Run("-dry-run with -wait is a usage mistake", func(t *testing.T) {
		if r := runClient(t, env, "", "submit", "-dry-run", "-wait", file); r.code != 2 {
			t.Fatalf("exit %d, want 2", r.code)
		}
	})
}

func TestClientRetry(t *testing.T) {
	s := startServer(t, "-dev", "-allow-private-webhooks")
	env := demoEnv(s)
	numbers := demoRange(130, 139, false)
	orig := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo",
		map[string]any{"numbers": numbers, "webhook_url": "http://127.0.0.1:9/hook"})
	u := orig.Body["job_uuid"].(string)

	t.Run("the failed numbers become a new job, written with -o; exit 1 as they fail again", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "retry.csv")
		r := runClient(t, env, "", "retry", "-o", out, u)
		data, err := os.ReadFile(out)
		if r.code != 1 || err != nil {
			t.Fatalf("exit %d, read %v", r.code, err)
		}
		rows := readResultsCSV(t, string(data))
		var got []string
		for _, row := range rows {
			got = append(got, row[0])
		}
		if want := demoFailing(numbers); !slices.Equal(got, want) {
			t.Fatalf("retried %v, want %v", got, want)
		}
		v := strings.TrimSpace(r.stdout)
		st := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+v, "demo", "demo", nil)
		if st.Body["retry_of"] != u || st.Body["webhook_url"] != "http://127.0.0.1:9/hook" {
			t.Fatalf("the new job %q: retry_of=%v webhook_url=%v", v, st.Body["retry_of"], st.Body["webhook_url"])
		}
	})
	t.Run("-status-code narrows and -webhook '' drops the webhook", func(t *testing.T) {
		r := runClient(t, env, "", "retry", "-status-code", "410", "-webhook", "", "-wait", "-progress", "none", u)
		if r.code != 1 || !strings.Contains(r.stdout, "15551230139") || strings.Contains(r.stdout, "15551230137") {
			t.Fatalf("exit %d, stdout:\n%s", r.code, r.stdout)
		}
		list := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_jobs?limit=1", "demo", "demo", nil)
		newest := list.Body["jobs"].([]any)[0].(map[string]any)
		if newest["retry_of"] != u || newest["webhook_url"] != nil || newest["total_numbers"] != 1.0 {
			t.Fatalf("the newest job: %v", newest)
		}
	})
	t.Run("a job with nothing to retry exits 0 and says so", func(t *testing.T) {
		good := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": demoRange(140, 142, true)})
		r := runClient(t, env, "", "retry", good.Body["job_uuid"].(string))
		if r.code != 0 || !strings.Contains(r.stderr, "no failed numbers to retry") {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("a queued retry not waited for writes its numbers' current state", func(t *testing.T) {
		big := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": seqNumbers(15559000000, 12)})
		id := big.Body["job_uuid"].(string)
		waitJobDone(t, s, "demo", "demo", id, 20*time.Second)
		out := filepath.Join(t.TempDir(), "queued.json")
		r := runClient(t, env, "", "retry", "-o", out, id)
		data, err := os.ReadFile(out)
		var rows []clientResult
		if err != nil || json.Unmarshal(data, &rows) != nil || len(rows) != 12 || rows[0].Number != "15559000000" {
			t.Fatalf("exit %d, err %v: %s", r.code, err, data)
		}
	})
	for _, c := range []struct {
		name string
		args []string
	}{
		{"no job_uuid is a usage mistake", []string{"retry"}},
		{"a job_uuid that is no UUID is a usage mistake", []string{"retry", "nope"}},
		{"a -status-code that is no list of codes is a usage mistake", []string{"retry", "-status-code", "5xx", u}},
		{"an unknown job exits 2", []string{"retry", "00000000-0000-4000-8000-000000000000"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r := runClient(t, env, "", c.args...); r.code != 2 {
				t.Fatalf("exit %d, want 2", r.code)
			}
		})
	}
}

func TestHelpOfRetryAndDryRun(t *testing.T) {
	for _, c := range []struct {
		args  []string
		shows []string
	}{
		{[]string{"retry", "-h"}, []string{"Usage: bulkrestore retry [flags] JOB_UUID", "\n  -status-code string", "\n  -webhook string", "\n  -wait\n", "\n  -o string", "BULKRESTORE_<FLAG>"}},
		{[]string{"help", "retry"}, []string{"Usage: bulkrestore retry [flags] JOB_UUID", "retry_of"}},
		{[]string{"submit", "-h"}, []string{"\n  -dry-run\n", "With -dry-run nothing is created"}},
	} {
		t.Run(strings.Join(c.args, " ")+" prints the usage and flags", func(t *testing.T) {
			r := runMain(t, nil, c.args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			for _, s := range c.shows {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("help lacks %q:\n%s", s, r.stdout)
				}
			}
		})
	}
}
