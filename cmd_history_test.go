package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestClientHistoryPrintsANumbersJobs(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	const number = "15551230113"
	first := apiSyncJob(t, s, number)
	second := apiSyncJob(t, s, number, "15551230117")

	t.Run("a table of the jobs, newest first, after the inventory row", func(t *testing.T) {
		r := runClient(t, demoEnv(s), "", "history", number)
		if r.code != 0 {
			t.Fatalf("exit %d: %v", r.code, r.err)
		}
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if lines[0] != "number     "+number || !strings.HasPrefix(lines[1], "inventory  active, released ") ||
			!strings.HasSuffix(lines[1], ", requires identity update, needs registration") || lines[2] != "" {
			t.Fatalf("head:\n%s", r.stdout)
		}
		if got := strings.Fields(lines[3]); strings.Join(got, " ") != "JOB_UUID STATUS CODE ATTEMPTS COMPLETED_AT MESSAGE" {
			t.Fatalf("table header %q", lines[3])
		}
		if len(lines) != 6 || !strings.HasPrefix(lines[4], second+"  success     200   1         ") ||
			!strings.HasSuffix(lines[4], "Number already active") || !strings.HasPrefix(lines[5], first) ||
			!strings.HasSuffix(lines[5], "Number restored") {
			t.Fatalf("rows:\n%s", r.stdout)
		}
		if r.stderr != "" {
			t.Fatalf("stderr %q on the only page", r.stderr)
		}
	})
	t.Run("a page that is not the last says how to get the next", func(t *testing.T) {
		r := runClient(t, demoEnv(s), "", "history", "-limit", "1", number)
		if r.code != 0 || strings.Count(r.stdout, "\n"+second) != 1 || strings.Contains(r.stdout, first) ||
			r.stderr != "more: bulkrestore history -before "+second+" "+number+"\n" {
			t.Fatalf("exit %d, stdout:\n%s\nstderr %q", r.code, r.stdout, r.stderr)
		}
		next := runClient(t, demoEnv(s), "", "history", "-limit", "1", "-before", second, number)
		if !strings.Contains(next.stdout, "\n"+first) || next.stderr != "" {
			t.Fatalf("next page:\n%s\nstderr %q", next.stdout, next.stderr)
		}
	})
	t.Run("-json prints the server's answer", func(t *testing.T) {
		r := runClient(t, demoEnv(s), "", "history", "-json", number)
		var body numberHistoryJSON
		if err := json.Unmarshal([]byte(r.stdout), &body); err != nil || len(body.History) != 2 || body.Inventory == nil {
			t.Fatalf("stdout %q (%v)", r.stdout, err)
		}
	})
	t.Run("a number without jobs says so", func(t *testing.T) {
		r := runClient(t, demoEnv(s), "", "history", "15551230199")
		if r.code != 0 || !strings.Contains(r.stdout, "no job of yours holds this number") {
			t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
		}
	})
	cases := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"no number is a usage error", nil, 2, "one NUMBER"},
		{"a number with letters is a usage error", []string{"1555abc"}, 2, "digits only"},
		{"-limit 0 is a usage error", []string{"-limit", "0", number}, 2, "-limit must be 1 to 100"},
		{"-before that is not a job_uuid is a usage error", []string{"-before", "x", number}, 2, "not a job_uuid"},
		{"-before naming no job is the server's 404", []string{"-before", "00000000-0000-4000-8000-000000000000", number}, 2, "404"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runClient(t, demoEnv(s), "", append([]string{"history"}, c.args...)...)
			if r.code != c.code || r.stdout != "" || !strings.Contains(errText(r.err), c.says) {
				t.Fatalf("exit %d, stdout %q, %v; want %d, nothing printed and %q", r.code, r.stdout, r.err, c.code, c.says)
			}
		})
	}
}
