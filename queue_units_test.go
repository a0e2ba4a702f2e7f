package main

import (
	"context"
	"database/sql"
	"log/slog"
	"slices"
	"testing"
	"time"
)

func TestInflightRegistry(t *testing.T) {
	c := func(job int64, pos int) claim { return claim{JobID: job, Position: pos} }
	t.Run("held claims are counted once and released once", func(t *testing.T) {
		f := newInflight()
		f.hold([]claim{c(1, 0), c(1, 1), c(2, 0), c(1, 0)})
		if got := f.size(); got != 3 {
			t.Fatalf("size=%d, want 3", got)
		}
		f.release([]claim{c(1, 0), c(1, 0), c(9, 9)})
		if got := f.size(); got != 2 {
			t.Fatalf("size=%d after release, want 2", got)
		}
		f.begin([]claim{c(1, 1)})
		if !f.isStarted(1, 1) || f.isStarted(1, 0) {
			t.Fatal("isStarted disagrees with what was released")
		}
	})
	t.Run("a claim is started only once a worker begins it", func(t *testing.T) {
		f := newInflight()
		f.hold([]claim{c(1, 0), c(1, 1)})
		if f.isStarted(1, 0) || f.isStarted(1, 1) {
			t.Fatal("a claim waiting for a worker reads as started")
		}
		f.begin([]claim{c(1, 1)})
		if f.isStarted(1, 0) || !f.isStarted(1, 1) {
			t.Fatal("isStarted disagrees with what a worker began")
		}
	})
	t.Run("a stopped job's claims are skipped with the reason, others begin", func(t *testing.T) {
		f := newInflight()
		f.hold([]claim{c(1, 0), c(2, 0), c(3, 0)})
		f.stop(1, stopCancelled)
		f.stop(2, stopGone)
		run, skipped, why := f.begin([]claim{c(1, 0), c(2, 0), c(3, 0)})
		if len(run) != 1 || run[0].JobID != 3 {
			t.Fatalf("run=%v, want job 3's claim", run)
		}
		if len(skipped) != 2 || why[0] != stopCancelled || why[1] != stopGone {
			t.Fatalf("skipped=%v why=%v", skipped, why)
		}
	})
	t.Run("stop returns the positions already started, which run on", func(t *testing.T) {
		f := newInflight()
		f.hold([]claim{c(1, 0), c(1, 1), c(1, 2)})
		f.begin([]claim{c(1, 0), c(1, 2)})
		started := f.stop(1, stopCancelled)
		slices.Sort(started)
		if !slices.Equal(started, []int{0, 2}) {
			t.Fatalf("started=%v, want [0 2]", started)
		}
	})
	t.Run("a cancellation does not undo a deletion", func(t *testing.T) {
		f := newInflight()
		f.stop(1, stopGone)
		f.stop(1, stopCancelled)
		if got := f.stoppedWhy(1); got != stopGone {
			t.Fatalf("stoppedWhy=%v, want gone", got)
		}
	})
	t.Run("forget keeps what active jobs or held claims still need", func(t *testing.T) {
		f := newInflight()
		f.hold([]claim{c(2, 0)})
		for _, j := range []int64{1, 2, 3} {
			f.stop(j, stopCancelled)
		}
		f.forget(func(job int64) bool { return job == 3 })
		for job, want := range map[int64]jobStop{1: stopNone, 2: stopCancelled, 3: stopCancelled} {
			if got := f.stoppedWhy(job); got != want {
				t.Fatalf("job %d: stoppedWhy=%v, want %v", job, got, want)
			}
		}
	})
	t.Run("needsCheck asks about a job once per interval", func(t *testing.T) {
		f := newInflight()
		now := time.Unix(1000, 0)
		claims := []claim{c(1, 0), c(1, 1), c(2, 0)}
		got, underWay := f.needsCheck(claims, now, time.Second)
		if !slices.Equal(got, []int64{1, 2}) || len(underWay) != 0 {
			t.Fatalf("first check=%v (%d under way), want [1 2] and none under way", got, len(underWay))
		}
		f.checkDone(got)
		if got, underWay := f.needsCheck(claims, now.Add(500*time.Millisecond), time.Second); len(got) != 0 || len(underWay) != 0 {
			t.Fatalf("check within the interval=%v (%d under way), want none", got, len(underWay))
		}
		got, _ = f.needsCheck(claims, now.Add(2*time.Second), time.Second)
		if len(got) != 2 {
			t.Fatalf("check after the interval=%v, want both jobs", got)
		}
		f.checkDone(got)
	})
	t.Run("a check under way is waited for, not trusted", func(t *testing.T) {
		f := newInflight()
		now := time.Unix(1000, 0)
		mine, _ := f.needsCheck([]claim{c(1, 0)}, now, time.Second) // a worker's query on its way
		got, underWay := f.needsCheck([]claim{c(1, 1), c(1, 2), c(2, 0)}, now.Add(time.Millisecond), time.Second)
		if !slices.Equal(mine, []int64{1}) || !slices.Equal(got, []int64{2}) || len(underWay) != 1 {
			t.Fatalf("checks %v then %v with %d under way; want [1], then [2] with job 1's under way", mine, got, len(underWay))
		}
		select {
		case <-underWay[0]:
			t.Fatal("the check under way was done before it was")
		default:
		}
		f.stop(1, stopGone) // what the first worker's query found
		f.checkDone(mine)
		select {
		case <-underWay[0]:
		default:
			t.Fatal("the check done was still under way")
		}
		if run, _, _ := f.begin([]claim{c(1, 1)}); len(run) != 0 {
			t.Fatalf("began %v of a job found gone", run)
		}
		if got, underWay := f.needsCheck([]claim{c(1, 3)}, now.Add(2*time.Millisecond), time.Second); len(got) != 0 || len(underWay) != 0 {
			t.Fatalf("a stopped job: check %v with %d under way, want neither", got, len(underWay))
		}
	})
}

