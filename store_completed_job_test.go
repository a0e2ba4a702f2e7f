package main

import (
	"context"
	"database/sql"
	"log/slog"
	"testing"
	"time"
)

func TestStoreCompletedJobWritesTheWholeJobFinal(t *testing.T) {
	forEachStore(t, testStoreCompletedJobWritesTheWholeJobFinal)
}

// testStoreCompletedJobWritesTheWholeJobFinal runs
// TestStoreCompletedJobWritesTheWholeJobFinal on one database: a
// synchronous job, stored in one write (one statement on PostgreSQL),
// lands completed with its counts and times, every number and attempt,
// the inventory it restored, its retry link and its Idempotency-Key.
func testStoreCompletedJobWritesTheWholeJobFinal(t *testing.T, db string) {
	ctx := context.Background()
	store, w, user, earlier := completedJobFixture(t, db)
	now := time.Now().Truncate(time.Millisecond)
	if err := store.importInventory(ctx, user.ID, []InventoryRow{
		{Number: "+15550000001", State: "released", ReleasedAt: now.Add(-time.Hour)},
		{Number: "+15550000002", State: "active", ReleasedAt: now.Add(-time.Hour), NeedsRegistration: true},
	}, false); err != nil {
		t.Fatal(err)
	}
	idem := &idempotencyRequest{key: "key-1", hash: []byte("hash")}
	inTx(t, store, func(tx *sql.Tx) error { return store.reserveIdempotencyKey(tx, user.ID, idem, 0, now, time.Minute) })
	retried, err := store.jobByID(ctx, earlier)
	if err != nil {
		t.Fatal(err)
	}

	at := func(ms int) time.Time { return now.Add(time.Duration(ms) * time.Millisecond) }
	busy := Outcome{StatusCode: 503, Message: "Error: 'busy'", Transient: true}
	numbers := []completedNumber{
		{Number: "+15550000001", Attempts: []attemptRecord{{Started: at(1), Finished: at(2),
			Outcome: Outcome{Success: true, StatusCode: 200, Message: msgRestored, Activate: true}}}},
		{Number: "+15550000002", Attempts: []attemptRecord{{Started: at(3), Finished: at(4),
			Outcome: Outcome{Success: true, StatusCode: 200, Message: msgAlreadyActive, NeedsRegistration: true}}}},
		{Number: "+15550000003", Attempts: []attemptRecord{
			{Started: at(0), Finished: at(5), Outcome: busy},
			{Started: at(6), Finished: at(7), Outcome: busy},
			{Started: at(8), Finished: at(9), Outcome: Outcome{StatusCode: 404, Message: msgNotFound}}}},
	}
	job := Job{UUID: "job-sync", UserID: user.ID, WebhookURL: "https://example.com/hook", RetryOf: retried.UUID, CreatedAt: now}
	due := at(60000)
	if err := store.storeCompletedJob(ctx, w, &job, numbers, due, idem.key); err != nil {
		t.Fatal(err)
	}

	got, err := store.jobByID(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.UUID != "job-sync" || got.Status != jobCompleted || got.Total != 3 || got.SuccessCount != 2 || got.FailureCount != 1 ||
		!got.StartedAt.Equal(at(0)) || !got.CompletedAt.Equal(at(9)) || got.WebhookState != webhookPending || got.RetryOf != retried.UUID {
		t.Fatalf("job = %+v; want completed, 2 of 3 succeeded, from %v to %v, webhook pending, a retry of %s",
			got, at(0), at(9), retried.UUID)
	}
	if job.ID != got.ID || job.Status != got.Status || job.SuccessCount != got.SuccessCount || job.FailureCount != got.FailureCount ||
		!job.StartedAt.Equal(got.StartedAt) || !job.CompletedAt.Equal(got.CompletedAt) || job.WebhookState != got.WebhookState {
		t.Fatalf("the caller was told %+v, the store holds %+v", job, got)
	}
	var dueMs int64
	if err := store.r.QueryRowContext(ctx, store.q("SELECT webhook_next_at FROM jobs WHERE id = ?"), job.ID).Scan(&dueMs); err != nil {
		t.Fatal(err)
	}
	if dueMs != ms(due) {
		t.Fatalf("webhook due at %d, want %d", dueMs, ms(due))
	}
	retried, err = store.jobByID(ctx, earlier)
	if err != nil {
		t.Fatal(err)
	}
	if len(retried.RetriedBy) != 1 || retried.RetriedBy[0] != "job-sync" {
		t.Fatalf("the retried job lists %v as its retries, want [job-sync]", retried.RetriedBy)
	}

	var results []NumberResult
	if err := store.eachResult(ctx, job.ID, "", 0, -1, func(r NumberResult) error {
		results = append(results, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []NumberResult{
		{Position: 0, Number: "+15550000001", Status: numberSuccess, Message: msgRestored, StatusCode: 200, Attempts: 1, StartedAt: at(1), CompletedAt: at(2)},
		{Position: 1, Number: "+15550000002", Status: numberSuccess, Message: msgAlreadyActive, StatusCode: 200, NeedsRegistration: true,
			Attempts: 1, StartedAt: at(3), CompletedAt: at(4)},
		{Position: 2, Number: "+15550000003", Status: numberFailed, Message: msgNotFound, StatusCode: 404, Attempts: 3, StartedAt: at(0), CompletedAt: at(9)},
	}
	if len(results) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(results), len(want), results)
	}
	for i := range want {
		if r := results[i]; r.Position != want[i].Position || r.Number != want[i].Number || r.Status != want[i].Status ||
			r.Message != want[i].Message || r.StatusCode != want[i].StatusCode || r.NeedsRegistration != want[i].NeedsRegistration ||
			r.Attempts != want[i].Attempts || !r.StartedAt.Equal(want[i].StartedAt) || !r.CompletedAt.Equal(want[i].CompletedAt) {
			t.Errorf("result %d = %+v, want %+v", i, r, want[i])
		}
	}
	attempts, err := store.numberAttempts(ctx, job.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 3 || attempts[0].StatusCode != 503 || attempts[1].StatusCode != 503 || attempts[2].StatusCode != 404 ||
		!attempts[1].StartedAt.Equal(at(6)) || attempts[2].Message != msgNotFound {
		t.Fatalf("attempts of the third number = %+v; want 503, 503, then 404", attempts)
	}
	if first, err := store.numberAttempts(ctx, job.ID, 0); err != nil || len(first) != 1 || first[0].Message != msgRestored {
		t.Fatalf("attempts of the first number = %+v, %v; want its one try", first, err)
	}

	records, err := store.inventoryRecords(ctx, user.ID, []string{"+15550000001", "+15550000002"})
	if err != nil {
		t.Fatal(err)
	}
	if records["+15550000001"].state != "active" || records["+15550000002"].state != "active" {
		t.Fatalf("inventory after the job = %+v; want both active", records)
	}
	rec, found, err := store.idempotencyRecord(ctx, user.ID, idem.key, now)
	if err != nil || !found || rec.jobID != job.ID {
		t.Fatalf("Idempotency-Key record = %+v, found %v, %v; want it linked to job %d", rec, found, err, job.ID)
	}

	// Without a webhook_url there is no webhook to fall due.
	quiet := Job{UUID: "job-quiet", UserID: user.ID, CreatedAt: now}
	if err := store.storeCompletedJob(ctx, w, &quiet, numbers[1:2], due, ""); err != nil {
		t.Fatal(err)
	}
	var quietDue sql.NullInt64
	var quietState webhookState
	if err := store.r.QueryRowContext(ctx, store.q("SELECT webhook_state, webhook_next_at FROM jobs WHERE id = ?"), quiet.ID).
		Scan(&quietState, &quietDue); err != nil {
		t.Fatal(err)
	}
	if quietState != webhookNone || quietDue.Valid || quiet.WebhookState != webhookNone {
		t.Fatalf("a job without webhook_url: webhook %s (caller told %s), due %v; want none, never due", quietState, quiet.WebhookState, quietDue)
	}
}

// TestDoStatementNeedsADirectWriter: SQLite's group-commit writer has no
// write outside a transaction, and says so rather than crash.
func TestDoStatementNeedsADirectWriter(t *testing.T) {
	store := newTestStore(t)
	w := newStoreWriter(store, slog.New(slog.DiscardHandler))
	t.Cleanup(w.stop)
	ran := false
	err := w.doStatement(context.Background(), func(context.Context, *sql.DB) error { ran = true; return nil })
	if err == nil || ran {
		t.Fatalf("doStatement on SQLite's writer: err=%v, ran=%v; want an error and nothing run", err, ran)
	}
}

// completedJobFixture is settleFixture's store (user alice, one queued
// job: earlier) with a writer for storeCompletedJob, stopped at cleanup.
func completedJobFixture(t *testing.T, db string) (store *Store, w *writer, alice User, earlier int64) {
	t.Helper()
	store, earlier = settleFixture(t, db, 1, "")
	w = newStoreWriter(store, slog.New(slog.DiscardHandler))
	t.Cleanup(w.stop)
	alice, err := store.userByName(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	return store, w, alice, earlier
}
