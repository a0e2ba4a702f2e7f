package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startLoggedServer starts a -dev server whose JSON logs go to the returned
// buffer.
func startLoggedServer(t *testing.T, args ...string) (*testServer, *lockedBuffer) {
	t.Helper()
	cfg, err := parseServeFlags(append([]string{"-addr", "127.0.0.1:0", "-db", newTestDB(t), "-dev", "-log-format", "json"}, args...),
		mapEnv(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{DB: cfg.db, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() { s.done <- serve(ctx, cfg, logs, func(addr string) { ready <- addr }) }()
	select {
	case addr := <-ready:
		s.URL = "http://" + addr
	case err := <-s.done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("server did not start within 15s")
	}
	t.Cleanup(s.stop)
	return s, logs
}

func TestRequestIDsAreEchoedAndLogged(t *testing.T) {
	s, logs := startLoggedServer(t)
	t.Run("a client's id is echoed and logged", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/healthz", nil)
		req.Header.Set("X-Request-Id", "trace-abc-123")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Request-Id"); got != "trace-abc-123" {
			t.Fatalf("X-Request-Id=%q, want the client's", got)
		}
		waitFor(t, 5*time.Second, "the request's log line", func() bool {
			return strings.Contains(logs.String(), `"request_id":"trace-abc-123"`)
		})
	})
	t.Run("without one, a new id is made", func(t *testing.T) {
		got := call(t, http.MethodGet, s.URL+"/healthz", "", "", nil)
		if id := got.Header.Get("X-Request-Id"); id == "" {
			t.Fatal("no X-Request-Id in the answer")
		}
	})
	t.Run("the log line names method, path, status, user and duration", func(t *testing.T) {
		call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": []string{"15551230111"}})
		waitFor(t, 5*time.Second, "the POST's log line", func() bool {
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, `"path":"/v3/bulk_restore"`) && strings.Contains(line, `"status":200`) &&
					strings.Contains(line, `"user":"demo"`) && strings.Contains(line, `"duration_ms"`) && strings.Contains(line, `"method":"POST"`) {
					return true
				}
			}
			return false
		})
	})
}

func TestKeysAndSecretsNeverReachTheLogs(t *testing.T) {
	s, logs := startLoggedServer(t)
	key, secret := addUser(t, s.DB, "frank")
	importCSV(t, s.DB, "frank", "number,state\n15550000400,released\n")
	call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid=8f6c1f0e-23d2-4717-8c8e-1a518e5738f0", "frank", key+"x", nil)
	call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "frank", key,
		map[string]any{"numbers": []string{"15550000400"}, "webhook_url": "http://127.0.0.1:1/hook"})
	waitFor(t, 5*time.Second, "the webhook failure to be logged", func() bool {
		return strings.Contains(logs.String(), "webhook attempt failed")
	})
	for _, secretText := range []string{key, secret, strings.TrimPrefix(secret, "whsec_"), "demo:demo"} {
		if strings.Contains(logs.String(), secretText) {
			t.Fatalf("the logs contain a key or secret (%.8s…)", secretText)
		}
	}
}

func TestMetricsCountJobsNumbersAndCommits(t *testing.T) {
	s := startServer(t, "-dev")
	call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": []string{"15551230111", "15551230117"}})
	queued := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": seqNumbers(15551230120, 12)})
	waitJobDone(t, s, "demo", "demo", queued.Body["job_uuid"].(string), 10*time.Second)
	var text string
	waitFor(t, 5*time.Second, "metrics of both jobs", func() bool {
		resp, err := http.Get(s.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text = string(b)
		return strings.Contains(text, `bulkrestore_jobs_finished_total{status="completed"} 2`)
	})
	for _, want := range []string{
		`bulkrestore_numbers_finished_total{outcome="failed",status_code="409"} 2`, // 117 and 127
		`bulkrestore_numbers_finished_total{outcome="success",status_code="200"}`,
		`bulkrestore_restore_duration_seconds_count{backend="inventory"} 14`,
		`bulkrestore_sqlite_commit_duration_seconds_count`,
		`bulkrestore_queued_numbers 0`,
		`bulkrestore_restores_in_flight 0`,
		`bulkrestore_http_requests_total{code="200",method="POST",route="/v3/bulk_restore"} 1`,
		`bulkrestore_http_requests_total{code="202",method="POST",route="/v3/bulk_restore"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("metrics lack %q", want)
		}
	}
}

func TestMetricsMoveToTheirOwnAddress(t *testing.T) {
	addr := closedPortAddr(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	s := startServer(t, "-dev", "-metrics-addr", addr)
	if got := call(t, http.MethodGet, s.URL+"/metrics", "", "", nil); got.Status != http.StatusNotFound {
		t.Fatalf("/metrics on the API listener: status=%d, want 404", got.Status)
	}
	resp, err := http.Get("http://127.0.0.1:" + port + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "bulkrestore_queued_numbers") {
		t.Fatalf("metrics listener: status=%d", resp.StatusCode)
	}
}

func TestJobListPagesNewestFirst(t *testing.T) {
	forEachStore(t, testJobListPagesNewestFirst)
}

// testJobListPagesNewestFirst runs TestJobListPagesNewestFirst on one database.
func testJobListPagesNewestFirst(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	var ids []string
	for i := range 5 {
		r := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": []string{itoa(15551230140 + i)}})
		ids = append(ids, r.Body["job_uuid"].(string))
	}
	var seen []string
	next := ""
	for page := 0; page < 5; page++ {
		url := s.URL + "/v3/bulk_restore_jobs?limit=2"
		if next != "" {
			url += "&before=" + next
		}
		got := call(t, http.MethodGet, url, "demo", "demo", nil)
		if got.Status != http.StatusOK {
			t.Fatalf("status=%d: %s", got.Status, got.Raw)
		}
		for _, j := range got.Body["jobs"].([]any) {
			seen = append(seen, j.(map[string]any)["job_uuid"].(string))
		}
		n, ok := got.Body["next_before"].(string)
		if !ok {
			break
		}
		next = n
	}
	if len(seen) != 5 {
		t.Fatalf("listed %d jobs, want 5", len(seen))
	}
	for i := range seen {
		if seen[i] != ids[len(ids)-1-i] {
			t.Fatalf("job %d is %s, want %s (newest first)", i, seen[i], ids[len(ids)-1-i])
		}
	}
	if got := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_jobs?status=running", "demo", "demo", nil); got.Status != http.StatusBadRequest {
		t.Fatalf("bad status filter: %d, want 400", got.Status)
	}
	if got := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_jobs?status=completed&limit=500", "demo", "demo", nil); len(got.Body["jobs"].([]any)) != 5 {
		t.Fatalf("completed jobs=%d, want 5", len(got.Body["jobs"].([]any)))
	}
}
