package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// clientRun is what one run of a client command gave.
type clientRun struct {
	stdout, stderr string
	code           int // the exit status main would use
	err            error
}

// runClientCtx runs the CLI in-process with an environment and stdin.
func runClientCtx(ctx context.Context, env map[string]string, stdin string, args ...string) clientRun {
	var out, errOut bytes.Buffer
	err := run(ctx, args, mapEnv(env), strings.NewReader(stdin), &out, &errOut)
	return clientRun{stdout: out.String(), stderr: errOut.String(), code: exitCode(err, io.Discard), err: err}
}

// runClient is runClientCtx bounded to a minute.
func runClient(t *testing.T, env map[string]string, stdin string, args ...string) clientRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := runClientCtx(ctx, env, stdin, args...)
	t.Logf("bulkrestore %s: exit %d, err %v\nstderr:\n%s", strings.Join(args, " "), r.code, r.err, r.stderr)
	return r
}

// demoEnv is the client's environment for the -dev demo user.
func demoEnv(s *testServer) map[string]string {
	return map[string]string{"BULKRESTORE_SERVER": s.URL, "BULKRESTORE_USER": "demo", "BULKRESTORE_API_KEY": "demo"}
}

// demoRange returns the demo numbers 15551230<from>..15551230<to>; with
// okOnly, without those ending in 7 or 9 (which fail).
func demoRange(from, to int, okOnly bool) []string {
	var out []string
	for i := from; i <= to; i++ {
		if okOnly && (i%10 == 7 || i%10 == 9) {
			continue
		}
		out = append(out, "15551230"+strconv.Itoa(i))
	}
	return out
}

// writeLines writes lines to a file in a temp folder and returns its path.
func writeLines(t *testing.T, name string, lines []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// demoExpectation is the result a demo number gets on its first restore.
type demoExpectation struct {
	status, message string
	code, riu, nr   int
}

// expectDemo is the first-restore outcome of a demo inventory number.
func expectDemo(number string) demoExpectation {
	switch number[len(number)-1] {
	case '7':
		return demoExpectation{"failed", "Error: 'number is no longer available'", 409, 0, 0}
	case '9':
		return demoExpectation{"failed", "Error: 'restore window expired'", 410, 0, 0}
	case '3':
		return demoExpectation{"success", "Number restored", 200, 1, 1}
	case '5':
		return demoExpectation{"success", "Number restored", 200, 1, 0}
	}
	return demoExpectation{"success", "Number restored", 200, 0, 0}
}

// readResultsCSV parses a results CSV and checks its header.
func readResultsCSV(t *testing.T, data string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("results are not CSV: %v\n%s", err, data)
	}
	want := "number,status,status_code,message,requires_identity_update,needs_registration,attempts,job_uuid"
	if len(rows) == 0 || strings.Join(rows[0], ",") != want {
		t.Fatalf("CSV header: got=%v, want %s", rows, want)
	}
	return rows[1:]
}

// checkCSVRows checks every row against the demo inventory, in order.
func checkCSVRows(t *testing.T, rows [][]string, numbers []string) {
	t.Helper()
	if len(rows) != len(numbers) {
		t.Fatalf("got=%d rows, want %d", len(rows), len(numbers))
	}
	for i, n := range numbers {
		e := expectDemo(n)
		want := []string{n, e.status, strconv.Itoa(e.code), e.message, strconv.Itoa(e.riu), strconv.Itoa(e.nr), "1"}
		if got := rows[i][:7]; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("row %d: got=%q, want %q", i+1, got, want)
		}
		if !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(rows[i][7]) {
			t.Errorf("row %d: job_uuid %q", i+1, rows[i][7])
		}
	}
}

// jobUUIDs returns the job_uuid column in order of first appearance.
func jobUUIDs(rows [][]string) []string {
	var out []string
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1] != r[7] {
			out = append(out, r[7])
		}
	}
	return out
}

// serverJobCount is how many jobs the demo user has on the server.
func serverJobCount(t *testing.T, s *testServer) int {
	t.Helper()
	res := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_jobs?limit=500", "demo", "demo", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("list jobs: %d %s", res.Status, res.Raw)
	}
	return len(res.Body["jobs"].([]any))
}

