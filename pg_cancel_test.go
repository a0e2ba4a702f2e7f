package main

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifications listens on channels with a connection of its own and
// returns the function that reads the next notification (failing t after
// five seconds), and one that reads what came before a marker it sends
// itself, to show that nothing else was sent.
func notifications(t *testing.T, s *Store, channels ...string) (next func() *pgNotice, before func() []*pgNotice) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, s.pg.config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			t.Fatal(err)
		}
	}
	next = func() *pgNotice {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		n, err := conn.WaitForNotification(wctx)
		if err != nil {
			t.Fatalf("waiting for a notification: %v", err)
		}
		return &pgNotice{n.Channel, n.Payload}
	}
	before = func() []*pgNotice {
		t.Helper()
		if _, err := s.w.Exec("SELECT pg_notify($1, 'marker')", channels[0]); err != nil {
			t.Fatal(err)
		}
		var got []*pgNotice
		for range 100 {
			n := next()
			if n.payload == "marker" {
				return got
			}
			got = append(got, n)
		}
		t.Fatal("no marker among 100 notifications")
		return nil
	}
	return next, before
}

// seemAlive holds, on a connection of its own, the lock by which s's
// listener says that s is connected (a test's bare store has no
// listener), and returns the function that closes it, as a kill would.
func seemAlive(t *testing.T, s *Store) (closeIt func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, s.pg.config)
	if err != nil {
		t.Fatal(err)
	}
	closeIt = func() { conn.Close(context.Background()) }
	t.Cleanup(closeIt)
	if err := holdLiveLock(ctx, conn, s.pg.instance); err != nil {
		t.Fatal(err)
	}
	return closeIt
}

// pgNotice is a notification's channel and payload.
type pgNotice struct{ channel, payload string }

