package main

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"testing"
	"time"
)

// The store side of the admin operations: a user's deletion (its work
// stopped first, its rows in bounded steps), and a rotated key's overlap
// on an injected clock.

// adminFixture is a store with users alice and bob, each with the jobs
// given (their sizes; a job of size 0 is finished, with a webhook due) and
// inventory numbers, on a fresh database of db's kind; it returns the
// store and the users' job ids.
func adminFixture(t *testing.T, db string, jobs map[string][]int, inventory map[string]int) (*Store, map[string][]int64) {
	t.Helper()
	store := openTestStore(t, anotherDB(t, db))
	ctx := context.Background()
	ids := map[string][]int64{}
	for i, name := range []string{"alice", "bob"} {
		if err := store.createUser(ctx, name, name+"-key", newWebhookSecret()); err != nil {
			t.Fatal(err)
		}
		u, err := store.userByName(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for k, size := range jobs[name] {
			j := Job{UUID: name + "-" + strconv.Itoa(k), UserID: u.ID, WebhookURL: "https://hooks.example/" + name, CreatedAt: time.Now()}
			inTx(t, store, func(tx *sql.Tx) error {
				if size > 0 {
					return store.insertQueuedJob(tx, &j, packNumbers(seqNumbers(15551000000+i*1000000+k*10000, size)))
				}
				j.Status, j.Total, j.WebhookState = jobCompleted, 0, webhookPending
				return store.insertJobRow(tx, &j, time.Now())
			})
			ids[name] = append(ids[name], j.ID)
		}
		rows := make([]InventoryRow, inventory[name])
		for k := range rows {
			rows[k] = InventoryRow{Number: strconv.Itoa(15559000000 + i*1000000 + k), State: "released", ReleasedAt: time.Now()}
		}
		if err := store.importInventory(ctx, u.ID, rows, false); err != nil {
			t.Fatal(err)
		}
	}
	return store, ids
}

// userRows counts what a user has: job rows, numbers of its jobs, and
// inventory numbers.
func userRows(t *testing.T, store *Store, name string) (jobs, numbers, inventory int) {
	t.Helper()
	const user = "(SELECT id FROM users WHERE name = ?)"
	return countRows(t, store, "SELECT count(*) FROM jobs WHERE user_id = "+user, name),
		countRows(t, store, "SELECT count(*) FROM job_numbers WHERE job_id IN (SELECT id FROM jobs WHERE user_id = "+user+")", name),
		countRows(t, store, "SELECT count(*) FROM inventory WHERE user_id = "+user, name)
}

func TestDeleteUserStopsItsWorkInItsFirstWrite(t *testing.T) {
	forEachStore(t, testDeleteUserStopsItsWorkInItsFirstWrite)
}

// testDeleteUserStopsItsWorkInItsFirstWrite runs TestDeleteUserStopsItsWorkInItsFirstWrite on one database.
func testDeleteUserStopsItsWorkInItsFirstWrite(t *testing.T, db string) {
	store, ids := adminFixture(t, db, map[string][]int{"alice": {30, 0, 12}, "bob": {20, 0}}, nil)
	var calls [][]int64
	var stillThere int
	_, err := store.deleteUser(context.Background(), "alice", func(_ *sql.Tx, jobIDs []int64) error {
		if len(calls) == 0 { // inside the first write, before any row goes
			jobs, _, _ := userRows(t, store, "alice")
			stillThere = jobs
		}
		calls = append(calls, slices.Clone(jobIDs))
		return nil
	}, serverPurgePace)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{ids["alice"][0], ids["alice"][2]}; len(calls) == 0 || !slices.Equal(calls[0], want) {
		t.Fatalf("first stop got %v, want alice's unfinished jobs %v", calls, want)
	}
	if stillThere != 3 {
		t.Fatalf("when the jobs were stopped, alice had %d jobs stored, want all 3 (stopped before anything is deleted)", stillThere)
	}
	for _, later := range calls[1:] {
		if len(later) != 0 {
			t.Fatalf("later steps stopped %v: nothing new was queued", later)
		}
	}
	if _, err := store.userByName(context.Background(), "alice"); err != errNotFound {
		t.Fatalf("alice: %v, want her gone", err)
	}
	// bob's jobs are as they were: pending, with their webhooks.
	for _, id := range ids["bob"] {
		j, err := store.jobByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]jobStatus{true: jobPending, false: jobCompleted}[j.Total > 0]; j.Status != want {
			t.Errorf("bob's job %d: %s, want %s", id, j.Status, want)
		}
		if want := map[bool]webhookState{true: webhookWaiting, false: webhookPending}[j.Total > 0]; j.WebhookState != want {
			t.Errorf("bob's job %d: webhook %s, want %s", id, j.WebhookState, want)
		}
	}
}

func TestLockOutUserStopsItsKeyJobsAndWebhooks(t *testing.T) {
	forEachStore(t, testLockOutUserStopsItsKeyJobsAndWebhooks)
}