// TestClientSubmitSmallFileIsAnsweredAtOnce checks a file within the sync limit: one job, answered at once, its results written with -o without -wait.
func TestClientSubmitSmallFileIsAnsweredAtOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	numbers := []string{"15551230110", "15551230113", "15551230117"}
	in := writeLines(t, "numbers.txt", numbers)
	out := filepath.Join(t.TempDir(), "results.csv")
	r := runClient(t, nil, "", "submit", "-server", s.URL, "-user", "demo", "-key", "demo", "-o", out, in)
	if r.code != 1 {
		t.Fatalf("exit: got=%d, want 1 (one number is unavailable)", r.code)
	}
	lines := strings.Fields(r.stdout)
	if len(lines) != 1 {
		t.Fatalf("stdout: got=%q, want one job_uuid", r.stdout)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rows := readResultsCSV(t, string(data))
	checkCSVRows(t, rows, numbers)
	if rows[0][7] != lines[0] {
		t.Fatalf("job_uuid: got=%s, want %s", rows[0][7], lines[0])
	}
	st := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+lines[0], "demo", "demo", nil)
	if st.Body["status"] != "completed" || st.Body["total_numbers"] != 3.0 {
		t.Fatalf("status: got=%s", st.Raw)
	}
}

// TestClientSubmitWaitsForQueuedJobAndWritesCSVAndJSON checks -wait on a queued job and both result formats, row by row.
func TestClientSubmitWaitsForQueuedJobAndWritesCSVAndJSON(t *testing.T) {
	t.Parallel()
	numbers := demoRange(150, 189, false) // 40: more than the sync limit
	in := writeLines(t, "numbers.txt", numbers)
	t.Run("csv", func(t *testing.T) {
		s := startServer(t, "-dev")
		out := filepath.Join(t.TempDir(), "results.csv")
		r := runClient(t, demoEnv(s), "", "submit", "-wait", "-poll", "20ms", "-o", out, in)
		if r.code != 1 {
			t.Fatalf("exit: got=%d, want 1 (numbers ending in 7 and 9 fail)", r.code)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		rows := readResultsCSV(t, string(data))
		checkCSVRows(t, rows, numbers)
		if ids := jobUUIDs(rows); len(ids) != 1 || strings.TrimSpace(r.stdout) != ids[0] {
			t.Fatalf("jobs: got=%v, stdout %q, want one job printed", ids, r.stdout)
		}
		if !strings.Contains(r.stderr, "40 number(s) in 1 job(s): 32 succeeded, 8 failed") {
			t.Fatalf("stderr lacks the summary:\n%s", r.stderr)
		}
		if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*tmp")); len(matches) != 0 {
			t.Fatalf("temporary files left: %v", matches)
		}
	})
	t.Run("json", func(t *testing.T) {
		s := startServer(t, "-dev")
		out := filepath.Join(t.TempDir(), "results.json")
		r := runClient(t, demoEnv(s), "", "submit", "-wait", "-poll", "20ms", "-progress", "none", "-o", out, in)
		if r.code != 1 {
			t.Fatalf("exit: got=%d, want 1", r.code)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var got []map[string]any
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatalf("results are not a JSON array: %v\n%s", err, data)
		}
		if len(got) != len(numbers) {
			t.Fatalf("got=%d results, want %d", len(got), len(numbers))
		}
		for i, n := range numbers {
			e := expectDemo(n)
			g := got[i]
			if g["number"] != n || g["status"] != e.status || g["status_code"] != float64(e.code) || g["message"] != e.message ||
				g["requires_identity_update"] != float64(e.riu) || g["needs_registration"] != float64(e.nr) ||
				g["attempts"] != 1.0 || g["job_uuid"] != strings.TrimSpace(r.stdout) {
				t.Errorf("result %d: got=%v, want %s %+v", i, g, n, e)
			}
		}
	})
}

