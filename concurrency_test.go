package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Load and ordering: synchronous requests while a big job drains, fairness
// between jobs, and the group-commit writer's isolation of failing writes.

// postBulk submits numbers without touching t, so goroutines may use it.
func postBulk(client *http.Client, base, user, key string, numbers []string) (int, map[string]any, []byte, error) {
	data, _ := json.Marshal(map[string]any{"numbers": numbers})
	req, err := http.NewRequest(http.MethodPost, base+"/v3/bulk_restore", bytes.NewReader(data))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(user, key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, nil, err
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return resp.StatusCode, nil, raw, fmt.Errorf("body is not JSON: %v", err)
	}
	return resp.StatusCode, body, raw, nil
}

// TestSyncRequestsWhileBigJobDrains fires 200 synchronous requests from 16
// goroutines and, once they are under way, queues a 6000-number job that
// drains meanwhile: every request is answered 200 with a complete result
// (never 500, never "database is locked"), and the big job completes with
// the right counts.
func TestSyncRequestsWhileBigJobDrains(t *testing.T) {
	forEachStore(t, testSyncRequestsWhileBigJobDrains)
}

// testSyncRequestsWhileBigJobDrains runs TestSyncRequestsWhileBigJobDrains on one database.
func testSyncRequestsWhileBigJobDrains(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	bobKey, _ := addUser(t, s.DB, "bob")
	var inv strings.Builder
	inv.WriteString("number,state\n")
	owned := seqNumbers(15560000000, 5000)
	for _, n := range owned {
		inv.WriteString(n + ",released\n")
	}
	importCSV(t, s.DB, "bob", inv.String())
	big := append(owned, seqNumbers(15570000000, 1000)...) // the last 1000 are not bob's: 404

	const goroutines, requests = 16, 200
	jobs := make(chan int, requests)
	for i := range requests {
		jobs <- i
	}
	close(jobs)
	errs := make(chan error, requests)
	var answered atomic.Int64
	burstStart := time.Now()
	client := &http.Client{Timeout: 60 * time.Second}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for i := range jobs {
				numbers := seqNumbers(15551230100+(i*10)%100, 10)
				status, body, raw, err := postBulk(client, s.URL, "demo", "demo", numbers)
				answered.Add(1)
				switch {
				case err != nil:
					errs <- fmt.Errorf("request %d: %v (%s)", i, err, raw)
				case status != http.StatusOK || bytes.Contains(raw, []byte("locked")):
					errs <- fmt.Errorf("request %d: status %d: %s", i, status, raw)
				case body["status"] != "completed" || body["total_numbers"] != float64(10):
					errs <- fmt.Errorf("request %d: not a completed 10-number job: %s", i, raw)
				default:
					ok, _ := body["success_count"].(float64)
					bad, _ := body["failure_count"].(float64)
					rs, _ := body["results"].([]any)
					if ok+bad != 10 || len(rs) != 10 {
						errs <- fmt.Errorf("request %d: success %v + failure %v, %d results, want 10: %s", i, ok, bad, len(rs), raw)
					}
				}
			}
		})
	}
	waitFor(t, time.Minute, "the first synchronous answers", func() bool { return answered.Load() >= goroutines })
	resp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "bob", bobKey, map[string]any{"numbers": big})
	if resp.Status != http.StatusAccepted {
		t.Fatalf("big job: status=%d: %s", resp.Status, resp.Raw)
	}
	bigID := resp.Body["job_uuid"].(string)
	answeredAtSubmit := answered.Load()

	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(3 * time.Minute):
		t.Fatal("synchronous requests did not all finish within 3 minutes")
	}
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 10 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Fatalf("%d of %d synchronous requests failed", n, requests)
	}
	st := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+bigID+"&limit=1", "bob", bobKey, nil)
	progress := numField(t, st.Body, "success_count") + numField(t, st.Body, "failure_count")
	t.Logf("%d synchronous requests took %s; the big job was queued after %d answers and had %v of %d numbers final when the last came",
		requests, time.Since(burstStart).Round(time.Millisecond), answeredAtSubmit, progress, len(big))

	done := waitJobDone(t, s, "bob", bobKey, bigID, 2*time.Minute)
	if done.Body["total_numbers"] != float64(6000) || done.Body["success_count"] != float64(5000) ||
		done.Body["failure_count"] != float64(1000) {
		t.Fatalf("big job total=%v success=%v failure=%v, want 6000, 5000, 1000",
			done.Body["total_numbers"], done.Body["success_count"], done.Body["failure_count"])
	}
	rs := results(t, done.Body)
	if len(rs) != len(big) {
		t.Fatalf("big job has %d results, want %d", len(rs), len(big))
	}
	for i, r := range rs {
		want := "success"
		if i >= len(owned) {
			want = "failed"
		}
		if r["number"] != big[i] || r["status"] != want {
			t.Fatalf("results[%d]=%v, want %s %s", i, r, big[i], want)
		}
	}
}

