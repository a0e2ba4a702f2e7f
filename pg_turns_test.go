package main

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestPGRequestPathTakesTurnsAndGivesThemBack: on PostgreSQL the
// authentication, the inventory lookup and the synchronous write each wait
// for a turn of the store's gate, and every way out of them, errors
// included, hands the turn back (a turn lost would slow every later request
// by the gate's patience). SQLite's store has no gate.
func TestPGRequestPathTakesTurnsAndGivesThemBack(t *testing.T) {
	if newTestStore(t).turns != nil {
		t.Fatal("SQLite's store has a turn gate; its writer wants every write at once")
	}
	store, _ := settleFixture(t, newPGDatabase(t), 0, "")
	if store.turns == nil {
		t.Fatal("PostgreSQL's store has no turn gate")
	}
	const turns = pgPoolSize / 2
	store.turns = newTurnGate(turns, 10*time.Second) // nobody goes ahead without a turn here
	ctx := context.Background()
	w := newStoreWriter(store, slog.New(slog.DiscardHandler))
	t.Cleanup(w.stop)
	user, err := store.userByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	syncWrite := func(ctx context.Context, userID int64) error {
		now := time.Now()
		j := Job{UUID: uuid.NewString(), UserID: userID, CreatedAt: now}
		return store.storeCompletedJob(ctx, w, &j, []completedNumber{{Number: "+15550000001",
			Attempts: []attemptRecord{{Started: now, Finished: now, Outcome: Outcome{StatusCode: 404, Message: msgNotFound}}}}},
			time.Time{}, "")
	}
	calls := []struct {
		name string
		run  func() error
	}{
		{"authenticate", func() error { _, err := store.authenticate(ctx, "alice", "k"); return err }},
		{"inventory lookup", func() error { _, err := store.inventoryRecords(ctx, user.ID, []string{"+15550000001"}); return err }},
		{"synchronous write", func() error { return syncWrite(ctx, user.ID) }},
	}
	for _, c := range calls {
		var gives []func()
		for range turns {
			give, err := store.turns.take(ctx)
			if err != nil {
				t.Fatal(err)
			}
			gives = append(gives, give)
		}
		done := make(chan error, 1)
		go func() { done <- c.run() }()
		waitForGate(t, store.turns, 0, 1) // every turn held: it waits for one
		gives[0]()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s never ran after a turn was handed back", c.name)
		}
		for _, give := range gives[1:] {
			give()
		}
		waitForGate(t, store.turns, turns, 0)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := store.authenticate(ctx, "nobody", "k"); !errors.Is(err, errNotFound) {
		t.Fatalf("unknown user: %v, want errNotFound", err)
	}
	if _, err := store.authenticate(cancelled, "alice", "k"); err == nil {
		t.Fatal("authenticate on a cancelled context succeeded")
	}
	if _, err := store.inventoryRecords(cancelled, user.ID, []string{"+15550000001"}); err == nil {
		t.Fatal("inventory lookup on a cancelled context succeeded")
	}
	if err := syncWrite(ctx, user.ID+1000); err == nil {
		t.Fatal("a synchronous write for a user who does not exist succeeded")
	}
	waitForGate(t, store.turns, turns, 0)
}

// TestPGAWriteStuckBehindALockHoldsNoOneBack: synchronous writes that wait
// for a row lock (here an open transaction on the inventory, as an
// import's is) take every turn; another user's request still runs within
// the gate's patience, not when the lock is released.
func TestPGAWriteStuckBehindALockHoldsNoOneBack(t *testing.T) {
	db := newPGDatabase(t)
	store := openTestStore(t, db)
	store.turns = newTurnGate(2, 50*time.Millisecond)
	ctx := context.Background()
	w := newStoreWriter(store, slog.New(slog.DiscardHandler))
	t.Cleanup(w.stop)
	for _, name := range []string{"alice", "bob"} {
		if err := store.createUser(ctx, name, "k-"+name, newWebhookSecret()); err != nil {
			t.Fatal(err)
		}
	}
	alice, err := store.userByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := store.importInventory(ctx, alice.ID, []InventoryRow{{Number: "+15550000001", State: "released", ReleasedAt: now}}, false); err != nil {
		t.Fatal(err)
	}
	raw := pgConn(t, db)
	lock, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.Exec("UPDATE inventory SET needs_registration = 0 WHERE user_id = $1", alice.ID); err != nil {
		t.Fatal(err)
	}
	written := make(chan error, 2)
	for range 2 {
		go func() {
			j := Job{UUID: uuid.NewString(), UserID: alice.ID, CreatedAt: now}
			written <- store.storeCompletedJob(ctx, w, &j, []completedNumber{{Number: "+15550000001",
				Attempts: []attemptRecord{{Started: now, Finished: now,
					Outcome: Outcome{Success: true, StatusCode: 200, Message: msgRestored, Activate: true}}}}}, time.Time{}, "")
		}()
	}
	waitFor(t, 10*time.Second, "both writes waiting for the row lock", func() bool {
		var n int
		err := raw.QueryRow(`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		return err == nil && n == 2
	})

	authenticated := make(chan error, 1)
	go func() {
		_, err := store.authenticate(ctx, "bob", "k-bob")
		authenticated <- err
	}()
	wantDone(t, authenticated, "bob's authentication", "waited for alice's locked row")
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		wantDone(t, written, "alice's write", "never finished after the lock was released")
	}
	waitForGate(t, store.turns, 2, 0)
}

// wantDone fails t unless what reports success on done within ten
// seconds; late says what a timeout means.
func wantDone(t *testing.T, done <-chan error, what, late string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s %s", what, late)
	}
}

// TestTurnMetricsAreExportedOnPostgreSQLOnly: the gate's series are on the
// /metrics of a server on PostgreSQL, at 0 while nothing queues, and absent
// on SQLite, which has no gate.
func TestTurnMetricsAreExportedOnPostgreSQLOnly(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		s := startServer(t, "-db", db, "-dev")
		want := -1.0 // absent
		if onPG(db) {
			want = 0
		}
		for _, series := range []string{"bulkrestore_postgres_turns_waiting", "bulkrestore_postgres_turns_skipped_total",
			"bulkrestore_postgres_turns_lapsed_total"} {
			if got := metricValue(t, s.URL, series); got != want {
				t.Fatalf("%s = %v, want %v (-1: absent)", series, got, want)
			}
		}
	})
}
