package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests run the real binary as a child process and kill it, so that
// what docs/API.md promises about crashes (Conventions, Durability: nothing
// acknowledged or recorded is lost to a crash or kill -9) is
// checked against a process that really dies, not a goroutine that is asked
// to stop.

// TestProcessCrashSafety builds the binary once and runs the process-level
// scenarios against it.
func TestProcessCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills child processes; skipped under -short")
	}
	bin := buildBinary(t)
	t.Run("KillMidJob", func(t *testing.T) { testKillMidJob(t, bin) })
	t.Run("KillRightAfterAccept", func(t *testing.T) { testKillRightAfterAccept(t, bin) })
	t.Run("SIGTERMFinishesInFlightAndExitsZero", func(t *testing.T) { testSIGTERM(t, bin) })
}

// testKillMidJob kills -9 a server with restores under way, restarts it on
// the same file, and checks that the job completes with every number exactly
// once, that results recorded before the crash are kept as they were, and
// that exactly one webhook arrives.
func testKillMidJob(t *testing.T, bin string) {
	db := filepath.Join(t.TempDir(), "x.db")
	up := newFakeUpstream(t, 20*time.Millisecond, 150) // after 150 calls, calls wait for the gate
	hook := newHookReceiver(t)
	key := binAddUser(t, bin, db, "alice")
	args := crashServerArgs(db, up.URL)
	c := startChild(t, bin, args...)

	numbers := seqNumbers(15550000000, 400)
	resp := call(t, http.MethodPost, c.URL+"/v3/bulk_restore", "alice", key,
		map[string]any{"numbers": numbers, "webhook_url": hook.URL + "/hook"})
	if resp.Status != http.StatusAccepted {
		t.Fatalf("submit: status=%d, want 202: %s", resp.Status, resp.Raw)
	}
	id := resp.Body["job_uuid"].(string)

	var before apiResponse
	waitFor(t, 30*time.Second, "100 numbers of the job to be final", func() bool {
		before = fetchJobStatus(t, c.URL, key, id)
		return numField(t, before.Body, "success_count") >= 100
	})
	// The gate holds every call after the 150th, so restores are under way
	// at the upstream when the process dies.
	waitFor(t, 10*time.Second, "restores to be in flight at the upstream", func() bool { return up.waiting.Load() > 0 })
	hitsBefore := up.snapshot()
	if before.Body["status"] == "completed" || numField(t, before.Body, "success_count") >= 400 {
		t.Fatalf("job finished before the crash (gate did not hold): %s", before.Raw)
	}
	finalBefore := map[string]float64{} // number -> attempts when it was seen final
	for _, r := range results(t, before.Body) {
		if r["status"] == "success" || r["status"] == "failed" {
			finalBefore[r["number"].(string)] = r["attempts"].(float64)
		}
	}

	c.kill9(t)
	if n := hook.count(); n != 0 {
		t.Fatalf("%d webhook deliveries before the job was complete", n)
	}
	up.open()
	c2 := startChild(t, bin, args...)
	done := waitJobDone(t, &testServer{URL: c2.URL}, "alice", key, id, 60*time.Second)
	attempts := checkAllRestored(t, done.Body, numbers)

	hits := up.snapshot()
	for n, a := range finalBefore {
		if hits[n] != hitsBefore[n] {
			t.Errorf("number %s was final before the crash but was restored again after it (upstream calls %d -> %d)",
				n, hitsBefore[n], hits[n])
		}
		if attempts[n] != int(a) {
			t.Errorf("number %s: attempts %d after restart, %v before the crash: a recorded result changed", n, attempts[n], a)
		}
	}
	for _, n := range numbers {
		if hits[n] < 1 || hits[n] < attempts[n] {
			t.Errorf("number %s: %d upstream calls for %d recorded attempts", n, hits[n], attempts[n])
		}
	}

	// Exactly one webhook: the job completed only after the restart.
	waitFor(t, 30*time.Second, "the webhook delivery", func() bool { return hook.count() >= 1 })
	select {
	case <-hook.second:
		t.Fatalf("a second webhook delivery arrived (%d in all)", hook.count())
	case <-time.After(2 * time.Second):
	}
	var payload map[string]any
	if err := json.Unmarshal(hook.body(0), &payload); err != nil {
		t.Fatalf("webhook body is not JSON: %v: %s", err, hook.body(0))
	}
	if payload["job_uuid"] != id || payload["status"] != "completed" {
		t.Fatalf("webhook payload job_uuid=%v status=%v, want %s completed", payload["job_uuid"], payload["status"], id)
	}
	checkAllRestored(t, payload, numbers)
	var st apiResponse
	waitFor(t, 10*time.Second, "the delivery to be recorded", func() bool {
		st = fetchJobStatus(t, c2.URL, key, id)
		return st.Body["webhook_delivered_at"] != nil
	})
	if st.Body["webhook_attempts"] != float64(1) || st.Body["webhook_error"] != nil {
		t.Fatalf("webhook_attempts=%v webhook_error=%v, want 1 and null", st.Body["webhook_attempts"], st.Body["webhook_error"])
	}
}

