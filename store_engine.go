package main

import (
	"context"
	"log/slog"
	"time"
)

// queueEngine is what SQLite and PostgreSQL do differently for the queue,
// the webhook outbox and the work of one instance at a time; the SQL text
// of everything else is the dialect's (store_dialect.go). The dispatcher,
// the recorder, the webhook sender and the janitor call it and never ask
// which database is underneath.
//
//   - SQLite has one server per file (a lock file says so), so a claim is
//     the dispatcher's read cursor, kept in memory, and costs no write;
//     nothing needs renewing, releasing or waking but the process itself.
//   - PostgreSQL is shared by any number of instances, so a claim is a row
//     lock taken with FOR UPDATE SKIP LOCKED and a lease written on the
//     number (claimed_by, lease_until), renewed while the instance works
//     and taken over by another once it runs out; LISTEN/NOTIFY wakes the
//     idle instances; an advisory lock keeps retention to one instance.
type queueEngine interface {
	// takeNumbers hands out up to n pending numbers of job past position
	// after, in input order, for this process to restore.
	takeNumbers(ctx context.Context, job activeJob, after, n int) ([]claim, error)
	// renewClaims extends the leases of the claims this process holds.
	renewClaims(ctx context.Context, held []claim) error
	// releaseClaims gives back every claim this process still holds, at
	// shutdown, for other instances to take at once.
	releaseClaims(ctx context.Context) error
	// takeWebhooks returns up to room jobs whose webhook is due at now,
	// each now this process's to deliver for hold, beside the busy ones
	// this process is delivering (which SQLite lists again), and when the
	// next one not yet due falls due (zero if none). The jobs it returns
	// with an error were taken all the same, and are to be delivered.
	takeWebhooks(ctx context.Context, now time.Time, room, busy int, hold time.Duration) ([]int64, time.Time, error)
	// giveBackWebhook makes a delivery this process took (holding it until
	// heldUntil) but did not attempt, cut short by shutdown, due at now
	// again for any instance; unless the hold ran out and something else
	// (another instance, a recorded attempt) has set its time since.
	giveBackWebhook(ctx context.Context, jobID int64, heldUntil, now time.Time) error
	// listen calls wake with the channel (pgWorkChannel and the others)
	// and the payload of every notification other instances send, until
	// ctx ends, and logs what keeps it from listening; it returns at once
	// where there are no other instances.
	listen(ctx context.Context, wake func(channel, payload string), log *slog.Logger)
	// exclusively runs fn unless another instance runs work under the same
	// lock now; it reports whether fn ran.
	exclusively(ctx context.Context, lock int64, fn func() error) (bool, error)
	// leaseRenewal is how often renewClaims must run, and how often the
	// queue looks again for numbers whose claims ran out; zero where
	// claims hold for the life of the process.
	leaseRenewal() time.Duration
}

// The channels of PostgreSQL's notifications: a job queued, claims given
// back (their numbers lie behind the other instances' read cursors), a
// webhook falling due, a job cancelled (payload: its id) and an instance
// having cancelled what it held of one (payload: "job instance"; see
// store_pg_cancel.go).
const (
	pgWorkChannel       = "bulkrestore_work"
	pgReleasedChannel   = "bulkrestore_released"
	pgWebhookChannel    = "bulkrestore_webhooks"
	pgCancelChannel     = "bulkrestore_cancel"
	pgCancelDoneChannel = "bulkrestore_cancel_done"
)

// sqliteQueue is the queue engine of a SQLite file, which one server holds.
type sqliteQueue struct{ s *Store }

// takeNumbers reads the pending numbers: the dispatcher's cursor is the
// claim (see pendingAfter).
func (q sqliteQueue) takeNumbers(ctx context.Context, job activeJob, after, n int) ([]claim, error) {
	return q.s.pendingAfter(ctx, job, after, n)
}

// renewClaims has nothing to do: a claim lives in this process only.
func (sqliteQueue) renewClaims(context.Context, []claim) error { return nil }

// releaseClaims has nothing to do: the next start reads the numbers again.
func (sqliteQueue) releaseClaims(context.Context) error { return nil }

// takeWebhooks lists the due deliveries, those under way among them; the
// sender's own bookkeeping keeps one delivery of a job in flight.
func (q sqliteQueue) takeWebhooks(ctx context.Context, now time.Time, room, busy int, _ time.Duration) ([]int64, time.Time, error) {
	return q.s.dueWebhooks(ctx, now, room+busy)
}

// giveBackWebhook has nothing to do: taking a delivery did not move it.
func (sqliteQueue) giveBackWebhook(context.Context, int64, time.Time, time.Time) error { return nil }

// listen returns at once: no other process writes the file's queue.
func (sqliteQueue) listen(context.Context, func(string, string), *slog.Logger) {}

// exclusively runs fn: this server is the only one.
func (sqliteQueue) exclusively(_ context.Context, _ int64, fn func() error) (bool, error) {
	return true, fn()
}

// leaseRenewal is zero: claims hold for the life of the process.
func (sqliteQueue) leaseRenewal() time.Duration { return 0 }
