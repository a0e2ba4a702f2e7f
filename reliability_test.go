package main

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// deleteUserCLI deletes a user with `bulkrestore user del`, which opens the
// database on connections of its own, as another process would, and
// returns when the deletion has committed.
func deleteUserCLI(t *testing.T, db, name string) time.Time {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"user", "del", "-db", db, name}, mapEnv(nil), nil, &out, &errOut); err != nil {
		t.Fatalf("user del %s: %v (%s)", name, err, errOut.String())
	}
	return time.Now()
}

// jobRowID reads a job's row id.
func jobRowID(t *testing.T, db, jobUUID string) int64 {
	t.Helper()
	store, err := openStore(db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var id int64
	if err := store.r.QueryRow(store.q("SELECT id FROM jobs WHERE uuid = ?"), jobUUID).Scan(&id); err != nil {
		t.Fatalf("job %s: %v", jobUUID, err)
	}
	return id
}

// stopWithin stops the server and fails the test if that took longer
// than limit.
func stopWithin(t *testing.T, s *testServer, limit time.Duration) {
	t.Helper()
	start := time.Now()
	s.stop()
	if d := time.Since(start); d > limit {
		t.Fatalf("shutdown took %s, want at most %s", d, limit)
	}
}

// checkNoRetryLoop fails the test if the server logged that it keeps
// retrying a write, or met a foreign key failure.
func checkNoRetryLoop(t *testing.T, s *testServer) {
	t.Helper()
	logs := s.Logs.String()
	for _, bad := range []string{"FOREIGN KEY", "will try again"} {
		if strings.Contains(logs, bad) {
			t.Fatalf("server logged %q:\n%s", bad, logs)
		}
	}
}

// hitsAfter counts the upstream calls for numbers in [first, first+n)
// that arrived after t.
func hitsAfter(f *upstreamFake, first, n int, t time.Time) int {
	count := 0
	for i := range n {
		for _, h := range f.hitsFor(strconv.Itoa(first + i)) {
			if h.at.After(t) {
				count++
			}
		}
	}
	return count
}

// hitsIn counts every upstream call for numbers in [first, first+n).
func hitsIn(f *upstreamFake, first, n int) int {
	return hitsAfter(f, first, n, time.Time{})
}

// Numbers of the two users of the deletion tests.
const (
	aliceFirst = 15551000000
	bobFirst   = 15552000000
)

func TestDeletingAUserStopsItsWorkAndTouchesNoOneElse(t *testing.T) {
	forEachStore(t, testDeletingAUserStopsItsWorkAndTouchesNoOneElse)
}

// testDeletingAUserStopsItsWorkAndTouchesNoOneElse runs TestDeletingAUserStopsItsWorkAndTouchesNoOneElse on one database.
func testDeletingAUserStopsItsWorkAndTouchesNoOneElse(t *testing.T, db string) {
	// slack covers liveCheckAge and a loaded machine: a call that the
	// deletion did not stop must have started this soon after it.
	const slack = 500 * time.Millisecond
	cases := []struct {
		name   string
		alice  int // numbers in alice's job
		answer func(number string, n int) upstreamAnswer
		// ready reports when alice's job is in the state the case is about.
		ready func(f *upstreamFake) bool
	}{
		{
			name:  "while its job is running",
			alice: 2000,
			answer: func(string, int) upstreamAnswer {
				time.Sleep(20 * time.Millisecond) // 2000 numbers: 10s on 4 workers
				return upstreamAnswer{body: `{"message":"Number restored"}`}
			},
			ready: func(f *upstreamFake) bool { return hitsIn(f, aliceFirst, 2000) >= 20 },
		},
		{
			name:  "while its numbers wait on retries",
			alice: 20,
			answer: func(number string, n int) upstreamAnswer {
				if n == 1 { // every number's first try asks to come back in a second
					return upstreamAnswer{status: 503, header: map[string]string{"Retry-After": "1"}}
				}
				return upstreamAnswer{body: `{"message":"Number restored"}`}
			},
			ready: func(f *upstreamFake) bool { return hitsIn(f, aliceFirst, 20) == 20 },
		},
	}
	for _, c := range cases {
		t.Run(c.name+", on the upstream backend", func(t *testing.T) {
			f := newUpstreamFake(t, c.answer)
			s, aliceKey := startUpstreamServer(t, f.URL+"/v3/restore/{number}", "-db", anotherDB(t, db), "-workers", "4", "-allow-private-webhooks",
				"-webhook-retry-base", "50ms")
			bobKey, _ := addUser(t, s.DB, "bob")
			hooks := newHookReceiver(t)
			resp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "alice", aliceKey,
				map[string]any{"numbers": seqNumbers(aliceFirst, c.alice), "webhook_url": hooks.URL})
			if resp.Status != http.StatusAccepted {
				t.Fatalf("status=%d, want 202: %s", resp.Status, resp.Raw)
			}
			aliceJob := jobRowID(t, s.DB, resp.Body["job_uuid"].(string))
			waitFor(t, 20*time.Second, "alice's job to reach its state", func() bool { return c.ready(f) })

			deleted := deleteUserCLI(t, s.DB, "alice")
			// bob's job needs a retry a second away too, so that by the time
			// it completes, alice's retries would have fallen due.
			bobNumbers := seqNumbers(bobFirst, 20)
			id, done := submitAndFinishAs(t, s, "bob", bobKey, bobNumbers)
			if done.Body["success_count"] != float64(20) {
				t.Fatalf("bob's job: %s, want 20 successes", done.Raw)
			}
			if n := hitsIn(f, bobFirst, 20); n < 20 {
				t.Fatalf("upstream saw %d calls for bob's 20 numbers", n)
			}
			if bobJob := jobRowID(t, s.DB, id); bobJob <= aliceJob {
				t.Fatalf("bob's job got id %d, not above the deleted job's %d: ids are reused", bobJob, aliceJob)
			}
			if n := hitsAfter(f, aliceFirst, c.alice, deleted.Add(slack)); n != 0 {
				t.Fatalf("upstream got %d calls for alice's numbers more than %s after she was deleted", n, slack)
			}
			if n := hooks.count(); n != 0 {
				t.Fatalf("alice's webhook was called %d times after her deletion", n)
			}
			checkNoRetryLoop(t, s)
			stopWithin(t, s, 5*time.Second)
		})
	}

	t.Run("while its job is still queued behind another, on the upstream backend", func(t *testing.T) {
		up := newGatedUpstream(t)
		s := startServerEnv(t, upstreamEnv, append([]string{"-db", db}, append(up.upstreamArgs(), "-workers", "1")...)...)
		aliceKey, _ := addUser(t, s.DB, "alice")
		bobKey, _ := addUser(t, s.DB, "bob")
		// bob's job fills the window of numbers in flight while the
		// upstream holds the only worker, so alice's job waits unread.
		bob := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "bob", bobKey, map[string]any{"numbers": seqNumbers(bobFirst, 1500)})
		waitFor(t, 10*time.Second, "the worker to be busy", func() bool { return up.started.Load() == 1 })
		alice := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "alice", aliceKey, map[string]any{"numbers": seqNumbers(aliceFirst, 30)})
		st := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+alice.Body["job_uuid"].(string), "alice", aliceKey, nil)
		if st.Body["status"] != "pending" {
			t.Fatalf("alice's job is %v, want pending", st.Body["status"])
		}
		deleteUserCLI(t, s.DB, "alice")
		up.open()
		done := waitJobDone(t, s, "bob", bobKey, bob.Body["job_uuid"].(string), 60*time.Second)
		if done.Body["success_count"] != float64(1500) {
			t.Fatalf("bob's job: %v successes, want 1500", done.Body["success_count"])
		}
		if total := up.started.Load(); total != 1500 {
			t.Fatalf("upstream got %d calls, want bob's 1500 and none of alice's", total)
		}
		checkNoRetryLoop(t, s)
		stopWithin(t, s, 5*time.Second)
	})

	t.Run("while a synchronous request of hers is being restored", func(t *testing.T) {
		up := newGatedUpstream(t)
		s := startServerEnv(t, upstreamEnv, append([]string{"-db", anotherDB(t, db)}, up.upstreamArgs()...)...)
		aliceKey, _ := addUser(t, s.DB, "alice")
		answer := make(chan apiResponse, 1)
		go func() {
			answer <- call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "alice", aliceKey, map[string]any{"numbers": seqNumbers(aliceFirst, 3)})
		}()
		waitFor(t, 10*time.Second, "the restores to be under way", func() bool { return up.started.Load() >= 1 })
		deleteUserCLI(t, s.DB, "alice")
		up.open()
		var resp apiResponse
		select {
		case resp = <-answer:
		case <-time.After(20 * time.Second):
			t.Fatal("no answer 20s after the upstream answered")
		}
		if resp.Status != http.StatusUnauthorized || !strings.Contains(string(resp.Raw), "deleted while the request ran") {
			t.Fatalf("status=%d %s; want 401: the user was deleted while the request ran", resp.Status, resp.Raw)
		}
		stopWithin(t, s, 5*time.Second)
		store, err := openStore(s.DB)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		for _, table := range []string{"jobs", "job_numbers", "attempts"} {
			if n := countRows(t, store, "SELECT count(*) FROM "+table); n != 0 {
				t.Fatalf("%d rows in %s after the request of a deleted user", n, table)
			}
		}
	})

	t.Run("while its job is running, on the inventory backend", func(t *testing.T) {
		const n = 60000
		s := startServer(t, "-db", anotherDB(t, db), "-workers", "1", "-max-numbers", strconv.Itoa(n), "-max-body", "8MiB")
		aliceKey, _ := addUser(t, s.DB, "alice")
		bobKey, _ := addUser(t, s.DB, "bob")
		importCSV(t, s.DB, "alice", inventoryCSV(aliceFirst, n))
		importCSV(t, s.DB, "bob", inventoryCSV(bobFirst, 20))
		resp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "alice", aliceKey, map[string]any{"numbers": seqNumbers(aliceFirst, n)})
		if resp.Status != http.StatusAccepted {
			t.Fatalf("status=%d, want 202: %s", resp.Status, resp.Raw)
		}
		aliceUUID := resp.Body["job_uuid"].(string)
		aliceJob := jobRowID(t, s.DB, aliceUUID)
		waitFor(t, 30*time.Second, "alice's job to be under way", func() bool {
			got := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+aliceUUID+"&limit=0", "alice", aliceKey, nil)
			return got.Body["success_count"].(float64) > 0
		})
		deleteUserCLI(t, s.DB, "alice")
		id, done := submitAndFinishAs(t, s, "bob", bobKey, seqNumbers(bobFirst, 20))
		if done.Body["success_count"] != float64(20) {
			t.Fatalf("bob's job: %s, want 20 successes", done.Raw)
		}
		if bobJob := jobRowID(t, s.DB, id); bobJob <= aliceJob {
			t.Fatalf("bob's job got id %d, not above the deleted job's %d", bobJob, aliceJob)
		}
		checkNoRetryLoop(t, s)
		stopWithin(t, s, 5*time.Second)
		store, err := openStore(s.DB)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		for _, table := range []string{"job_numbers", "attempts"} {
			if n := countRows(t, store, "SELECT count(*) FROM "+table+" WHERE job_id NOT IN (SELECT id FROM jobs)"); n != 0 {
				t.Fatalf("%d rows of %s outlived their job", n, table)
			}
		}
		if n := countRows(t, store, "SELECT count(*) FROM job_numbers WHERE job_id = ?", aliceJob); n != 0 {
			t.Fatalf("%d numbers of alice's job are still stored", n)
		}
	})

	t.Run("after its job finished with a webhook still being retried", func(t *testing.T) {
		s := startServer(t, "-db", anotherDB(t, db), "-dev", "-webhook-retry-base", "30ms", "-webhook-retry-max", "60ms")
		aliceKey, _ := addUser(t, s.DB, "alice")
		var mu sync.Mutex
		posts := 0
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			mu.Lock()
			posts++
			mu.Unlock()
			w.WriteHeader(http.StatusInternalServerError)
		}))
		defer receiver.Close()
		postCount := func() int { mu.Lock(); defer mu.Unlock(); return posts }
		resp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "alice", aliceKey,
			map[string]any{"numbers": []string{"15551230111"}, "webhook_url": receiver.URL})
		if resp.Status != http.StatusOK {
			t.Fatalf("status=%d: %s", resp.Status, resp.Raw)
		}
		waitFor(t, 10*time.Second, "the webhook to be retried", func() bool { return postCount() >= 3 })
		deleteUserCLI(t, s.DB, "alice")
		after := postCount()
		// demo's job, with a webhook of its own, shows the sender still runs.
		hooks := newHookReceiver(t)
		call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo",
			map[string]any{"numbers": []string{"15551230112"}, "webhook_url": hooks.URL})
		waitFor(t, 10*time.Second, "demo's webhook", func() bool { return hooks.count() == 1 })
		// Retries were 30-60ms apart: several would have happened by now.
		if n := postCount(); n > after+1 {
			t.Fatalf("alice's webhook was attempted %d more times after her deletion", n-after)
		}
		checkNoRetryLoop(t, s)
	})
}