// testKillRightAfterAccept kills -9 the server as soon as it has answered
// 202, while no restore can have finished, and checks that the job and all
// its numbers were on disk and complete after a restart.
func testKillRightAfterAccept(t *testing.T, bin string) {
	db := filepath.Join(t.TempDir(), "x.db")
	up := newFakeUpstream(t, 20*time.Millisecond, 0) // every call waits for the gate
	key := binAddUser(t, bin, db, "alice")
	args := crashServerArgs(db, up.URL)
	c := startChild(t, bin, args...)

	numbers := seqNumbers(15560000000, 300)
	resp := call(t, http.MethodPost, c.URL+"/v3/bulk_restore", "alice", key, map[string]any{"numbers": numbers})
	c.kill9(t)
	if resp.Status != http.StatusAccepted {
		t.Fatalf("submit: status=%d, want 202: %s", resp.Status, resp.Raw)
	}
	id := resp.Body["job_uuid"].(string)

	// On disk, with the process dead: the job and all 300 numbers, none final.
	func() {
		s, err := openStore(db)
		if err != nil {
			t.Fatalf("open the database after the crash: %v", err)
		}
		defer s.Close()
		var jobID int64
		var total int
		var status string
		err = s.r.QueryRow("SELECT id, total, status FROM jobs WHERE uuid = ?", id).Scan(&jobID, &total, &status)
		if err != nil {
			t.Fatalf("job %s not on disk after kill -9 following its 202: %v", id, err)
		}
		if total != 300 || (status != "pending" && status != "processing") {
			t.Fatalf("job on disk: total=%d status=%s, want 300 and pending or processing", total, status)
		}
		rows, err := s.r.Query("SELECT number, status FROM job_numbers WHERE job_id = ? ORDER BY position", jobID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var n, st string
			if err := rows.Scan(&n, &st); err != nil {
				t.Fatal(err)
			}
			if st != "pending" && st != "processing" {
				t.Errorf("number %s is %s on disk, but no restore could have finished", n, st)
			}
			got = append(got, n)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != strings.Join(numbers, ",") {
			t.Fatalf("numbers on disk (%d) differ from the %d accepted", len(got), len(numbers))
		}
	}()

	up.open()
	c2 := startChild(t, bin, args...)
	done := waitJobDone(t, &testServer{URL: c2.URL}, "alice", key, id, 60*time.Second)
	checkAllRestored(t, done.Body, numbers)

	// A synchronous 200 is an acceptance too: kill -9 right after one.
	few := seqNumbers(15561000000, 3)
	syncResp := call(t, http.MethodPost, c2.URL+"/v3/bulk_restore", "alice", key, map[string]any{"numbers": few})
	c2.kill9(t)
	if syncResp.Status != http.StatusOK {
		t.Fatalf("synchronous request: status=%d: %s", syncResp.Status, syncResp.Raw)
	}
	c3 := startChild(t, bin, args...)
	st := fetchJobStatus(t, c3.URL, key, syncResp.Body["job_uuid"].(string))
	if st.Body["status"] != "completed" {
		t.Fatalf("synchronous job after kill -9 and restart: status %v, want completed", st.Body["status"])
	}
	checkAllRestored(t, st.Body, few)
}

// testSIGTERM sends SIGTERM while restores are under way: the process stops
// taking requests, lets those restores finish and records them, exits 0,
// and a restart completes the job with every number restored exactly once.
func testSIGTERM(t *testing.T, bin string) {
	db := filepath.Join(t.TempDir(), "x.db")
	up := newFakeUpstream(t, 20*time.Millisecond, 100)
	key := binAddUser(t, bin, db, "alice")
	args := crashServerArgs(db, up.URL)
	c := startChild(t, bin, args...)

	numbers := seqNumbers(15570000000, 400)
	resp := call(t, http.MethodPost, c.URL+"/v3/bulk_restore", "alice", key, map[string]any{"numbers": numbers})
	if resp.Status != http.StatusAccepted {
		t.Fatalf("submit: status=%d, want 202: %s", resp.Status, resp.Raw)
	}
	id := resp.Body["job_uuid"].(string)
	waitFor(t, 30*time.Second, "all 8 workers to be waiting at the upstream", func() bool { return up.waiting.Load() >= 8 })
	inFlight := up.waitingNumbers()

	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	waitFor(t, 10*time.Second, "the server to stop accepting requests", func() bool { return c.exited() || !healthy(c.URL) })
	up.open() // the restores under way may now finish
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		t.Fatal("process did not exit within 20s of SIGTERM")
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}

	func() {
		s, err := openStore(db)
		if err != nil {
			t.Fatalf("open the database after shutdown: %v", err)
		}
		defer s.Close()
		var recorded int
		if err := s.r.QueryRow("SELECT count(*) FROM number_attempts").Scan(&recorded); err != nil {
			t.Fatal(err)
		}
		if calls := int(up.calls.Load()); recorded != calls {
			t.Errorf("%d upstream calls were made but %d attempts recorded: restores under way at SIGTERM were lost", calls, recorded)
		}
		for _, n := range inFlight {
			var st string
			if err := s.r.QueryRow("SELECT status FROM job_numbers WHERE number = ?", n).Scan(&st); err != nil {
				t.Fatal(err)
			}
			if st != "success" {
				t.Errorf("number %s was being restored at SIGTERM; after shutdown it is %s, want success", n, st)
			}
		}
	}()

	c2 := startChild(t, bin, args...)
	done := waitJobDone(t, &testServer{URL: c2.URL}, "alice", key, id, 60*time.Second)
	checkAllRestored(t, done.Body, numbers)
	hits := up.snapshot()
	for _, n := range numbers {
		if hits[n] != 1 {
			t.Errorf("number %s: %d upstream calls, want exactly 1 across a graceful restart", n, hits[n])
		}
	}

	// SIGINT stops an idle server the same way.
	if err := c2.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatalf("SIGINT: %v", err)
	}
	select {
	case <-c2.done:
	case <-time.After(20 * time.Second):
		t.Fatal("process did not exit within 20s of SIGINT")
	}
	if code := c2.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code after SIGINT = %d, want 0", code)
	}
}

