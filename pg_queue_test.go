package main

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// The claims of PostgreSQL, between instances: each test opens the same
// database as several stores, each store an instance with an id of its
// own, as several serve processes would.

// pgInstances opens n stores on one fresh database, each claiming for
// lease, and a queued job of size numbers for user alice; it returns the
// stores and the job.
func pgInstances(t *testing.T, n, size int, lease time.Duration) ([]*Store, activeJob) {
	t.Helper()
	db := newPGDatabase(t)
	var stores []*Store
	for range n {
		s, err := openPGStore(context.Background(), db, lease)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	s := stores[0]
	if err := s.createUser(context.Background(), "alice", "k", newWebhookSecret()); err != nil {
		t.Fatal(err)
	}
	u, err := s.userByName(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	j := Job{UUID: "job-1", UserID: u.ID, WebhookURL: "https://hooks.example/a", CreatedAt: time.Now()}
	inTx(t, s, func(tx *sql.Tx) error { return s.insertQueuedJob(tx, &j, packNumbers(seqNumbers(15550000000, size))) })
	return stores, activeJob{id: j.ID, userID: u.ID}
}

// positions returns the positions of claims.
func positions(claims []claim) []int {
	out := make([]int, len(claims))
	for i, c := range claims {
		out[i] = c.Position
	}
	return out
}

// successes are results of claims, restored at now.
func successes(claims []claim, now time.Time) []workResult {
	out := make([]workResult, len(claims))
	for i, c := range claims {
		out[i] = workResult{claim: c, attemptRecord: attemptRecord{Started: now, Finished: now,
			Outcome: Outcome{Success: true, StatusCode: 200, Message: msgRestored}}}
	}
	return out
}

// record writes results through a store as its recorder does.
func record(t *testing.T, s *Store, results []workResult) recordOutcome {
	t.Helper()
	var out recordOutcome
	err := s.pgWriteTx(context.Background(), func(tx *sql.Tx) (err error) {
		out, err = s.recordResults(tx, results, retryPolicy{maxAttempts: 3, base: time.Second, max: time.Minute}, time.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPGClaimsAreOneInstancesAtATime(t *testing.T) {
	ctx := context.Background()
	t.Run("two instances claiming at once get disjoint numbers, all of them between them", func(t *testing.T) {
		stores, job := pgInstances(t, 2, 400, time.Minute)
		got := make([][]claim, 2)
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				for {
					c, err := s.eng.takeNumbers(ctx, job, -1, 7)
					if err != nil {
						t.Error(err)
						return
					}
					if len(c) == 0 {
						return
					}
					got[i] = append(got[i], c...)
				}
			})
		}
		wg.Wait()
		all := append(positions(got[0]), positions(got[1])...)
		slices.Sort(all)
		if len(all) != 400 || len(slices.Compact(slices.Clone(all))) != 400 {
			t.Fatalf("%d claims, %d distinct, want 400 distinct", len(all), len(slices.Compact(all)))
		}
	})
	t.Run("a live lease is not taken over; a lapsed one is, and the late holder's results are dropped", func(t *testing.T) {
		stores, job := pgInstances(t, 2, 10, 300*time.Millisecond)
		a, b := stores[0], stores[1]
		held, err := a.eng.takeNumbers(ctx, job, -1, 4)
		if err != nil || len(held) != 4 {
			t.Fatalf("a claimed %d (%v), want 4", len(held), err)
		}
		other, _ := b.eng.takeNumbers(ctx, job, -1, 100)
		if !slices.Equal(positions(other), []int{4, 5, 6, 7, 8, 9}) {
			t.Fatalf("b claimed %v, want the 6 that a does not hold", positions(other))
		}
		var taken []claim
		waitFor(t, 5*time.Second, "a's leases to lapse and b to take them over", func() bool {
			c, err := b.eng.takeNumbers(ctx, job, -1, 4) // the first positions: a's
			taken = append(taken, c...)
			return err == nil && len(taken) == 4
		})
		if !slices.Equal(positions(taken), positions(held)) {
			t.Fatalf("b took over %v, want a's %v", positions(taken), positions(held))
		}
		busy := successes(held[:1], time.Now())
		busy[0].Outcome = Outcome{StatusCode: 503, Message: "busy", Transient: true}
		if out := record(t, a, busy); out.dropped != 1 || len(out.retries) != 0 {
			t.Fatalf("a's late retry: %d dropped, retries %v; want it dropped and not queued", out.dropped, out.retries)
		}
		if n := countRows(t, a, "SELECT count(*) FROM attempts WHERE job_id = ?", job.id); n != 0 {
			t.Fatalf("%d attempt rows written for a's late retry, want none", n)
		}
		late := record(t, a, successes(held, time.Now()))
		if late.dropped != 4 {
			t.Fatalf("a's late results: %d dropped, want 4", late.dropped)
		}
		out := record(t, b, successes(append(taken, other...), time.Now()))
		if out.dropped != 0 || len(out.completedJobs) != 1 {
			t.Fatalf("b: %d dropped, completed %v; want none dropped and the job completed", out.dropped, out.completedJobs)
		}
		j, _ := a.jobByID(ctx, job.id)
		if j.SuccessCount != 10 || j.Status != jobCompleted {
			t.Fatalf("job %s with %d successes, want completed with 10: no number counted twice", j.Status, j.SuccessCount)
		}
	})
	t.Run("a late retry of a number another instance finished is dropped, not written as a second attempt", func(t *testing.T) {
		stores, job := pgInstances(t, 2, 1, 300*time.Millisecond)
		a, b := stores[0], stores[1]
		held, err := a.eng.takeNumbers(ctx, job, -1, 1)
		if err != nil || len(held) != 1 {
			t.Fatalf("a claimed %d (%v), want 1", len(held), err)
		}
		busy := successes(held, time.Now())
		busy[0].Outcome = Outcome{StatusCode: 503, Message: "busy", Transient: true}
		first := record(t, a, busy)
		if len(first.retries) != 1 {
			t.Fatalf("a's transient failure: retries %v, want one", first.retries)
		}
		var taken []claim
		waitFor(t, 10*time.Second, "a's lease to lapse and the retry to fall due for b", func() bool {
			c, err := b.eng.takeNumbers(ctx, job, -1, 1)
			taken = append(taken, c...)
			return err == nil && len(taken) == 1
		})
		if out := record(t, b, successes(taken, time.Now())); len(out.completedJobs) != 1 {
			t.Fatalf("b's result: completed %v, want the job", out.completedJobs)
		}
		// a's retry, made late, carries the attempt number b's try had.
		if late := record(t, a, successes(first.retries, time.Now())); late.dropped != 1 {
			t.Fatalf("a's late retry: %d dropped, want 1", late.dropped)
		}
		if n := countRows(t, a, "SELECT count(*) FROM attempts WHERE job_id = ?", job.id); n != 2 {
			t.Fatalf("%d attempt rows, want 2: a's first try and b's", n)
		}
	})
	t.Run("renewed leases hold past their first term", func(t *testing.T) {
		stores, job := pgInstances(t, 2, 5, 400*time.Millisecond)
		a, b := stores[0], stores[1]
		held, _ := a.eng.takeNumbers(ctx, job, -1, 5)
		deadline := time.Now().Add(1200 * time.Millisecond)
		for time.Now().Before(deadline) {
			if err := a.eng.renewClaims(ctx, held); err != nil {
				t.Fatal(err)
			}
			if c, _ := b.eng.takeNumbers(ctx, job, -1, 5); len(c) > 0 {
				t.Fatalf("b took %v while a renewed its leases", positions(c))
			}
			time.Sleep(100 * time.Millisecond) // the renewal period under test, not a wait for an event
		}
	})
	t.Run("released claims are taken at once", func(t *testing.T) {
		stores, job := pgInstances(t, 2, 5, time.Hour)
		a, b := stores[0], stores[1]
		if held, _ := a.eng.takeNumbers(ctx, job, -1, 5); len(held) != 5 {
			t.Fatalf("a claimed %d, want 5", len(held))
		}
		if err := a.eng.releaseClaims(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.eng.takeNumbers(ctx, job, -1, 5); len(got) != 5 {
			t.Fatalf("b took %d after the release, want 5", len(got))
		}
	})
	t.Run("another instance's live claim shows as processing, a waiting retry as pending", func(t *testing.T) {
		stores, job := pgInstances(t, 2, 3, time.Minute)
		holder, reader := stores[0], stores[1]
		holder.eng.takeNumbers(ctx, job, -1, 3)
		if _, err := holder.w.Exec("UPDATE job_numbers SET next_attempt_at = $1 WHERE job_id = $2 AND position = 2",
			ms(time.Now().Add(time.Hour)), job.id); err != nil {
			t.Fatal(err)
		}
		read := func(s *Store) (got []numberStatus) {
			s.readResults(ctx, job.id, resultRead{limit: -1}, func(n NumberResult) error { got = append(got, n.Status); return nil })
			return got
		}
		if got := read(reader); !slices.Equal(got, []numberStatus{numberProcessing, numberProcessing, numberPending}) {
			t.Fatalf("another instance reads %v, want processing, processing, pending", got)
		}
		// The holder's own claims are for its registry to tell apart:
		// started by a worker, or still waiting for one.
		if got := read(holder); !slices.Equal(got, []numberStatus{numberPending, numberPending, numberPending}) {
			t.Fatalf("the holder reads %v, want its claims pending", got)
		}
	})
}

func TestPGWebhookDeliveriesAreClaimed(t *testing.T) {
	ctx := context.Background()
	stores, job := pgInstances(t, 2, 1, time.Minute)
	a, b := stores[0], stores[1]
	now := time.Now()
	if _, err := a.w.Exec("UPDATE jobs SET webhook_state = 'pending', webhook_next_at = $1 WHERE id = $2", ms(now), job.id); err != nil {
		t.Fatal(err)
	}
	got, _, err := a.eng.takeWebhooks(ctx, now, 10, 0, 500*time.Millisecond)
	if err != nil || !slices.Equal(got, []int64{job.id}) {
		t.Fatalf("a took %v (%v), want the job", got, err)
	}
	if other, next, _ := b.eng.takeWebhooks(ctx, now, 10, 0, time.Minute); len(other) != 0 || next.IsZero() {
		t.Fatalf("b took %v, next %v; want none while a holds it, and when it falls due again", other, next)
	}
	later := now.Add(600 * time.Millisecond)
	if again, _, _ := b.eng.takeWebhooks(ctx, later, 10, 0, time.Minute); !slices.Equal(again, []int64{job.id}) {
		t.Fatalf("b took %v once a's hold ran out, want the job", again)
	}

	// a's hold ran out and b took the delivery: a giving back what it
	// held leaves b's hold in place; b giving back its own makes it due.
	nextAt := func() int64 {
		var at int64
		if err := a.w.QueryRow("SELECT webhook_next_at FROM jobs WHERE id = $1", job.id).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	aHeld, bHeld := time.UnixMilli(ms(now)+500), time.UnixMilli(ms(later)+time.Minute.Milliseconds())
	if err := a.eng.giveBackWebhook(ctx, job.id, aHeld, later); err != nil {
		t.Fatal(err)
	}
	if at := nextAt(); at != ms(bHeld) {
		t.Fatalf("after a gave back its lapsed hold, next attempt at %d, want b's hold %d", at, ms(bHeld))
	}
	if err := b.eng.giveBackWebhook(ctx, job.id, bHeld, later); err != nil {
		t.Fatal(err)
	}
	if at := nextAt(); at != ms(later) {
		t.Fatalf("after b gave back its hold, next attempt at %d, want now (%d)", at, ms(later))
	}
}

// TestPGWebhookClaimRunsToItsEndOnceBegun: a sender stopped while its
// claim statement runs still gets the deliveries that claim holds, to
// deliver or give back. Cut short in the middle, the claim would return
// nothing while the hold it wrote stayed, and no instance could deliver
// the webhook until the hold ran out.
func TestPGWebhookClaimRunsToItsEndOnceBegun(t *testing.T) {
	stores, job := pgInstances(t, 1, 1, time.Minute)
	s := stores[0]
	now := time.Now()
	for _, stmt := range []string{
		"UPDATE jobs SET webhook_state = 'pending', webhook_next_at = 0 WHERE id = " + itoa(int(job.id)),
		// Every later UPDATE of jobs (the claim) sleeps a second first.
		`CREATE FUNCTION slow_update() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$`,
		"CREATE TRIGGER slow_update BEFORE UPDATE ON jobs FOR EACH STATEMENT EXECUTE FUNCTION slow_update()",
	} {
		if _, err := s.w.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type taken struct {
		ids []int64
		err error
	}
	done := make(chan taken, 1)
	go func() {
		ids, _, err := s.eng.takeWebhooks(ctx, now, 10, 0, time.Minute)
		done <- taken{ids, err}
	}()
	waitFor(t, 10*time.Second, "the claim to be running", func() bool {
		var n int
		err := s.w.QueryRow(`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event = 'PgSleep'`).Scan(&n)
		return err == nil && n == 1
	})
	cancel() // the sender stops while its claim runs
	var got taken
	select {
	case got = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("takeWebhooks did not return after its context ended")
	}
	if !slices.Equal(got.ids, []int64{job.id}) {
		t.Fatalf("a claim whose context ended while it ran returned %v (%v); want the job it holds", got.ids, got.err)
	}
	var at int64
	if err := s.w.QueryRow("SELECT webhook_next_at FROM jobs WHERE id = $1", job.id).Scan(&at); err != nil {
		t.Fatal(err)
	}
	if at != ms(now)+time.Minute.Milliseconds() {
		t.Fatalf("webhook_next_at = %d, want the claim's hold %d", at, ms(now)+time.Minute.Milliseconds())
	}
}

func TestPGMigrationsRunOnceWhenInstancesStartTogether(t *testing.T) {
	db := requirePG(t).newDatabase(t, true)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			s, err := openPGStore(context.Background(), db, time.Minute)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("an instance failed to start: %v", err)
	}
	raw := pgConn(t, db)
	var rows, version int
	if err := raw.QueryRow("SELECT count(*), max(version) FROM schema_version").Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || version != len(migrations) || len(migrationsPG) != len(migrations) {
		t.Fatalf("schema_version has %d rows, version %d; want one row at %d, the SQLite file's version", rows, version, len(migrations))
	}
	if _, err := raw.Exec("UPDATE schema_version SET version = 99"); err != nil {
		t.Fatal(err)
	}
	if _, err := openPGStore(context.Background(), db, time.Minute); err == nil {
		t.Fatal("a database newer than the binary was opened")
	}
}

func TestPGRetentionRunsOnOneInstanceAtATime(t *testing.T) {
	stores, _ := pgInstances(t, 2, 1, time.Minute)
	ctx := context.Background()
	inside := make(chan struct{})
	release := make(chan struct{})
	go stores[0].eng.exclusively(ctx, retentionLock, func() error {
		close(inside)
		<-release
		return nil
	})
	<-inside
	ran, err := stores[1].eng.exclusively(ctx, retentionLock, func() error { return nil })
	close(release)
	if err != nil || ran {
		t.Fatalf("the second instance ran=%v (%v) while the first held the lock", ran, err)
	}
	waitFor(t, 5*time.Second, "the lock to be free again", func() bool {
		ran, err := stores[1].eng.exclusively(ctx, retentionLock, func() error { return nil })
		return err == nil && ran
	})
}

func TestPGErrorsAreClassifiedByCode(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want storeErrorClass
	}{
		{"a unique violation is permanent", &pgconn.PgError{Code: "23505"}, storePermanent},
		{"a deadlock is transient", &pgconn.PgError{Code: "40P01"}, storeTransient},
		{"a serialization failure is transient", &pgconn.PgError{Code: "40001"}, storeTransient},
		{"a full disk is transient", &pgconn.PgError{Code: "53100"}, storeTransient},
		{"a server shutting down is transient", &pgconn.PgError{Code: "57P01"}, storeTransient},
		{"a connection failure is transient", &pgconn.PgError{Code: "08006"}, storeTransient},
		{"a syntax error is permanent", &pgconn.PgError{Code: "42601"}, storePermanent},
		{"a refused connection is transient", &pgconn.ConnectError{}, storeTransient},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := classifyStoreError(c.err); got != c.want {
				t.Fatalf("class %s, want %s", got, c.want)
			}
		})
	}
	if !isUniqueViolation(&pgconn.PgError{Code: "23505"}) || !isForeignKeyViolation(&pgconn.PgError{Code: "23503"}) {
		t.Fatal("PostgreSQL's constraint codes are not recognised")
	}
}

func TestRebindTurnsSQLitePlaceholdersIntoPostgreSQLs(t *testing.T) {
	cases := []struct{ in, want string }{
		{"SELECT ? , ?", "SELECT $1 , $2"},
		{"UPDATE t SET a = ?3 WHERE b = ?1 AND c = ?", "UPDATE t SET a = $3 WHERE b = $1 AND c = $4"},
		{"SELECT '?' , \"?\", ? -- ?\n, ?", "SELECT '?' , \"?\", $1 -- ?\n, $2"},
		{"SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"},
	}
	for _, c := range cases {
		if got := rebind(c.in); got != c.want {
			t.Errorf("rebind(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