func TestPlanResults(t *testing.T) {
	now := time.Unix(2000, 0)
	policy := retryPolicy{maxAttempts: 3, base: time.Second, max: time.Minute}
	at := time.Unix(1990, 0)
	res := func(job int64, pos, attempts int, o Outcome) workResult {
		return workResult{claim: claim{JobID: job, UserID: 7, Position: pos, Attempts: attempts},
			attemptRecord: attemptRecord{Started: at, Finished: at, Outcome: o}}
	}
	ok := Outcome{Success: true, StatusCode: 200, Message: msgRestored}
	busy := Outcome{StatusCode: 503, Message: "busy", Transient: true}
	plan := planResults([]workResult{
		res(1, 0, 0, ok),
		res(1, 1, 0, ok),
		res(1, 2, 0, busy), // first try of three: retried
		res(1, 3, 2, busy), // third try: final failure
		{claim: claim{JobID: 2, Position: 5}, cancelled: true},
		res(2, 6, 0, ok),
	}, policy, now)

	t.Run("jobs keep the order they first appear in", func(t *testing.T) {
		if !slices.Equal(plan.jobs, []int64{1, 2}) {
			t.Fatalf("jobs=%v", plan.jobs)
		}
	})
	t.Run("results that write the same values share a group", func(t *testing.T) {
		if len(plan.groups.order) != 3 {
			t.Fatalf("groups=%v, want job 1's successes, job 1's failure, job 2's success", plan.groups.order)
		}
		if got := plan.groups.m[plan.groups.order[0]]; !slices.Equal(got, []int{0, 1}) {
			t.Fatalf("first group=%v, want positions 0 and 1", got)
		}
		if g := plan.groups.order[1]; g.status != numberFailed || g.attempt != 3 {
			t.Fatalf("second group=%+v, want the third attempt, failed", g)
		}
	})
	t.Run("a transient failure with tries left waits, with its attempt counted", func(t *testing.T) {
		if len(plan.retries) != 1 || plan.retries[0].Position != 2 || plan.retries[0].Attempts != 1 {
			t.Fatalf("retries=%+v", plan.retries)
		}
		if !plan.retries[0].DueAt.After(now) {
			t.Fatalf("retry due at %v, want after %v", plan.retries[0].DueAt, now)
		}
	})
	t.Run("a cancelled claim is neither an attempt nor a result", func(t *testing.T) {
		if !slices.Equal(plan.cancelled[2], []int{5}) {
			t.Fatalf("cancelled=%v", plan.cancelled)
		}
		if _, ok := plan.firstStart[2]; !ok {
			t.Fatal("job 2's success should give it a first start")
		}
	})
}