// submitAndFinishAs is submitAndFinish for any user.
func submitAndFinishAs(t *testing.T, s *testServer, user, key string, numbers []string) (string, apiResponse) {
	t.Helper()
	resp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", user, key, map[string]any{"numbers": numbers})
	if resp.Status != http.StatusAccepted && resp.Status != http.StatusOK {
		t.Fatalf("status=%d: %s", resp.Status, resp.Raw)
	}
	id := resp.Body["job_uuid"].(string)
	return id, waitJobDone(t, s, user, key, id, 30*time.Second)
}

// inventoryCSV is an import file of n released numbers from first.
func inventoryCSV(first, n int) string {
	var b strings.Builder
	b.WriteString("number,state\n")
	for i := range n {
		b.WriteString(strconv.Itoa(first+i) + ",released\n")
	}
	return b.String()
}

func TestJobIDsAreNeverReused(t *testing.T) {
	forEachStore(t, testJobIDsAreNeverReused)
}

// testJobIDsAreNeverReused runs TestJobIDsAreNeverReused on one database.
func testJobIDsAreNeverReused(t *testing.T, db string) {
	store := openTestStore(t, db)
	ctx := context.Background()
	for _, name := range []string{"alice", "bob"} {
		if err := store.createUser(ctx, name, name+"-key", newWebhookSecret()); err != nil {
			t.Fatal(err)
		}
	}
	insert := func(name string) int64 {
		u, err := store.userByName(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		j := Job{UUID: name + "-" + strconv.FormatInt(time.Now().UnixNano(), 10), UserID: u.ID, CreatedAt: time.Now()}
		tx, err := store.w.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if err := store.insertQueuedJob(tx, &j, packNumbers(seqNumbers(15551230001, 3))); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	insert("bob")
	newest := insert("alice") // the largest id
	if _, err := store.deleteUser(ctx, "alice", nil, serverPurgePace); err != nil {
		t.Fatal(err)
	}
	if next := insert("bob"); next <= newest {
		t.Fatalf("a job after the deletion got id %d, want above %d", next, newest)
	}
	aliceAgain := "alice"
	if err := store.createUser(ctx, aliceAgain, "k2", newWebhookSecret()); err != nil {
		t.Fatal(err)
	}
	users, err := store.listUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if users[0].Name != "alice" || users[0].ID <= users[1].ID {
		t.Fatalf("users %+v: the new alice should have the largest id", users)
	}
}

// openTestDB opens a database file on one raw connection, for tests that
// must change it behind the store's back.
func openTestDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestAdminWritesGetInBesideAWriterThatNeverRests(t *testing.T) {
	path := newTestDB(t)
	server, err := openServerStore(path, defaultLease, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if _, err := server.w.Exec("CREATE TABLE busy (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	// A writer committing back to back, as the server's does while a big
	// inventory job drains.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tx, err := server.w.Begin()
			if err != nil {
				continue
			}
			for j := range 200 {
				tx.Exec("INSERT INTO busy VALUES (?)", i*200+j)
			}
			tx.Commit()
		}
	}()
	defer func() { close(stop); <-done }()
	admin, err := openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for i := range 5 {
		start := time.Now()
		if err := admin.createUser(context.Background(), "user"+strconv.Itoa(i), "k", newWebhookSecret()); err != nil {
			t.Fatalf("user add beside a busy writer: %v", err)
		}
		t.Logf("user add %d waited %s", i, time.Since(start))
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("user add waited %s for the lock, want well under SQLite's busy handler's seconds", d)
		}
	}
}
