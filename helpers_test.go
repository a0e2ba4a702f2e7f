package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer is a real bulkrestore server on loopback, run in-process
// through serve(), on a SQLite file of the test's own.
type testServer struct {
	URL    string // http://127.0.0.1:PORT
	DB     string
	Logs   *lockedBuffer // every log line the server wrote
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// testLogWriter sends the server's log lines to the test log, and keeps
// them in also when set.
type testLogWriter struct {
	t    testing.TB
	mu   sync.Mutex
	also *lockedBuffer
}

// Write implements io.Writer.
func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	if w.also != nil {
		w.also.Write(p)
	}
	return len(p), nil
}

// mapEnv is a getenv over a map.
func mapEnv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// newTestDB returns the path of a fresh database file in a temp folder.
func newTestDB(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "bulkrestore.db")
}

// newTestStore opens a store on a fresh file, closed at cleanup.
func newTestStore(t testing.TB) *Store {
	t.Helper()
	return openTestStore(t, newTestDB(t))
}

// openTestStore opens a store on db (a SQLite file or a PostgreSQL URL),
// closed at cleanup.
func openTestStore(t testing.TB, db string) *Store {
	t.Helper()
	s, err := openStore(db)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// startServer starts a server with the given flags on a fresh database
// (unless args name -db) and stops it at cleanup. Tests add their own
// flags after the defaults, so theirs win.
func startServer(t testing.TB, args ...string) *testServer {
	t.Helper()
	return startServerEnv(t, nil, args...)
}

// startServerEnv is startServer with an environment for the flags'
// BULKRESTORE_* fallbacks and the upstream credentials.
func startServerEnv(t testing.TB, env map[string]string, args ...string) *testServer {
	t.Helper()
	db := newTestDB(t)
	base := []string{"-addr", "127.0.0.1:0", "-db", db, "-shutdown-timeout", "5s"}
	cfg, err := parseServeFlags(append(base, args...), mapEnv(env), io.Discard)
	if err != nil {
		t.Fatalf("parse flags: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{DB: cfg.db, Logs: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	logs := &testLogWriter{t: t, also: s.Logs}
	go func() { s.done <- serve(ctx, cfg, logs, func(addr string) { ready <- addr }) }()
	select {
	case addr := <-ready:
		s.URL = "http://" + addr
	case err := <-s.done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatal("server did not start within 15s")
	}
	t.Cleanup(s.stop)
	return s
}

// stop shuts the server down and waits for it; it may be called twice.
func (s *testServer) stop() {
	s.once.Do(func() {
		s.cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			panic("test server did not stop within 30s")
		}
	})
}

// addUser creates a user through the CLI and returns its API key and
// webhook secret.
func addUser(t testing.TB, db, name string) (key, secret string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"user", "add", "-db", db, name}, mapEnv(nil), nil, &out, &errOut); err != nil {
		t.Fatalf("user add %s: %v (%s)", name, err, errOut.String())
	}
	var created struct {
		Username      string `json:"username"`
		APIKey        string `json:"api_key"`
		WebhookSecret string `json:"webhook_secret"`
	}
	if err := json.Unmarshal(out.Bytes(), &created); err != nil {
		t.Fatalf("user add printed %q: %v", out.String(), err)
	}
	return created.APIKey, created.WebhookSecret
}

// importCSV loads an inventory CSV for a user through the CLI.
func importCSV(t testing.TB, db, user, csv string) {
	t.Helper()
	var out, errOut bytes.Buffer
	args := []string{"numbers", "import", "-db", db, "-user", user, "-"}
	if err := run(context.Background(), args, mapEnv(nil), strings.NewReader(csv), &out, &errOut); err != nil {
		t.Fatalf("numbers import: %v (%s)", err, errOut.String())
	}
}

// apiResponse is a decoded API answer.
type apiResponse struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// call makes an authenticated request; a non-nil body that is not a
// string or []byte is sent as JSON. It fails the test on transport errors
// and on a body that is not a JSON object.
func call(t testing.TB, method, url, user, key string, body any) apiResponse {
	t.Helper()
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, contentType = strings.NewReader(b), "application/x-www-form-urlencoded"
	case []byte:
		rd, contentType = bytes.NewReader(b), "application/json"
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshal request: %v", err)
		}
		rd, contentType = bytes.NewReader(data), "application/json"
	}
	return callRaw(t, method, url, contentType, rd, user, key)
}

// callRaw sends a request with exactly the Content-Type given (none when
// empty) and decodes the JSON object it answers (HEAD answers have none).
func callRaw(t testing.TB, method, url, contentType string, body io.Reader, user, key string) apiResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if user != "" || key != "" {
		req.SetBasicAuth(user, key)
	}
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", method, url, err)
	}
	out := apiResponse{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if method != http.MethodHead {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: Content-Type %q, want application/json (body %s)", method, url, ct, raw)
		}
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %v: %s", method, url, err, raw)
		}
	}
	return out
}

// waitFor polls cond every few milliseconds until it holds or the timeout
// passes, then fails the test with what.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(wait)
	}
}

// waitJobDone polls the status endpoint until the job is completed and
// returns the last status body.
func waitJobDone(t testing.TB, s *testServer, user, key, jobUUID string, timeout time.Duration) apiResponse {
	t.Helper()
	var last apiResponse
	waitFor(t, timeout, "job "+jobUUID+" to complete", func() bool {
		last = call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+jobUUID, user, key, nil)
		return last.Status == http.StatusOK && last.Body["status"] == "completed"
	})
	return last
}

// results returns the "results" array of a body as objects.
func results(t testing.TB, body map[string]any) []map[string]any {
	t.Helper()
	raw, ok := body["results"].([]any)
	if !ok {
		t.Fatalf("body has no results array: %v", body)
	}
	out := make([]map[string]any, len(raw))
	for i, r := range raw {
		out[i] = r.(map[string]any)
	}
	return out
}

// seqNumbers returns n distinct valid numbers starting at first.
func seqNumbers(first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = itoa(first + i)
	}
	return out
}

// itoa formats an int without importing strconv in every test file.
func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