// crashServerArgs are the serve flags of every process-level test.
func crashServerArgs(db, upstreamURL string) []string {
	return []string{"-db", db, "-backend", "upstream", "-upstream-url", upstreamURL + "/r/{number}",
		"-workers", "8", "-restore-retry-base", "10ms", "-allow-private-webhooks"}
}

// checkAllRestored checks a final or status body of the given numbers: all
// succeeded, counts match, every number once in input order. It returns the
// attempts per number (0 where the body has none, as in a webhook payload).
func checkAllRestored(t *testing.T, body map[string]any, numbers []string) map[string]int {
	t.Helper()
	want := float64(len(numbers))
	if numField(t, body, "total_numbers") != want || numField(t, body, "success_count") != want ||
		numField(t, body, "failure_count") != 0 {
		t.Fatalf("total=%v success=%v failure=%v, want %v, %v, 0",
			body["total_numbers"], body["success_count"], body["failure_count"], want, want)
	}
	rs := results(t, body)
	if len(rs) != len(numbers) {
		t.Fatalf("%d results, want %d", len(rs), len(numbers))
	}
	attempts := map[string]int{}
	for i, r := range rs {
		n, _ := r["number"].(string)
		if _, dup := attempts[n]; dup {
			t.Fatalf("number %s appears twice in the results", n)
		}
		if n != numbers[i] {
			t.Fatalf("results[%d].number=%q, want %s", i, n, numbers[i])
		}
		if r["status"] != "success" || r["status_code"] != float64(200) {
			t.Fatalf("results[%d]=%v, want success 200", i, r)
		}
		a, has := r["attempts"].(float64)
		if has && a < 1 {
			t.Fatalf("number %s: attempts=%v, want >= 1", n, a)
		}
		attempts[n] = int(a)
	}
	return attempts
}

