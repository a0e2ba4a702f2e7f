package main

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"
	"time"
)

// settleFixture is a store with one user and one queued job of n numbers,
// on a fresh database of db's kind.
func settleFixture(t *testing.T, db string, n int, webhook string) (*Store, int64) {
	t.Helper()
	store := openTestStore(t, anotherDB(t, db))
	if err := store.createUser(context.Background(), "alice", "k", newWebhookSecret()); err != nil {
		t.Fatal(err)
	}
	u, err := store.userByName(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	j := Job{UUID: "job-1", UserID: u.ID, WebhookURL: webhook, CreatedAt: time.Unix(100, 0)}
	inTx(t, store, func(tx *sql.Tx) error { return store.insertQueuedJob(tx, &j, packNumbers(seqNumbers(15551230001, n))) })
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
	forEachStore(t, testSettleJobIsTheOneRuleThatMovesAJobOn)
}

// testSettleJobIsTheOneRuleThatMovesAJobOn runs TestSettleJobIsTheOneRuleThatMovesAJobOn on one database.
func testSettleJobIsTheOneRuleThatMovesAJobOn(t *testing.T, db string) {
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
			store, id := settleFixture(t, db, 3, c.webhook)
			var got settledJob
			for _, s := range c.steps {
				inTx(t, store, func(tx *sql.Tx) (err error) {
					got, err = store.settleJob(tx, id, s)
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

func TestCancelJobNumbers(t *testing.T) {
	forEachStore(t, testCancelJobNumbers)
}

// testCancelJobNumbers runs TestCancelJobNumbers on one database.
func testCancelJobNumbers(t *testing.T, db string) {
	now := time.Unix(2000, 0)
	t.Run("numbers not started are cancelled, the started ones left to finish", func(t *testing.T) {
		store, _, ids := queueFixture(t, db, 5)
		var n int
		inTx(t, store, func(tx *sql.Tx) (err error) {
			n, err = store.cancelJobNumbers(tx, ids[0], []int{1}, now)
			return err
		})
		if n != 4 {
			t.Fatalf("cancelled %d, want 4", n)
		}
		j, _ := store.jobByID(context.Background(), ids[0])
		if j.Status != jobCancelled || j.CancelledCount != 4 {
			t.Fatalf("job %s with %d cancelled, want cancelled with 4", j.Status, j.CancelledCount)
		}
		if got := countRows(t, store, "SELECT count(*) FROM job_numbers WHERE job_id = ? AND status = 'pending'", ids[0]); got != 1 {
			t.Fatalf("%d numbers left pending, want the started one", got)
		}
	})
	t.Run("a finished job says how it finished", func(t *testing.T) {
		store, _, ids := queueFixture(t, db, 2)
		inTx(t, store, func(tx *sql.Tx) error { _, err := store.cancelJobNumbers(tx, ids[0], nil, now); return err })
		tx, err := store.w.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		_, err = store.cancelJobNumbers(tx, ids[0], nil, now)
		var finished *errJobFinished
		if !errors.As(err, &finished) || finished.status != jobCancelled {
			t.Fatalf("second cancel: %v, want the job already cancelled", err)
		}
		if _, err := store.cancelJobNumbers(tx, 9999, nil, now); !errors.Is(err, errNotFound) {
			t.Fatalf("cancel of no job: %v, want errNotFound", err)
		}
	})
}

// takeAll claims every number of the jobs, as the dispatcher does before a
// worker restores them.
func takeAll(t *testing.T, store *Store, userID int64, jobs ...int64) []claim {
	t.Helper()
	var all []claim
	for _, id := range jobs {
		got, err := store.eng.takeNumbers(context.Background(), activeJob{id: id, userID: userID}, -1, 1000)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, got...)
	}
	return all
}

func TestRecordResultsDropsDeletedJobsAndRecordsTheRest(t *testing.T) {
	forEachStore(t, testRecordResultsDropsDeletedJobsAndRecordsTheRest)
}

// testRecordResultsDropsDeletedJobsAndRecordsTheRest runs TestRecordResultsDropsDeletedJobsAndRecordsTheRest on one database.
func testRecordResultsDropsDeletedJobsAndRecordsTheRest(t *testing.T, db string) {
	store, userID, ids := queueFixture(t, db, 3, 3)
	if err := store.importInventory(context.Background(), userID,
		[]InventoryRow{{Number: "15550000000", State: "released", ReleasedAt: time.Unix(1000, 0)}}, false); err != nil {
		t.Fatal(err)
	}
	at := time.Unix(3000, 0)
	res := func(job int64, pos int, number string, o Outcome) workResult {
		return workResult{claim: claim{JobID: job, UserID: userID, Position: pos, Number: number},
			attemptRecord: attemptRecord{Started: at, Finished: at, Outcome: o}}
	}
	restored := Outcome{Success: true, StatusCode: 200, Message: msgRestored, Activate: true}
	busy := Outcome{StatusCode: 503, Message: "busy", Transient: true}
	takeAll(t, store, userID, ids...) // results are recorded for numbers claimed
	if _, err := store.w.Exec(store.q("DELETE FROM jobs WHERE id = ?"), ids[1]); err != nil {
		t.Fatal(err)
	}
	var out recordOutcome
	inTx(t, store, func(tx *sql.Tx) (err error) {
		out, err = store.recordResults(tx, []workResult{
			res(ids[0], 0, "15550000000", restored),
			res(ids[0], 1, "15550000001", busy),
			res(ids[1], 0, "15550100000", restored),
		}, retryPolicy{maxAttempts: 3, base: time.Second, max: time.Minute}, at)
		return err
	})
	if !slices.Equal(out.goneJobs, []int64{ids[1]}) {
		t.Fatalf("gone jobs %v, want the deleted one", out.goneJobs)
	}
	if len(out.retries) != 1 || out.retries[0].Position != 1 {
		t.Fatalf("retries %+v, want position 1", out.retries)
	}
	j, _ := store.jobByID(context.Background(), ids[0])
	if j.SuccessCount != 1 || j.Status != jobProcessing {
		t.Fatalf("job %s with %d successes, want processing with 1", j.Status, j.SuccessCount)
	}
	if got := countRows(t, store, "SELECT count(*) FROM inventory WHERE number = '15550000000' AND state = 'active'"); got != 1 {
		t.Fatal("the restored number was not activated in the same write")
	}
	if got := countRows(t, store, "SELECT count(*) FROM number_attempts WHERE job_id = ?", ids[0]); got != 2 {
		t.Fatalf("%d attempts recorded, want 2 (the success and the retried failure)", got)
	}
	if got := countRows(t, store, "SELECT count(*) FROM attempts WHERE job_id = ?", ids[0]); got != 1 {
		t.Fatalf("%d attempt rows, want 1: a first try that succeeded is its number's row alone", got)
	}
}