// testLockOutUserStopsItsKeyJobsAndWebhooks runs TestLockOutUserStopsItsKeyJobsAndWebhooks on one database.
func testLockOutUserStopsItsKeyJobsAndWebhooks(t *testing.T, db string) {
	store, ids := adminFixture(t, db, map[string][]int{"alice": {30, 0}}, nil)
	inTx(t, store, func(tx *sql.Tx) error {
		_, stopped, err := store.lockOutUser(tx, "alice", time.Now())
		if err == nil && !slices.Equal(stopped, ids["alice"][:1]) {
			t.Errorf("stopped %v, want %v", stopped, ids["alice"][:1])
		}
		return err
	})
	if _, err := store.authenticate(context.Background(), "alice", "alice-key"); err != errNotFound {
		t.Fatalf("alice's key after the lockout: %v, want refused", err)
	}
	for k, id := range ids["alice"] {
		j, err := store.jobByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.WebhookState != webhookNone || k == 0 && j.Status != jobCancelled {
			t.Errorf("job %d: %s with webhook %s, want no webhook and the unfinished job cancelled", id, j.Status, j.WebhookState)
		}
	}
	if n := countRows(t, store, "SELECT count(*) FROM jobs WHERE webhook_state = 'pending'"); n != 0 {
		t.Fatalf("%d webhooks still due", n)
	}
}

func TestPurgeUserGoesInBoundedSteps(t *testing.T) {
	forEachStore(t, testPurgeUserGoesInBoundedSteps)
}

// testPurgeUserGoesInBoundedSteps runs TestPurgeUserGoesInBoundedSteps on one database.
func testPurgeUserGoesInBoundedSteps(t *testing.T, db string) {
	// alice: a job bigger than a step, small jobs several to a step, and an
	// inventory bigger than a step. bob: some of each, untouched.
	const budget = 100
	store, _ := adminFixture(t, db, map[string][]int{"alice": {250, 30, 30, 30, 0, 5}, "bob": {40}},
		map[string]int{"alice": 230, "bob": 50})
	var id int64
	inTx(t, store, func(tx *sql.Tx) (err error) { id, _, err = store.lockOutUser(tx, "alice", time.Now()); return err })
	jobs, numbers, inventory := userRows(t, store, "alice")
	left := numbers + inventory
	steps := 0
	for done := false; !done; steps++ {
		if steps > 50 {
			t.Fatal("the purge does not end")
		}
		inTx(t, store, func(tx *sql.Tx) (err error) { done, err = store.purgeUserStep(tx, id, budget); return err })
		if done {
			break
		}
		j, n, inv := userRows(t, store, "alice")
		if gone := left - n - inv; gone > budget || gone < 0 {
			t.Fatalf("step %d deleted %d numbers, want at most %d", steps, gone, budget)
		}
		left = n + inv
		if j > jobs {
			t.Fatalf("jobs grew from %d to %d", jobs, j)
		}
	}
	// 345 numbers and 230 inventory rows at 100 a step, plus the steps that
	// drop a big job's row and the user: at least 6.
	if steps < 6 {
		t.Fatalf("%d steps, want the work spread over at least 6", steps)
	}
	for _, orphans := range []string{
		"SELECT count(*) FROM jobs WHERE user_id NOT IN (SELECT id FROM users)",
		"SELECT count(*) FROM inventory WHERE user_id NOT IN (SELECT id FROM users)",
		"SELECT count(*) FROM job_numbers WHERE job_id NOT IN (SELECT id FROM jobs)",
	} {
		if n := countRows(t, store, orphans); n != 0 {
			t.Errorf("%s: %d, want 0", orphans, n)
		}
	}
	if j, n, inv := userRows(t, store, "bob"); j != 1 || n != 40 || inv != 50 {
		t.Fatalf("bob has %d jobs, %d numbers, %d inventory rows; want 1, 40, 50", j, n, inv)
	}
}

func TestAuthenticateTakesTheOldKeyForItsOverlap(t *testing.T) {
	store := newTestStore(t)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	store.now = func() time.Time { return now }
	ctx := context.Background()
	if err := store.createUser(ctx, "alice", "old-key", newWebhookSecret()); err != nil {
		t.Fatal(err)
	}
	if err := store.rotateKey(ctx, "alice", "new-key", time.Hour); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		at    time.Duration
		key   string
		works bool
	}{
		{"the new key works at once", 0, "new-key", true},
		{"the old key works at once", 0, "old-key", true},
		{"the old key works just before the hour is out", time.Hour - time.Millisecond, "old-key", true},
		{"the old key stops when the hour is out", time.Hour, "old-key", false},
		{"the new key works after the hour", 2 * time.Hour, "new-key", true},
		{"another key never works", 0, "other-key", false},
		{"an empty key never works", 0, "", false},
	}
	start := now
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now = start.Add(c.at)
			u, err := store.authenticate(ctx, "alice", c.key)
			if works := err == nil && u.Name == "alice"; works != c.works {
				t.Fatalf("works=%v (%v), want %v", works, err, c.works)
			}
		})
	}
	t.Run("a rotation without overlap ends the old key at once", func(t *testing.T) {
		now = start
		if err := store.rotateKey(ctx, "alice", "newer-key", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := store.authenticate(ctx, "alice", "new-key"); err != errNotFound {
			t.Fatalf("the key rotated out without overlap: %v, want refused", err)
		}
	})
	t.Run("an unknown user is refused whatever the key", func(t *testing.T) {
		if _, err := store.authenticate(ctx, "nobody", "newer-key"); err != errNotFound {
			t.Fatalf("err=%v", err)
		}
	})
}