// TestPGCancelReachesTheInstancesHoldingNumbers: B cancels a job of which
// A holds four numbers; B names A among the holders and tells every
// instance; A, told, cancels what it holds but the number its worker
// started, and answers; that number's result then completes the job.
func TestPGCancelReachesTheInstancesHoldingNumbers(t *testing.T) {
	ctx := context.Background()
	stores, job := pgInstances(t, 2, 10, time.Minute)
	a, b := stores[0], stores[1]
	next, before := notifications(t, b, pgCancelChannel, pgCancelDoneChannel)
	seemAlive(t, a)
	held, err := a.eng.takeNumbers(ctx, job, -1, 4)
	if err != nil || len(held) != 4 {
		t.Fatalf("a claimed %d (%v), want 4", len(held), err)
	}
	var cancelled int
	var holders cancelHolders
	inTx(t, b, func(tx *sql.Tx) (err error) {
		if cancelled, err = b.cancelJobNumbers(tx, job.id, nil, time.Now()); err != nil {
			return err
		}
		holders, err = b.announceCancel(tx, job.id)
		return err
	})
	if cancelled != 6 || !slices.Equal(holders.connected, []string{a.pg.instance}) || holders.unconnected != 0 {
		t.Fatalf("b cancelled %d and finds holders %+v; want 6 and a (%s), connected", cancelled, holders, a.pg.instance)
	}
	if n := next(); *n != (pgNotice{pgCancelChannel, strconv.FormatInt(job.id, 10) + " " + a.pg.instance}) {
		t.Fatalf("notification %+v, want the job and its holder a on %s", *n, pgCancelChannel)
	}
	started := held[0]
	inTx(t, a, func(tx *sql.Tx) error { return a.cancelHeld(tx, job.id, []int{started.Position}, time.Now()) })
	if n := next(); *n != (pgNotice{pgCancelDoneChannel, fmt.Sprintf("%d %s", job.id, a.pg.instance)}) {
		t.Fatalf("notification %+v, want a's answer on %s", *n, pgCancelDoneChannel)
	}
	j, err := b.jobByID(ctx, job.id)
	if err != nil || j.Status != jobCancelled || j.CancelledCount != 9 {
		t.Fatalf("job %s with %d cancelled (%v), want cancelled with 9: all but the started number", j.Status, j.CancelledCount, err)
	}
	if out := record(t, a, successes([]claim{started}, time.Now())); out.dropped != 0 || len(out.completedJobs) != 1 {
		t.Fatalf("the started number's result: %d dropped, completed %v; want it recorded, the job final", out.dropped, out.completedJobs)
	}

	t.Run("a cancellation nobody else holds numbers of tells no one", func(t *testing.T) {
		stores, job := pgInstances(t, 2, 3, time.Minute)
		_, before := notifications(t, stores[1], pgCancelChannel)
		inTx(t, stores[1], func(tx *sql.Tx) error {
			if _, err := stores[1].cancelJobNumbers(tx, job.id, nil, time.Now()); err != nil {
				return err
			}
			holders, err := stores[1].announceCancel(tx, job.id)
			if holders.any() {
				t.Errorf("holders %+v, want none", holders)
			}
			return err
		})
		if got := before(); len(got) != 0 {
			t.Fatalf("notifications %v, want none", got)
		}
	})
	t.Run("a holder no longer connected is counted, not named", func(t *testing.T) {
		stores, job := pgInstances(t, 3, 10, time.Minute)
		dead, alive, canceller := stores[0], stores[1], stores[2]
		next, _ := notifications(t, canceller, pgCancelChannel)
		closeLive := seemAlive(t, dead)
		seemAlive(t, alive)
		for _, s := range []*Store{dead, alive} {
			if held, err := s.eng.takeNumbers(ctx, job, -1, 2); err != nil || len(held) != 2 {
				t.Fatalf("claimed %d (%v), want 2", len(held), err)
			}
		}
		closeLive() // killed: its leases live on, its connection does not
		// Its backend lets go of the lock as it exits, just after.
		deadline := time.Now().Add(5 * time.Second)
		for held := 1; held > 0; {
			if err := canceller.w.QueryRow(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
				AND classid = $1::oid AND objid = hashtext($2)::oid AND objsubid = 2`, pgLiveLockSpace, dead.pg.instance).Scan(&held); err != nil {
				t.Fatal(err)
			}
			if held > 0 {
				if time.Now().After(deadline) {
					t.Fatal("the closed connection's lock is still held after 5 s")
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		inTx(t, canceller, func(tx *sql.Tx) error {
			holders, err := canceller.announceCancel(tx, job.id)
			if err == nil && (!slices.Equal(holders.connected, []string{alive.pg.instance}) || holders.unconnected != 1) {
				t.Errorf("holders %+v, want the one connected (%s) named and one (%s) unconnected", holders, alive.pg.instance, dead.pg.instance)
			}
			return err
		})
		if n := next(); *n != (pgNotice{pgCancelChannel, strconv.FormatInt(job.id, 10) + " " + alive.pg.instance}) {
			t.Fatalf("notification %+v, want the job and only its connected holder", *n)
		}
	})
	t.Run("a job gone is answered all the same", func(t *testing.T) {
		if _, err := a.w.Exec("DELETE FROM jobs WHERE id = $1", job.id); err != nil {
			t.Fatal(err)
		}
		inTx(t, a, func(tx *sql.Tx) error { return a.cancelHeld(tx, job.id, nil, time.Now()) })
		if got := before(); len(got) != 1 || got[0].channel != pgCancelDoneChannel {
			t.Fatalf("notifications %v, want a's answer", got)
		}
	})
}

// TestAwaitHoldersWaitsBrieflyForTheUnconnected: a holder that cannot be
// told is given the quiet, never past the deadline; connected holders that
// have answered are not waited for.
func TestAwaitHoldersWaitsBrieflyForTheUnconnected(t *testing.T) {
	var acks cancelAcks
	ch := acks.expect(7)
	defer acks.forget(7, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // instead of an hour
	defer cancel()
	start := time.Now()
	if late := acks.awaitHolders(ctx, ch, cancelHolders{unconnected: 1}, start.Add(150*time.Millisecond), start.Add(time.Hour)); late != nil {
		t.Fatalf("late %v, want none: only an unconnected holder", late)
	}
	if took := time.Since(start); took < 150*time.Millisecond || ctx.Err() != nil {
		t.Fatalf("returned after %s, want the quiet of 150ms and not the hour's deadline", took)
	}
	start = time.Now()
	acks.awaitHolders(ctx, ch, cancelHolders{unconnected: 1}, start.Add(time.Hour), start.Add(100*time.Millisecond))
	if ctx.Err() != nil {
		t.Fatal("waited past the deadline for the quiet")
	}
	acks.deliver("7 a")
	if late := acks.awaitHolders(ctx, ch, cancelHolders{connected: []string{"a"}}, time.Now().Add(time.Hour), time.Now().Add(time.Hour)); late != nil || ctx.Err() != nil {
		t.Fatalf("late %v (%v), want a's answer taken at once and no quiet kept", late, ctx.Err())
	}
}

func TestCancelAcksWaitForEveryHolder(t *testing.T) {
	var acks cancelAcks
	acks.deliver("7 early")                                       // nobody waits yet: dropped
	first, second := acks.expect(7), acks.expect(7)               // a cancel and a deletion, say
	for _, p := range []string{"7 a", "x b", "7", "8 b", "7 c"} { // malformed, or another job's, are ignored
		acks.deliver(p)
	}
	ctx := context.Background()
	soon := func(d time.Duration) time.Time { return time.Now().Add(d) }
	for _, ch := range []chan string{first, second} {
		if missing := acks.await(ctx, ch, []string{"a", "c"}, soon(5*time.Second)); missing != nil {
			t.Fatalf("missing %v, want none", missing)
		}
	}
	acks.forget(7, second) // the other waiter still hears
	acks.deliver("7 a")
	if missing := acks.await(ctx, first, []string{"early", "b", "a"}, soon(50*time.Millisecond)); !slices.Equal(missing, []string{"early", "b"}) {
		t.Fatalf("missing %v, want early and b", missing)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if missing := acks.await(gone, first, []string{"d"}, soon(time.Hour)); !slices.Equal(missing, []string{"d"}) {
		t.Fatalf("missing %v after the caller left, want d", missing)
	}
	acks.forget(7, first)
	acks.deliver("7 e") // nobody waits any more
	for _, ch := range []chan string{first, second} {
		select {
		case id := <-ch:
			t.Fatalf("answer %q delivered after forget", id)
		default:
		}
	}
}