// TestClientSubmitSplitsIntoSeveralJobs checks -batch: jobs in input order, queued and answered ones mixed.
func TestClientSubmitSplitsIntoSeveralJobs(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	t.Run("batches of 5 are each answered at once", func(t *testing.T) {
		numbers := demoRange(100, 111, false) // 12 numbers: 5, 5, 2
		out := filepath.Join(t.TempDir(), "r.csv")
		r := runClient(t, demoEnv(s), "", "submit", "-batch", "5", "-o", out, writeLines(t, "n.txt", numbers))
		if r.code != 1 {
			t.Fatalf("exit: got=%d, want 1", r.code)
		}
		printed := strings.Fields(r.stdout)
		data, _ := os.ReadFile(out)
		rows := readResultsCSV(t, string(data))
		checkCSVRows(t, rows, numbers)
		if ids := jobUUIDs(rows); len(printed) != 3 || strings.Join(ids, " ") != strings.Join(printed, " ") {
			t.Fatalf("jobs: printed %v, rows name %v, want the same 3", printed, ids)
		}
		for i, size := range []int{5, 5, 2} {
			st := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?limit=0&job_uuid="+printed[i], "demo", "demo", nil)
			if st.Body["total_numbers"] != float64(size) {
				t.Errorf("job %d: got=%v numbers, want %d", i, st.Body["total_numbers"], size)
			}
		}
	})
	t.Run("queued and answered jobs mixed, waited for", func(t *testing.T) {
		numbers := demoRange(150, 189, false) // 40 numbers: 15 and 15 queued, 10 answered
		r := runClient(t, demoEnv(s), "", "submit", "-batch", "15", "-wait", "-poll", "20ms", "-o", "-", writeLines(t, "n.txt", numbers))
		if r.code != 1 {
			t.Fatalf("exit: got=%d, want 1", r.code)
		}
		rows := readResultsCSV(t, r.stdout)
		checkCSVRows(t, rows, numbers)
		ids := jobUUIDs(rows)
		if len(ids) != 3 || rows[14][7] != ids[0] || rows[15][7] != ids[1] || rows[30][7] != ids[2] {
			t.Fatalf("jobs: got=%v, want 3 jobs of 15, 15 and 10", ids)
		}
		if strings.Count(r.stderr, "queued") != 2 || !strings.Contains(r.stderr, "10 number(s), done") {
			t.Fatalf("stderr should name two queued jobs and one done:\n%s", r.stderr)
		}
	})
	t.Run("without -wait queued numbers are written as pending", func(t *testing.T) {
		numbers := demoRange(120, 139, true)
		r := runClient(t, demoEnv(s), "", "submit", "-o", "-", writeLines(t, "n.txt", numbers))
		if r.code != 0 {
			t.Fatalf("exit: got=%d, want 0", r.code)
		}
		rows := readResultsCSV(t, r.stdout)
		if len(rows) != len(numbers) || rows[0][0] != numbers[0] || rows[0][1] != "pending" || rows[0][2] != "" {
			t.Fatalf("rows: got=%v, want %d pending rows", rows, len(numbers))
		}
	})
}

// TestClientSubmitHalvesTheBatchOn413 checks that a 413 halves the batch until the server takes it.
func TestClientSubmitHalvesTheBatchOn413(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev", "-max-numbers", "8")
	numbers := demoRange(100, 125, true)[:20]
	r := runClient(t, demoEnv(s), "", "submit", "-batch", "20", "-wait", "-poll", "20ms", "-progress", "none", "-o", "-",
		writeLines(t, "n.txt", numbers))
	if r.code != 0 {
		t.Fatalf("exit: got=%d, want 0", r.code)
	}
	if !strings.Contains(r.stderr, "trying 10") || !strings.Contains(r.stderr, "trying 5") {
		t.Fatalf("stderr should tell of halving 20 to 10 to 5:\n%s", r.stderr)
	}
	rows := readResultsCSV(t, r.stdout)
	checkCSVRows(t, rows, numbers)
	if ids := jobUUIDs(rows); len(ids) != 4 {
		t.Fatalf("jobs: got=%d, want 4 of 5", len(ids))
	}
	if n := serverJobCount(t, s); n != 4 {
		t.Fatalf("server jobs: got=%d, want 4", n)
	}
}

// TestClientSubmitReadsCSVFromStdin checks CSV input on stdin: first column, header, quotes, BOM, blanks, duplicates.
func TestClientSubmitReadsCSVFromStdin(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	input := "\ufeffnumber,name\r\n15551230120,alice\r\n\"15551230121\",\"bob, jr\"\r\n  15551230122 ,carol\r\n\r\n15551230120,again\r\n15551230123\r\n"
	r := runClient(t, demoEnv(s), input, "submit", "-wait", "-poll", "20ms", "-")
	if r.code != 0 {
		t.Fatalf("exit: got=%d, want 0", r.code)
	}
	numbers := []string{"15551230120", "15551230121", "15551230122", "15551230123"}
	checkCSVRows(t, readResultsCSV(t, r.stdout), numbers)
	if !strings.Contains(r.stderr, "1 duplicate number(s) dropped") {
		t.Fatalf("stderr should report the duplicate:\n%s", r.stderr)
	}
}

