package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Several instances of the real binary on one PostgreSQL database, as a
// deployment behind a load balancer runs them: one is killed with SIGKILL
// and started again, every instance is restarted in turn with SIGTERM, and
// PostgreSQL itself restarts, all while jobs run; every number must end
// final exactly once, never be restored by two instances at the same time,
// and every job must send one webhook.

// TestSeveralInstancesOnOneDatabase builds the binary once and runs the
// scenarios.
func TestSeveralInstancesOnOneDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs several processes; skipped under -short")
	}
	requirePG(t)
	bin := buildBinary(t)
	t.Run("one of three instances killed mid-job and started again later loses nothing", func(t *testing.T) {
		testKillOneOfThree(t, bin)
	})
	t.Run("a rolling restart loses nothing and every instance exits 0", func(t *testing.T) {
		testRollingRestart(t, bin)
	})
	t.Run("PostgreSQL restarted mid-job: instances are not ready, reconnect, and the job completes", func(t *testing.T) {
		testPGRestart(t, bin)
	})
}

// overlapUpstream is a restore endpoint that records every call, per
// number, and whether two calls for one number were ever under way at the
// same time (two instances restoring it at once).
type overlapUpstream struct {
	*httptest.Server
	latency time.Duration
	calls   atomic.Int64

	mu       sync.Mutex
	inFlight map[string]int
	hits     map[string]int
	overlaps []string
}