// TestSmallJobNotStuckBehindBigJob submits an 11-number job right after a
// 5000-number job against an upstream with a little latency: the small job
// must complete while the big one is still running.
func TestSmallJobNotStuckBehindBigJob(t *testing.T) {
	forEachStore(t, testSmallJobNotStuckBehindBigJob)
}

// testSmallJobNotStuckBehindBigJob runs TestSmallJobNotStuckBehindBigJob on one database.
func testSmallJobNotStuckBehindBigJob(t *testing.T, db string) {
	up := newFakeUpstream(t, 3*time.Millisecond, 1<<62)
	s := startServer(t, "-db", db, "-dev", "-backend", "upstream", "-upstream-url", up.URL+"/r/{number}")
	bigNumbers := seqNumbers(15580000000, 5000)
	smallNumbers := seqNumbers(15590000000, 11)
	bigResp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": bigNumbers})
	smallResp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": smallNumbers})
	if bigResp.Status != http.StatusAccepted || smallResp.Status != http.StatusAccepted {
		t.Fatalf("submit: %d %s / %d %s", bigResp.Status, bigResp.Raw, smallResp.Status, smallResp.Raw)
	}
	bigID, smallID := bigResp.Body["job_uuid"].(string), smallResp.Body["job_uuid"].(string)

	small := waitJobDone(t, s, "demo", "demo", smallID, time.Minute)
	bigNow := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+bigID+"&limit=1", "demo", "demo", nil)
	if bigNow.Body["status"] == "completed" {
		t.Fatalf("the 11-number job completed only after the 5000-number job submitted just before it")
	}
	if small.Body["success_count"] != float64(11) {
		t.Fatalf("small job success_count=%v, want 11", small.Body["success_count"])
	}
	big := waitJobDone(t, s, "demo", "demo", bigID, 2*time.Minute)
	if big.Body["success_count"] != float64(5000) || big.Body["failure_count"] != float64(0) {
		t.Fatalf("big job success=%v failure=%v, want 5000 and 0", big.Body["success_count"], big.Body["failure_count"])
	}

	// In the upstream's own order: the small job's last answer came well
	// before the big job's last.
	order := up.answerOrder()
	lastSmall, lastBig := -1, -1
	for i, n := range order {
		if strings.HasPrefix(n, "1559") {
			lastSmall = i
		} else {
			lastBig = i
		}
	}
	if lastSmall < 0 || lastBig < 0 || lastSmall > lastBig {
		t.Fatalf("small job's last answer at %d, big job's at %d of %d", lastSmall, lastBig, len(order))
	}
	t.Logf("small job finished after %d of %d upstream answers", lastSmall+1, len(order))
}