// queueFixture is a store with one user and queued jobs of the given
// sizes, numbered apart, on a fresh database of the same kind as db (a
// SQLite file or a PostgreSQL database); it returns the store, the user
// and the job ids.
func queueFixture(t *testing.T, db string, sizes ...int) (*Store, int64, []int64) {
	t.Helper()
	store := openTestStore(t, anotherDB(t, db))
	if err := store.createUser(context.Background(), "alice", "k", newWebhookSecret()); err != nil {
		t.Fatal(err)
	}
	u, err := store.userByName(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i, n := range sizes {
		j := Job{UUID: "job-" + itoa(i), UserID: u.ID, CreatedAt: time.Unix(100, 0)}
		inTx(t, store, func(tx *sql.Tx) error {
			return store.insertQueuedJob(tx, &j, packNumbers(seqNumbers(15550000000+i*100000, n)))
		})
		ids = append(ids, j.ID)
	}
	return store, u.ID, ids
}

// countByJob counts claims per job.
func countByJob(claims []claim) map[int64]int {
	out := map[int64]int{}
	for _, c := range claims {
		out[c.JobID]++
	}
	return out
}

func TestDispatcherReadsFairly(t *testing.T) {
	forEachStore(t, testDispatcherReadsFairly)
}

// testDispatcherReadsFairly runs TestDispatcherReadsFairly on one database.
func testDispatcherReadsFairly(t *testing.T, db string) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	newDispatch := func(store *Store) *dispatcher {
		return newDispatcher(store, nil, newInflight(), make(chan claim, 1), 1024, slog.New(slog.DiscardHandler))
	}
	t.Run("every active job gets a share, the small one all of its numbers", func(t *testing.T) {
		store, _, ids := queueFixture(t, db, 100, 5, 100)
		d := newDispatch(store)
		jobs, err := d.reconcile(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.readPending(ctx, jobs, 30, now)
		if err != nil {
			t.Fatal(err)
		}
		per := countByJob(got)
		if per[ids[0]] != 10 || per[ids[1]] != 5 || per[ids[2]] != 10 {
			t.Fatalf("claims per job %v, want 10, 5 and 10", per)
		}
	})
	t.Run("the next read goes on where each job's last stopped, starting after the job served last", func(t *testing.T) {
		store, _, ids := queueFixture(t, db, 20, 20)
		d := newDispatch(store)
		jobs, _ := d.reconcile(ctx)
		first, _ := d.readPending(ctx, jobs, 8, now) // share of 8: job 1 only
		if per := countByJob(first); per[ids[0]] != 8 || len(per) != 1 {
			t.Fatalf("first read %v, want 8 of the first job", per)
		}
		second, _ := d.readPending(ctx, jobs, 8, now)
		if per := countByJob(second); per[ids[1]] != 8 || len(per) != 1 {
			t.Fatalf("second read %v, want 8 of the second job (the first was served last)", per)
		}
		third, _ := d.readPending(ctx, jobs, 8, now)
		if len(third) != 8 || third[0].JobID != ids[0] || third[0].Position != 8 {
			t.Fatalf("third read starts at %+v, want job 1 at position 8", third[0])
		}
	})
	t.Run("numbers whose retry is not due wait in the retry queue", func(t *testing.T) {
		store, _, ids := queueFixture(t, db, 10)
		later := now.Add(time.Hour)
		if _, err := store.w.Exec(store.q("UPDATE job_numbers SET next_attempt_at = ?, attempts = 1 WHERE job_id = ? AND position < 3"),
			ms(later), ids[0]); err != nil {
			t.Fatal(err)
		}
		d := newDispatch(store)
		jobs, _ := d.reconcile(ctx)
		got, _ := d.readPending(ctx, jobs, 100, now)
		if len(got) != 7 {
			t.Fatalf("%d claims handed out, want the 7 that are due", len(got))
		}
		if next := d.nextRetry(); !next.Equal(later) {
			t.Fatalf("next retry at %v, want %v", next, later)
		}
	})
	t.Run("a stopped job is not read", func(t *testing.T) {
		store, _, ids := queueFixture(t, db, 10, 10)
		d := newDispatch(store)
		d.registry.stop(ids[0], stopCancelled)
		jobs, _ := d.reconcile(ctx)
		got, _ := d.readPending(ctx, jobs, 100, now)
		if per := countByJob(got); per[ids[0]] != 0 || per[ids[1]] != 10 {
			t.Fatalf("claims per job %v, want none of the stopped one", per)
		}
	})
	t.Run("a job that left the active set is forgotten with its retries", func(t *testing.T) {
		store, _, ids := queueFixture(t, db, 10, 10)
		d := newDispatch(store)
		jobs, _ := d.reconcile(ctx)
		d.readPending(ctx, jobs, 100, now)
		d.retryLater([]claim{{JobID: ids[0], Position: 1, DueAt: now.Add(time.Hour)}})
		if _, err := store.w.Exec(store.q("DELETE FROM jobs WHERE id = ?"), ids[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := d.reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if _, kept := d.cursors[ids[0]]; kept || !d.nextRetry().IsZero() {
			t.Fatalf("cursor kept=%v, next retry %v: the deleted job is remembered", kept, d.nextRetry())
		}
	})
}