// newOverlapUpstream starts the upstream; every call takes latency.
func newOverlapUpstream(t *testing.T, latency time.Duration) *overlapUpstream {
	u := &overlapUpstream{latency: latency, inFlight: map[string]int{}, hits: map[string]int{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		number := strings.TrimPrefix(r.URL.Path, "/r/")
		u.calls.Add(1)
		u.mu.Lock()
		u.hits[number]++
		if u.inFlight[number]++; u.inFlight[number] > 1 {
			u.overlaps = append(u.overlaps, number)
		}
		u.mu.Unlock()
		defer func() {
			u.mu.Lock()
			u.inFlight[number]--
			u.mu.Unlock()
		}()
		select {
		case <-time.After(u.latency):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"message":"Number restored"}`)
	}))
	t.Cleanup(u.Close)
	return u
}

// report returns the numbers called, and those called twice at once.
func (u *overlapUpstream) report() (called int, overlaps []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.hits), append([]string(nil), u.overlaps...)
}

// jobHooks counts webhook deliveries per job.
type jobHooks struct {
	*httptest.Server
	mu  sync.Mutex
	per map[string]int
}

// newJobHooks starts a receiver that answers 200 and counts per job_uuid.
func newJobHooks(t *testing.T) *jobHooks {
	h := &jobHooks{per: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p struct {
			JobUUID string `json:"job_uuid"`
		}
		if err := json.Unmarshal(body, &p); err == nil {
			h.mu.Lock()
			h.per[p.JobUUID]++
			h.mu.Unlock()
		}
	}))
	t.Cleanup(h.Close)
	return h
}

// counts returns the deliveries per job.
func (h *jobHooks) counts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for k, v := range h.per {
		out[k] = v
	}
	return out
}

// cluster is the instances of one scenario on one database.
type cluster struct {
	bin, db, key string
	args         []string
	up           *overlapUpstream
	hooks        *jobHooks
}

// newCluster prepares a scenario: a database, user alice, the upstream, the
// webhook receiver and the flags every instance runs with (a short lease,
// so that a dead instance's work is taken over within seconds).
func newCluster(t *testing.T, bin, db string) *cluster {
	c := &cluster{bin: bin, db: db, up: newOverlapUpstream(t, time.Millisecond), hooks: newJobHooks(t)}
	c.key = binAddUser(t, bin, db, "alice")
	c.args = []string{"-db", db, "-backend", "upstream", "-upstream-url", c.up.URL + "/r/{number}", "-workers", "16",
		"-restore-retry-base", "10ms", "-allow-private-webhooks", "-lease", "2s", "-max-numbers", "10000",
		"-rate-limit", "0", "-shutdown-timeout", "20s"}
	return c
}

// start starts one more instance.
func (c *cluster) start(t *testing.T) *child { return startChild(t, c.bin, c.args...) }

// submit queues jobs of size numbers each, numbered from first, and
// returns their uuids.
func (c *cluster) submit(t *testing.T, base string, jobs, size, first int) []string {
	t.Helper()
	var ids []string
	for i := range jobs {
		resp := call(t, http.MethodPost, base+"/v3/bulk_restore", "alice", c.key, map[string]any{
			"numbers": seqNumbers(first+i*size, size), "webhook_url": c.hooks.URL + "/hook"})
		if resp.Status != http.StatusAccepted {
			t.Fatalf("submit: status=%d, want 202: %s", resp.Status, resp.Raw)
		}
		ids = append(ids, resp.Body["job_uuid"].(string))
	}
	return ids
}

// processed is how many numbers of the jobs are final, read through base.
func (c *cluster) processed(t *testing.T, base string, ids []string) int {
	t.Helper()
	n := 0
	for _, id := range ids {
		st := call(t, http.MethodGet, base+"/v3/bulk_restore_status?job_uuid="+id+"&limit=0", "alice", c.key, nil)
		if st.Status == http.StatusOK {
			n += int(numField(t, st.Body, "processed_count"))
		}
	}
	return n
}

// checkDone waits for every job to complete and one webhook each, then
// checks the promises: each number final exactly once and a success,
// counts that add up, no number restored by two instances at once.
func (c *cluster) checkDone(t *testing.T, base string, ids []string, size int, within time.Duration) {
	t.Helper()
	for _, id := range ids {
		waitJobDone(t, &testServer{URL: base}, "alice", c.key, id, within)
	}
	waitFor(t, 30*time.Second, "one webhook per job", func() bool { return len(c.hooks.counts()) == len(ids) })
	raw := pgConn(t, c.db)
	var rows, success, jobsDone, counted int
	if err := raw.QueryRow(`SELECT count(*), count(*) FILTER (WHERE status = 'success') FROM job_numbers`).Scan(&rows, &success); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow(`SELECT count(*) FILTER (WHERE status = 'completed'), coalesce(sum(success_count), 0) FROM jobs`).
		Scan(&jobsDone, &counted); err != nil {
		t.Fatal(err)
	}
	want := len(ids) * size
	if rows != want || success != want || counted != want || jobsDone != len(ids) {
		t.Fatalf("%d numbers stored, %d successes, %d counted, %d jobs completed; want %d, %d, %d, %d",
			rows, success, counted, jobsDone, want, want, want, len(ids))
	}
	var twice int
	if err := raw.QueryRow(`SELECT count(*) FROM attempts a JOIN job_numbers n USING (job_id, position)
		WHERE a.attempt > n.attempts`).Scan(&twice); err != nil {
		t.Fatal(err)
	}
	if twice != 0 {
		t.Fatalf("%d attempts recorded beyond their number's count: a result recorded twice", twice)
	}
	called, overlaps := c.up.report()
	t.Logf("%d upstream calls for %d numbers (a number in flight in a stopped instance is called again)", c.up.calls.Load(), called)
	if called != want || len(overlaps) > 0 {
		t.Fatalf("%d numbers called at the upstream (want %d); called by two at once: %v", called, want, overlaps)
	}
	// A repeat would come from a sender that found the delivery due again;
	// give one a moment to arrive before counting (a grace period for
	// something that must not happen, not a wait for something that must).
	time.Sleep(200 * time.Millisecond)
	for id, n := range c.hooks.counts() {
		if n != 1 {
			t.Fatalf("job %s got %d webhooks, want 1", id, n)
		}
	}
}

// testKillOneOfThree runs 30,000 numbers on three instances, kills one
// with SIGKILL mid-job, and starts it again a while later.
func testKillOneOfThree(t *testing.T, bin string) {
	c := newCluster(t, bin, newPGDatabase(t))
	a, b, d := c.start(t), c.start(t), c.start(t)
	ids := c.submit(t, a.URL, 3, 10000, 15560000000)
	waitFor(t, 120*time.Second, "a quarter of the numbers to be done", func() bool { return c.processed(t, d.URL, ids) >= 7500 })
	b.kill9(t)
	killedAt := c.processed(t, a.URL, ids)
	waitFor(t, 120*time.Second, "the others to go on", func() bool { return c.processed(t, a.URL, ids) >= killedAt+5000 })
	c.start(t) // b again, with a new instance id
	c.checkDone(t, d.URL, ids, 10000, 180*time.Second)
}

// testRollingRestart restarts each of three instances in turn with
// SIGTERM while jobs run.
func testRollingRestart(t *testing.T, bin string) {
	c := newCluster(t, bin, newPGDatabase(t))
	instances := []*child{c.start(t), c.start(t), c.start(t)}
	ids := c.submit(t, instances[0].URL, 3, 5000, 15570000000)
	for i := range instances {
		before := c.processed(t, instances[(i+1)%3].URL, ids)
		waitFor(t, 120*time.Second, "progress before the next restart", func() bool {
			return c.processed(t, instances[(i+1)%3].URL, ids) >= before+1000 || before+1000 > 15000
		})
		old := instances[i]
		if err := old.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-old.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("instance %d did not stop within 30s of SIGTERM", i)
		}
		if code := old.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("instance %d exited %d after SIGTERM, want 0:\n%s", i, code, old.log)
		}
		instances[i] = c.start(t)
	}
	c.checkDone(t, instances[0].URL, ids, 5000, 180*time.Second)
}

// testPGRestart restarts PostgreSQL (a cluster of its own, so that no other
// test sees the outage) while two instances work through a job.
func testPGRestart(t *testing.T, bin string) {
	pg, err := startPGCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pg.admin.Close()
		pg.ctl("stop", "-m", "immediate")
	})
	c := newCluster(t, bin, pg.newDatabase(t, false))
	a, b := c.start(t), c.start(t)
	ids := c.submit(t, a.URL, 1, 8000, 15580000000)
	waitFor(t, 120*time.Second, "the job to be under way", func() bool { return c.processed(t, a.URL, ids) >= 1000 })
	var notReady atomic.Bool
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() { // /readyz of both instances, every 20ms, until told to stop
		defer close(watched)
		client := &http.Client{Timeout: time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for _, base := range []string{a.URL, b.URL} {
				if resp, err := client.Get(base + "/readyz"); err == nil {
					if resp.StatusCode == http.StatusServiceUnavailable {
						notReady.Store(true)
					}
					resp.Body.Close()
				}
			}
		}
	}()
	pg.restart(t)
	waitFor(t, 30*time.Second, "both instances to be ready again", func() bool {
		return notReady.Load() && readyz(a.URL) && readyz(b.URL)
	})
	close(stop)
	<-watched
	c.checkDone(t, a.URL, ids, 8000, 180*time.Second)
}

// readyz reports whether /readyz answers 200.
func readyz(base string) bool {
	client := &http.Client{Timeout: time.Second}
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