// TestSmallJobWaitsBehindFewOfABigJobsNumbers holds a server of two
// workers restoring one number at a time, each when the test says, while a
// 100-number job runs, and then submits an 11-number job: the small job's
// numbers all start within the first 60 restores (the two jobs take turns;
// about 33 here), not after the big job's hundred. The numbers a server
// takes ahead of its workers are numbers a new job waits behind, so it
// takes only a few (two per worker).
func TestSmallJobWaitsBehindFewOfABigJobsNumbers(t *testing.T) {
	forEachStore(t, testSmallJobWaitsBehindFewOfABigJobsNumbers)
}

// testSmallJobWaitsBehindFewOfABigJobsNumbers runs
// TestSmallJobWaitsBehindFewOfABigJobsNumbers on one database.
func testSmallJobWaitsBehindFewOfABigJobsNumbers(t *testing.T, db string) {
	r := steppedRestorer{started: make(chan string), step: make(chan struct{}), done: make(chan struct{})}
	_, srv := startServiceWith(t, r, "-dev", "-workers", "2", "-db", db)
	t.Cleanup(func() { close(r.done) }) // runs before the service stops
	submit := func(numbers []string) {
		if resp := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": numbers}); resp.Status != http.StatusAccepted {
			t.Fatalf("submit: status=%d, want 202: %s", resp.Status, resp.Raw)
		}
	}
	submit(seqNumbers(15580000000, 100))
	var order []string
	next := func() {
		select {
		case n := <-r.started:
			order = append(order, n)
		case <-time.After(10 * time.Second):
			t.Fatalf("no restore started in 10s; started so far: %v", order)
		}
	}
	next()
	next() // both workers hold a number of the big job
	submit(seqNumbers(15590000000, 11))
	smallStarted := 0
	for len(order) < 111 && smallStarted < 11 {
		r.step <- struct{}{}
		next()
		if strings.HasPrefix(order[len(order)-1], "1559") {
			smallStarted++
		}
	}
	if smallStarted < 11 || len(order) > 60 {
		t.Fatalf("the small job's 11 numbers had %d started after %d restores, want all within 60: %v",
			smallStarted, len(order), order)
	}
}

// steppedRestorer restores a number each time the test sends on step,
// having told the test on started that the number began; once done is
// closed it restores at once.
type steppedRestorer struct {
	started chan string
	step    chan struct{}
	done    chan struct{}
}

// Restore implements Restorer.
func (r steppedRestorer) Restore(ctx context.Context, _ int64, number string) Outcome {
	restored := Outcome{Success: true, StatusCode: http.StatusOK, Message: msgRestored}
	select {
	case r.started <- number:
	case <-r.done:
		return restored
	case <-ctx.Done():
		return Outcome{StatusCode: http.StatusServiceUnavailable, Message: "cut short", Transient: true}
	}
	select {
	case <-r.step:
	case <-r.done:
	case <-ctx.Done():
		return Outcome{StatusCode: http.StatusServiceUnavailable, Message: "cut short", Transient: true}
	}
	return restored
}