// fetchJobStatus reads alice's job through the status endpoint.
func fetchJobStatus(t *testing.T, base, key, id string) apiResponse {
	t.Helper()
	r := call(t, http.MethodGet, base+"/v3/bulk_restore_status?job_uuid="+id, "alice", key, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("status of %s: %d: %s", id, r.Status, r.Raw)
	}
	return r
}

// numField reads a numeric field of a body.
func numField(t *testing.T, body map[string]any, name string) float64 {
	t.Helper()
	v, ok := body[name].(float64)
	if !ok {
		t.Fatalf("field %s is %v (%T), want a number", name, body[name], body[name])
	}
	return v
}

// buildBinary compiles the package into a temp folder.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go") // go test puts its own go first in PATH
	if err != nil {
		t.Fatalf("no go command to build the binary with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "bulkrestore")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// childEnv is the test's environment without BULKRESTORE_* settings, so
// that the flags given are the whole configuration.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BULKRESTORE_") {
			env = append(env, kv)
		}
	}
	return env
}

// binAddUser runs `bulkrestore user add` through the binary and returns the
// API key from its one line of JSON.
func binAddUser(t *testing.T, bin, db, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "user", "add", "-db", db, name)
	cmd.Env = childEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("user add: %v: %s", err, stderr.String())
	}
	if lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); len(lines) != 1 {
		t.Fatalf("user add printed %d lines, want 1: %q", len(lines), out)
	}
	var created struct {
		Username string `json:"username"`
		APIKey   string `json:"api_key"`
	}
	if err := json.Unmarshal(out, &created); err != nil || created.Username != name || created.APIKey == "" {
		t.Fatalf("user add printed %q (%v)", out, err)
	}
	return created.APIKey
}

// child is a bulkrestore process.
type child struct {
	cmd  *exec.Cmd
	URL  string
	done chan struct{} // closed once the process has been waited for
	log  *lockedBuffer
}

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
	}
	return false
}

// kill9 kills the process with SIGKILL and waits for it.
func (c *child) kill9(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil && !c.exited() {
		t.Fatalf("kill: %v", err)
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("killed process was not reaped within 10s")
	}
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("process ended by itself (%v) before it was killed; log:\n%s", c.cmd.ProcessState, c.log)
	}
}