// TestClientSubmitRefusesBadInputBeforeSending checks that bad lines are named and nothing is sent.
func TestClientSubmitRefusesBadInputBeforeSending(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	cases := []struct {
		name, input string
		want        []string
	}{
		{"bad lines", "15551230120\nabc\n123\n15551230121\n+15551230122\n", []string{`line 2: "abc"`, `line 3: "123"`, `line 5: "+15551230122"`, "3 invalid line(s); nothing was sent"}},
		{"no numbers", "number\n\n", []string{"holds no numbers"}},
		{"a header only counts first", "15551230120\nnumber\n", []string{`line 2: "number"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runClient(t, demoEnv(s), c.input, "submit", "-")
			if r.code != 2 || r.stdout != "" {
				t.Fatalf("got=exit %d, stdout %q, want exit 2 and nothing printed", r.code, r.stdout)
			}
			text := r.stderr + r.err.Error()
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("output lacks %q:\n%s", w, text)
				}
			}
		})
	}
	if n := serverJobCount(t, s); n != 0 {
		t.Fatalf("server jobs: got=%d, want 0", n)
	}
}

// TestClientSubmitExitCodes checks exit statuses 0, 1 and 2.
func TestClientSubmitExitCodes(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	ln.Close()
	good := writeLines(t, "good.txt", demoRange(140, 165, true))
	mixed := writeLines(t, "mixed.txt", demoRange(170, 199, false))
	cases := []struct {
		name string
		args []string
		want int
		says string
	}{
		{"all restored", []string{"-wait", good}, 0, "0 failed"},
		{"some failed", []string{"-wait", mixed}, 1, "not restored"},
		{"wrong key", []string{"-key", "nope", good}, 2, "401"},
		{"server unreachable", []string{"-server", closedURL, "-retries", "0", good}, 2, "cannot reach the server"},
		{"no user", []string{"-user", "", good}, 2, "-user is required"},
		{"unknown format", []string{"-format", "xml", good}, 2, "-format"},
		{"missing file", []string{filepath.Join(t.TempDir(), "none.txt")}, 2, "no such file"},
		{"two files", []string{good, mixed}, 2, "one FILE"},
		{"webhook refused by the server", []string{"-webhook", "ftp://x", good}, 2, "400"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"submit", "-poll", "20ms", "-progress", "none"}, c.args...)
			r := runClient(t, demoEnv(s), "", args...)
			if r.code != c.want {
				t.Fatalf("exit: got=%d, want %d", r.code, c.want)
			}
			if text := r.stderr + " " + errText(r.err); !strings.Contains(text, c.says) {
				t.Fatalf("output lacks %q:\n%s", c.says, text)
			}
		})
	}
}

// errText is err's message, or "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestClientSubmitServerErrorsExit2 checks that 5xx answers exit 2, the transient ones after retries.
func TestClientSubmitServerErrorsExit2(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	hits := 0
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/busy/") {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"status":"error","message":"storage is unavailable, please retry later"}`)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"status":"error","message":"internal error, please try again or contact support"}`)
	}))
	t.Cleanup(fake.Close)
	in := writeLines(t, "n.txt", demoRange(100, 102, false))
	r := runClient(t, nil, "", "submit", "-server", fake.URL, "-user", "demo", "-key", "demo", in)
	if r.code != 2 || !strings.Contains(r.err.Error(), "500") {
		t.Fatalf("500: got=exit %d, %v; want 2 naming 500", r.code, r.err)
	}
	mu.Lock()
	hits = 0
	mu.Unlock()
	r = runClient(t, nil, "", "submit", "-server", fake.URL+"/busy", "-user", "demo", "-key", "demo", "-retries", "2", in)
	if r.code != 2 || !strings.Contains(r.stderr, "retry 2 of 2") {
		t.Fatalf("503: got=exit %d, want 2 after two retries", r.code)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 3 {
		t.Fatalf("503: got=%d requests, want 3", hits)
	}
}

// TestClientSubmitRetriesALostAnswerWithoutASecondJob checks that a retried POST reuses its Idempotency-Key, so a lost answer does not create a second job.
func TestClientSubmitRetriesALostAnswerWithoutASecondJob(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	target, _ := url.Parse(s.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var keys []string
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			proxy.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		first := len(keys) == 1
		mu.Unlock()
		if first {
			proxy.ServeHTTP(httptest.NewRecorder(), r) // the server commits the job...
			panic(http.ErrAbortHandler)                // ...and the answer is lost
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	r := runClient(t, demoEnv(s), "", "submit", "-server", front.URL, "-retries", "3", "-wait", "-poll", "20ms",
		writeLines(t, "n.txt", demoRange(140, 165, true)))
	if r.code != 0 {
		t.Fatalf("exit: got=%d, want 0", r.code)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) < 2 || keys[0] == "" || keys[1] != keys[0] {
		t.Fatalf("POSTs: got keys %q, want a retry with the same Idempotency-Key", keys)
	}
	if n := serverJobCount(t, s); n != 1 {
		t.Fatalf("server jobs: got=%d, want 1", n)
	}
}

// TestClientSubmitTakesSettingsFromTheEnvironment checks BULKRESTORE_SERVER, BULKRESTORE_USER and BULKRESTORE_API_KEY.
func TestClientSubmitTakesSettingsFromTheEnvironment(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	in := writeLines(t, "n.txt", demoRange(100, 102, false))
	env := map[string]string{"BULKRESTORE_SERVER": s.URL, "BULKRESTORE_USER": "demo", "BULKRESTORE_API_KEY": "demo"}
	if r := runClient(t, env, "", "submit", in); r.code != 0 || len(strings.Fields(r.stdout)) != 1 {
		t.Fatalf("key from BULKRESTORE_API_KEY: got=exit %d, stdout %q", r.code, r.stdout)
	}
	if r := runClient(t, env, "", "submit", "-key", "wrong", in); r.code != 2 {
		t.Fatalf("-key should win over the environment: got=exit %d, want 2", r.code)
	}
	delete(env, "BULKRESTORE_API_KEY")
	if r := runClient(t, env, "", "submit", in); r.code != 2 || !strings.Contains(r.err.Error(), "BULKRESTORE_API_KEY") {
		t.Fatalf("no key: got=exit %d, %v", r.code, r.err)
	}
}

// TestClientStatusPrintsOneJob checks the status command: summary, -json, and its errors.
func TestClientStatusPrintsOneJob(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	r := runClient(t, demoEnv(s), "", "submit", writeLines(t, "n.txt", demoRange(150, 189, false)))
	jobID := strings.TrimSpace(r.stdout)
	waitJobDone(t, s, "demo", "demo", jobID, 30*time.Second)
	st := runClient(t, nil, "", "status", "-server", s.URL, "-user", "demo", "-key", "demo", jobID)
	if st.code != 0 {
		t.Fatalf("exit: got=%d, want 0", st.code)
	}
	for _, want := range []string{
		"job_uuid      " + jobID, "status        completed", "numbers       40: 32 succeeded, 8 failed",
		"created_at    20", "completed_at  20", "webhook_url   -", "webhook       none",
	} {
		if !strings.Contains(st.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, st.stdout)
		}
	}
	raw := runClient(t, demoEnv(s), "", "status", "-json", jobID)
	var body map[string]any
	if err := json.Unmarshal([]byte(raw.stdout), &body); err != nil || body["job_uuid"] != jobID || body["success_count"] != 32.0 {
		t.Fatalf("-json: got=%v %q", err, raw.stdout)
	}
	if rs, _ := body["results"].([]any); len(rs) != 0 {
		t.Fatalf("-json: got=%d results, want the summary alone", len(rs))
	}
	cases := []struct {
		name string
		args []string
		says string
	}{
		{"unknown job", []string{"8f6c1f0e-23d2-4717-8c8e-1a518e5738f0"}, "404"},
		{"not a uuid", []string{"nope"}, "not a job_uuid"},
		{"wrong key", []string{"-key", "wrong", jobID}, "401"},
		{"no job", nil, "one JOB_UUID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runClient(t, demoEnv(s), "", append([]string{"status"}, c.args...)...)
			if r.code != 2 || !strings.Contains(errText(r.err), c.says) {
				t.Fatalf("got=exit %d, %v; want 2 and %q", r.code, r.err, c.says)
			}
		})
	}
}