// TestWriterIsolatesFailingWrites queues many writes while the writer is busy,
// so that they share one transaction; one returns an error and one panics:
// only their changes are undone, the rest commit, and each caller gets its
// own result.
func TestWriterIsolatesFailingWrites(t *testing.T) {
	store, w, groups := newLoggedWriter(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	err := w.do(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec("CREATE TABLE scratch (k INTEGER PRIMARY KEY, v TEXT NOT NULL) STRICT"); err != nil {
			return err
		}
		_, err := tx.Exec("INSERT INTO scratch VALUES (0, 'seed')")
		return err
	})
	if err != nil {
		t.Fatalf("setup: %v", err)
	}

	release, blockerErr := holdWriter(t, ctx, w)

	const ops, failing, panicking = 63, 17, 33
	errBoom := errors.New("boom")
	results := make([]error, ops+1)
	var wg sync.WaitGroup
	for i := 1; i <= ops; i++ {
		wg.Go(func() {
			results[i] = w.do(ctx, func(tx *sql.Tx) error {
				groups.ran(i)
				if _, err := tx.Exec("INSERT INTO scratch VALUES (?, ?), (?, ?)", i, fmt.Sprint("op ", i), 1000+i, "second row"); err != nil {
					return err
				}
				switch i {
				case failing:
					if _, err := tx.Exec("UPDATE scratch SET v = 'clobbered' WHERE k = 0"); err != nil {
						return err
					}
					return errBoom
				case panicking:
					if _, err := tx.Exec("UPDATE scratch SET v = 'clobbered by panic' WHERE k = 0"); err != nil {
						return err
					}
					panic("write gone wrong")
				}
				return nil
			})
		})
	}
	// Every op goroutine is inside writer.do (parked on the send) before the
	// writer is let go, so the next group carries all of them.
	waitQueuedWrites(t, "TestWriterIsolatesFailingWrites", ops)
	release()
	waitGroupWithin(t, &wg, 30*time.Second)
	if err := <-blockerErr; err != nil {
		t.Fatalf("blocking write: %v", err)
	}

	for i := 1; i <= ops; i++ {
		switch i {
		case failing:
			if !errors.Is(results[i], errBoom) {
				t.Errorf("failing write got %v, want its own error", results[i])
			}
		case panicking:
			if results[i] == nil {
				t.Errorf("panicking write got no error")
			}
		default:
			if results[i] != nil {
				t.Errorf("write %d got %v, want nil", i, results[i])
			}
		}
	}
	groups.mu.Lock()
	group := groups.groupOf[failing]
	shared := 0
	for i, b := range groups.groupOf {
		if b == group && i != failing && i != panicking {
			shared++
		}
	}
	sizes := append([]int(nil), groups.sizes...)
	groups.mu.Unlock()
	if shared == 0 || groups.groupOf[panicking] != group {
		t.Fatalf("the failing writes did not share a transaction with good ones (groups %v): the test proves nothing", sizes)
	}

	rows, err := store.r.Query("SELECT k, v FROM scratch")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[int]string{}
	for rows.Next() {
		var k int
		var v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		got[k] = v
	}
	if got[0] != "seed" {
		t.Errorf("row 0 is %q: a failed write's change was committed", got[0])
	}
	for i := 1; i <= ops; i++ {
		_, first := got[i]
		_, second := got[1000+i]
		want := i != failing && i != panicking
		if first != want || second != want {
			t.Errorf("write %d: rows present %v/%v, want %v", i, first, second, want)
		}
	}
	if len(got) != 1+2*(ops-2) {
		t.Errorf("%d rows, want %d", len(got), 1+2*(ops-2))
	}
	t.Logf("commit groups: %v; %d good writes shared the failing writes' transaction", sizes, shared)
}

// holdWriter runs a write that holds w until release is called, so that
// the writes offered meanwhile queue up; the write's error arrives on the
// channel.
func holdWriter(t *testing.T, ctx context.Context, w *writer) (release func(), done <-chan error) {
	t.Helper()
	entered, let := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- w.do(ctx, func(tx *sql.Tx) error {
			close(entered)
			select {
			case <-let:
				return nil
			case <-time.After(30 * time.Second):
				return errors.New("never released")
			}
		})
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("blocking write never ran")
	}
	return func() { close(let) }, errc
}

// waitQueuedWrites waits until n goroutines of the test named test are
// parked in the writer (in writer.do or doAlone).
func waitQueuedWrites(t *testing.T, test string, n int) {
	t.Helper()
	waitFor(t, 10*time.Second, "all writes to be queued", func() bool {
		buf := make([]byte, 8<<20)
		queued := 0
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "(*writer).submit(") && strings.Contains(g, test) {
				queued++
			}
		}
		return queued >= n
	})
}

// waitGroupWithin waits for wg, failing the test after d.
func waitGroupWithin(t *testing.T, wg *sync.WaitGroup, d time.Duration) {
	t.Helper()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(d):
		t.Fatalf("queued writes did not finish within %v", d)
	}
}