// startChild starts `bulkrestore serve` on a free loopback port and waits
// for /healthz; it tries a few ports in case one is taken meanwhile.
func startChild(t *testing.T, bin string, args ...string) *child {
	t.Helper()
	for try := 0; try < 5; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c := &child{URL: "http://" + addr, done: make(chan struct{}), log: &lockedBuffer{}}
		c.cmd = exec.Command(bin, append([]string{"serve", "-addr", addr}, args...)...)
		c.cmd.Env = childEnv()
		c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
		if err := c.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		go func() { c.cmd.Wait(); close(c.done) }()
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("log of the process on %s:\n%s", addr, c.log)
			}
		})
		t.Cleanup(func() {
			c.cmd.Process.Kill()
			select {
			case <-c.done:
			case <-time.After(10 * time.Second):
				t.Errorf("child on %s not reaped within 10s", addr)
			}
		})
		waitFor(t, 30*time.Second, "bulkrestore on "+addr+" to answer /healthz", func() bool {
			return c.exited() || healthy(c.URL)
		})
		if !c.exited() {
			return c
		}
		if !strings.Contains(c.log.String(), "address already in use") {
			t.Fatalf("bulkrestore exited at start (%v):\n%s", c.cmd.ProcessState, c.log)
		}
	}
	t.Fatal("no free port after 5 tries")
	return nil
}

// healthy reports whether /healthz answers 200, on a fresh connection.
func healthy(base string) bool {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written.
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// fakeUpstream is a slow single-number restore endpoint that counts calls
// per number. After the first `free` calls, calls wait until open is called
// (or their client goes away).
type fakeUpstream struct {
	*httptest.Server
	latency  time.Duration
	free     int64
	calls    atomic.Int64
	waiting  atomic.Int64
	gate     chan struct{}
	gateOnce sync.Once

	mu       sync.Mutex
	hits     map[string]int
	waitSet  map[string]bool
	answered []string // numbers in the order their answers were sent
}

// newFakeUpstream starts the fake upstream of the crash tests.
func newFakeUpstream(t *testing.T, latency time.Duration, free int64) *fakeUpstream {
	u := &fakeUpstream{latency: latency, free: free, gate: make(chan struct{}),
		hits: map[string]int{}, waitSet: map[string]bool{}}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	t.Cleanup(u.open) // runs first: nothing stays blocked at Close
	return u
}

// serve answers one restore call, counting it per number.
func (u *fakeUpstream) serve(w http.ResponseWriter, r *http.Request) {
	number := strings.TrimPrefix(r.URL.Path, "/r/")
	u.mu.Lock()
	u.hits[number]++
	u.mu.Unlock()
	if u.calls.Add(1) > u.free {
		u.mu.Lock()
		u.waitSet[number] = true
		u.mu.Unlock()
		u.waiting.Add(1)
		select {
		case <-u.gate:
		case <-r.Context().Done():
		}
		u.waiting.Add(-1)
		u.mu.Lock()
		delete(u.waitSet, number)
		u.mu.Unlock()
		if r.Context().Err() != nil {
			return
		}
	}
	select {
	case <-time.After(u.latency): // the upstream's own latency
	case <-r.Context().Done():
		return
	}
	u.mu.Lock()
	u.answered = append(u.answered, number)
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"message":"Number restored"}`)
}

// open lets every waiting and future call through.
func (u *fakeUpstream) open() { u.gateOnce.Do(func() { close(u.gate) }) }

// snapshot returns the calls per number so far.
func (u *fakeUpstream) snapshot() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]int, len(u.hits))
	for k, v := range u.hits {
		out[k] = v
	}
	return out
}

// answerOrder returns the numbers in the order they were answered.
func (u *fakeUpstream) answerOrder() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.answered...)
}

// waitingNumbers returns the numbers whose calls wait at the gate.
func (u *fakeUpstream) waitingNumbers() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for n := range u.waitSet {
		out = append(out, n)
	}
	return out
}

// hookReceiver records webhook deliveries and answers 200.
type hookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	second chan struct{} // closed when a second delivery arrives
}

// newHookReceiver starts a webhook receiver that keeps every body.
func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{second: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, body)
		if len(h.bodies) == 2 {
			close(h.second)
		}
		h.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.Close)
	return h
}

// count is how many deliveries arrived.
func (h *hookReceiver) count() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.bodies) }

// body returns delivery i.
func (h *hookReceiver) body(i int) []byte { h.mu.Lock(); defer h.mu.Unlock(); return h.bodies[i] }
