package main

import (
	"context"
	"database/sql"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestARestoreThatLostItsActivationAnswersByTheRowAsItIs(t *testing.T) {
	forEachStore(t, testARestoreThatLostItsActivationAnswersByTheRowAsItIs)
}

// testARestoreThatLostItsActivationAnswersByTheRowAsItIs runs
// TestARestoreThatLostItsActivationAnswersByTheRowAsItIs on one database: a
// synchronous job whose numbers were decided "Number restored" from rows
// that changed before it was stored (another job restored one, an operator
// made one unavailable and removed another) is stored, and answered, by
// the rows as they are when it is written, its counts with them.
func testARestoreThatLostItsActivationAnswersByTheRowAsItIs(t *testing.T, db string) {
	ctx := context.Background()
	store, w, user, _ := completedJobFixture(t, db)
	now := time.Now().Truncate(time.Millisecond)
	numbers := seqNumbers(15557770001, 4)
	var rows []InventoryRow
	for _, n := range numbers {
		rows = append(rows, InventoryRow{Number: n, State: "released", ReleasedAt: now.Add(-time.Hour), NeedsRegistration: true})
	}
	if err := store.importInventory(ctx, user.ID, rows, false); err != nil {
		t.Fatal(err)
	}
	restored := Outcome{Success: true, StatusCode: 200, Message: msgRestored, Activate: true, NeedsRegistration: true}
	busy := Outcome{StatusCode: 503, Message: "Error: 'busy'", Transient: true}
	tried := func(n string, outcomes ...Outcome) completedNumber {
		c := completedNumber{Number: n}
		for _, o := range outcomes {
			c.Attempts = append(c.Attempts, attemptRecord{Started: now, Finished: now, Outcome: o})
		}
		return c
	}

	// Both jobs decided their numbers from rows read released; the first
	// is stored first.
	first := Job{UUID: "job-first", UserID: user.ID, CreatedAt: now}
	if err := store.storeCompletedJob(ctx, w, &first, []completedNumber{tried(numbers[0], restored)}, now, ""); err != nil {
		t.Fatal(err)
	}
	for _, change := range []string{
		"UPDATE inventory SET state = 'unavailable' WHERE number = '" + numbers[2] + "'",
		"DELETE FROM inventory WHERE number = '" + numbers[3] + "'",
	} {
		if _, err := store.w.ExecContext(ctx, change); err != nil {
			t.Fatal(err)
		}
	}
	second := Job{UUID: "job-second", UserID: user.ID, CreatedAt: now}
	late := []completedNumber{
		tried(numbers[0], restored),       // restored by the first job meanwhile
		tried(numbers[1], restored),       // still released: this job restores it
		tried(numbers[2], restored),       // made unavailable meanwhile
		tried(numbers[3], busy, restored), // removed meanwhile, after a retry
	}
	if err := store.storeCompletedJob(ctx, w, &second, late, now, ""); err != nil {
		t.Fatal(err)
	}

	want := []struct {
		message string
		code    int
	}{{msgAlreadyActive, 200}, {msgRestored, 200}, {msgNoLongerAvail, 409}, {msgNotFound, 404}}
	var stored []NumberResult
	if err := store.eachResult(ctx, second.ID, "", 0, -1, func(r NumberResult) error {
		stored = append(stored, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(want) {
		t.Fatalf("%d results stored, want %d", len(stored), len(want))
	}
	for i, w := range want {
		told := late[i].outcome()
		if r := stored[i]; r.Message != w.message || r.StatusCode != w.code || (r.Status == numberSuccess) != (w.code == 200) {
			t.Errorf("number %d stored as %s %d %q, want %d %q", i, r.Status, r.StatusCode, r.Message, w.code, w.message)
		}
		if told.Message != w.message || told.StatusCode != w.code || told.Activate != (w.message == msgRestored) {
			t.Errorf("number %d: the caller was told %+v, want %d %q", i, told, w.code, w.message)
		}
	}
	if !stored[0].NeedsRegistration || !late[0].outcome().NeedsRegistration {
		t.Error("the number found active lost its row's needs_registration")
	}
	got, err := store.jobByID(ctx, second.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SuccessCount != 2 || got.FailureCount != 2 || second.SuccessCount != 2 || second.FailureCount != 2 {
		t.Fatalf("job stored with %d/%d successes/failures, caller told %d/%d; want 2/2",
			got.SuccessCount, got.FailureCount, second.SuccessCount, second.FailureCount)
	}
	attempts, err := store.numberAttempts(ctx, second.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 2 || attempts[0].StatusCode != 503 || attempts[1].StatusCode != 404 || attempts[1].Message != msgNotFound {
		t.Fatalf("attempts of the removed number = %+v; want 503, then 404 not found", attempts)
	}
	wantInventory(t, store, map[string]string{numbers[0]: "active", numbers[1]: "active", numbers[2]: "unavailable", numbers[3]: ""})
}

// wantInventory checks the states of inventory rows ("" for no row).
func wantInventory(t *testing.T, store *Store, want map[string]string) {
	t.Helper()
	for n, state := range want {
		var got string
		err := store.r.QueryRow(store.q("SELECT state FROM inventory WHERE number = ?"), n).Scan(&got)
		if err == sql.ErrNoRows {
			err = nil
		}
		if err != nil || got != state {
			t.Errorf("inventory row of %s is %q (%v), want %q", n, got, err, state)
		}
	}
}

func TestTheRecorderActivatesEachNumberOnce(t *testing.T) {
	forEachStore(t, testTheRecorderActivatesEachNumberOnce)
}

// testTheRecorderActivatesEachNumberOnce runs
// TestTheRecorderActivatesEachNumberOnce on one database: two queued jobs
// of a user hold the same released number and both restore it in one
// batch; of the rest, one row was made unavailable and one removed after
// it was read, and one activated by another restore between two batches.
// Each number is "Number restored" once at most, the others answer by
// their rows, and the counts, attempt rows and metrics follow.
func testTheRecorderActivatesEachNumberOnce(t *testing.T, db string) {
	ctx := context.Background()
	store, userID, _ := queueFixture(t, db)
	numbers := seqNumbers(15557780001, 5)
	var rows []InventoryRow
	for _, n := range numbers {
		rows = append(rows, InventoryRow{Number: n, State: "released", ReleasedAt: time.Unix(1000, 0)})
	}
	if err := store.importInventory(ctx, userID, rows, false); err != nil {
		t.Fatal(err)
	}
	var jobA, jobB Job
	for _, j := range []struct {
		job     *Job
		numbers []string
	}{{&jobA, numbers[:4]}, {&jobB, []string{numbers[0], numbers[4]}}} {
		*j.job = Job{UUID: "job-" + j.numbers[len(j.numbers)-1], UserID: userID, CreatedAt: time.Unix(100, 0)}
		inTx(t, store, func(tx *sql.Tx) error { return store.insertQueuedJob(tx, j.job, packNumbers(j.numbers)) })
	}
	takeAll(t, store, userID, jobA.ID, jobB.ID) // results are recorded for numbers claimed
	for _, change := range []string{
		"UPDATE inventory SET state = 'unavailable' WHERE number = '" + numbers[2] + "'",
		"DELETE FROM inventory WHERE number = '" + numbers[3] + "'",
	} {
		if _, err := store.w.ExecContext(ctx, change); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Unix(3000, 0)
	restored := func(job int64, pos int, number string, earlier int) workResult {
		return workResult{claim: claim{JobID: job, UserID: userID, Position: pos, Number: number, Attempts: earlier},
			attemptRecord: attemptRecord{Started: at, Finished: at,
				Outcome: Outcome{Success: true, StatusCode: 200, Message: msgRestored, Activate: true}}}
	}
	record := func(results ...workResult) recordOutcome {
		var out recordOutcome
		inTx(t, store, func(tx *sql.Tx) (err error) {
			out, err = store.recordResults(tx, results, retryPolicy{maxAttempts: 3, base: time.Second, max: time.Minute}, at)
			return err
		})
		return out
	}

	out := record(
		restored(jobA.ID, 0, numbers[0], 0),
		restored(jobA.ID, 1, numbers[1], 0),
		restored(jobA.ID, 2, numbers[2], 0),
		restored(jobA.ID, 3, numbers[3], 1), // its second attempt
		restored(jobB.ID, 0, numbers[0], 0), // the same number as job A's first, in the same batch
	)
	wantFinals := map[Outcome]int{{Success: true, StatusCode: 200}: 3, {StatusCode: 409}: 1, {StatusCode: 404}: 1}
	if !maps.Equal(out.finals, wantFinals) {
		t.Errorf("finals %v, want %v", out.finals, wantFinals)
	}
	if len(out.completedJobs) != 1 || out.completedJobs[0] != jobA.ID {
		t.Errorf("completed jobs %v, want job A (%d)", out.completedJobs, jobA.ID)
	}
	// Another restore activates the last number before job B's result.
	if _, err := store.w.ExecContext(ctx, store.q("UPDATE inventory SET state = 'active' WHERE number = ?"), numbers[4]); err != nil {
		t.Fatal(err)
	}
	record(restored(jobB.ID, 1, numbers[4], 0))

	wantJob := func(j Job, success, failure int, want []string) {
		t.Helper()
		got, err := store.jobByID(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != jobCompleted || got.SuccessCount != success || got.FailureCount != failure {
			t.Errorf("job %s %s with %d/%d successes/failures, want completed with %d/%d",
				j.UUID, got.Status, got.SuccessCount, got.FailureCount, success, failure)
		}
		var messages []string
		if err := store.eachResult(ctx, j.ID, "", 0, -1, func(r NumberResult) error {
			messages = append(messages, r.Message)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if strings.Join(messages, "|") != strings.Join(want, "|") {
			t.Errorf("job %s answers %q, want %q", j.UUID, messages, want)
		}
	}
	wantJob(jobA, 2, 2, []string{msgRestored, msgRestored, msgNoLongerAvail, msgNotFound})
	wantJob(jobB, 2, 0, []string{msgAlreadyActive, msgAlreadyActive})
	var code int
	var message string
	if err := store.r.QueryRow(store.q("SELECT status_code, message FROM attempts WHERE job_id = ? AND position = 3 AND attempt = 2"),
		jobA.ID).Scan(&code, &message); err != nil || code != 404 || message != msgNotFound {
		t.Errorf("the removed number's second attempt is recorded as %d %q (%v), want 404 not found", code, message, err)
	}
	wantInventory(t, store, map[string]string{numbers[0]: "active", numbers[1]: "active", numbers[2]: "unavailable",
		numbers[3]: "", numbers[4]: "active"})
}

func TestConcurrentRestoresOfOneNumberRestoreItOnce(t *testing.T) {
	forEachStore(t, testConcurrentRestoresOfOneNumberRestoreItOnce)
}

// testConcurrentRestoresOfOneNumberRestoreItOnce runs
// TestConcurrentRestoresOfOneNumberRestoreItOnce on one database: twenty
// synchronous requests for one released number at once, then twenty
// queued jobs of the same eleven released numbers at once. Exactly one
// answer says "Number restored" for each number; every other says
// "Number already active".
func testConcurrentRestoresOfOneNumberRestoreItOnce(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-workers", "4")
	key, _ := addUser(t, db, "bob")
	syncNumber, queued := "15557790000", seqNumbers(15557790001, 11)
	csv := "number,state\n" + syncNumber + ",released\n"
	for _, n := range queued {
		csv += n + ",released\n"
	}
	importCSV(t, db, "bob", csv)
	atOnce := func(body map[string]any) []apiResponse {
		answers := make([]apiResponse, 20)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Go(func() { answers[i] = call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "bob", key, body) })
		}
		wg.Wait()
		return answers
	}
	count := func(messages map[string]int, rs []map[string]any) {
		for _, r := range rs {
			if r["status_code"] != float64(200) {
				t.Errorf("result %v, want a success", r)
			}
			messages[r["message"].(string)]++
		}
	}

	messages := map[string]int{}
	for _, a := range atOnce(map[string]any{"numbers": []string{syncNumber}}) {
		wantStatus(t, a, http.StatusOK)
		count(messages, results(t, a.Body))
	}
	if messages[msgRestored] != 1 || messages[msgAlreadyActive] != 19 {
		t.Errorf("twenty synchronous restores of one number answered %v, want one restored and 19 already active", messages)
	}

	messages = map[string]int{}
	for _, a := range atOnce(map[string]any{"numbers": queued}) {
		wantStatus(t, a, http.StatusAccepted)
		done := waitJobDone(t, s, "bob", key, a.Body["job_uuid"].(string), 30*time.Second)
		count(messages, results(t, done.Body))
	}
	if messages[msgRestored] != len(queued) || messages[msgAlreadyActive] != 19*len(queued) {
		t.Errorf("twenty jobs of the same %d numbers answered %v, want each number restored once, already active 19 times",
			len(queued), messages)
	}
}
