package main

import (
	"context"
	"database/sql"
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
		if !f.isHeld(1, 1) || f.isHeld(1, 0) {
			t.Fatal("isHeld disagrees with what was released")
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
		if got := f.needsCheck(claims, now, time.Second); !slices.Equal(got, []int64{1, 2}) {
			t.Fatalf("first check=%v, want [1 2]", got)
		}
		if got := f.needsCheck(claims, now.Add(500*time.Millisecond), time.Second); len(got) != 0 {
			t.Fatalf("check within the interval=%v, want none", got)
		}
		if got := f.needsCheck(claims, now.Add(2*time.Second), time.Second); len(got) != 2 {
			t.Fatalf("check after the interval=%v, want both jobs", got)
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

// settleFixture is a store with one user and one queued job of n numbers.
func settleFixture(t *testing.T, n int, webhook string) (*Store, int64) {
	t.Helper()
	store := newTestStore(t)
	if err := store.createUser(context.Background(), "alice", "k", newWebhookSecret()); err != nil {
		t.Fatal(err)
	}
	u, err := store.userByName(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	j := Job{UUID: "job-1", UserID: u.ID, WebhookURL: webhook, CreatedAt: time.Unix(100, 0)}
	inTx(t, store, func(tx *sql.Tx) error { return store.insertQueuedJob(tx, &j, seqNumbers(15551230001, n)) })
	return store, j.ID
}

// inTx runs fn in a write transaction of store and commits it.
func inTx(t *testing.T, store *Store, fn func(tx *sql.Tx) error) {
	t.Helper()
	tx, err := store.w.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestSettleJobIsTheOneRuleThatMovesAJobOn(t *testing.T) {
	now := time.Unix(500, 0)
	cases := []struct {
		name        string
		webhook     string
		steps       []jobSettlement
		wantFinal   bool
		wantStatus  jobStatus
		wantWebhook webhookState
	}{
		{name: "the first results make a pending job processing",
			steps:     []jobSettlement{{success: 1, firstStart: now, now: now}},
			wantFinal: false, wantStatus: jobProcessing, wantWebhook: webhookNone},
		{name: "the last result completes it and makes its webhook due",
			webhook:   "https://example.com/h",
			steps:     []jobSettlement{{success: 2, now: now}, {failure: 1, now: now, webhookDue: now}},
			wantFinal: true, wantStatus: jobCompleted, wantWebhook: webhookPending},
		{name: "a cancellation with numbers in flight waits for them before the webhook",
			webhook:   "https://example.com/h",
			steps:     []jobSettlement{{cancelled: 2, cancel: true, now: now}},
			wantFinal: false, wantStatus: jobCancelled, wantWebhook: webhookWaiting},
		{name: "the in-flight result after a cancellation makes the webhook due, the job stays cancelled",
			webhook:   "https://example.com/h",
			steps:     []jobSettlement{{cancelled: 2, cancel: true, now: now}, {success: 1, now: now, webhookDue: now}},
			wantFinal: true, wantStatus: jobCancelled, wantWebhook: webhookPending},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store, id := settleFixture(t, 3, c.webhook)
			var got settledJob
			for _, s := range c.steps {
				inTx(t, store, func(tx *sql.Tx) (err error) {
					got, err = settleJob(tx, id, s)
					return err
				})
			}
			j, err := store.jobByID(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if got.final != c.wantFinal || got.status != c.wantStatus || j.Status != c.wantStatus || j.WebhookState != c.wantWebhook {
				t.Fatalf("settled %+v, job %s webhook %s; want final=%v %s webhook %s",
					got, j.Status, j.WebhookState, c.wantFinal, c.wantStatus, c.wantWebhook)
			}
		})
	}
}
