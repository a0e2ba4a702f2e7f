package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"
)

// dueWebhookFixture is a store on db with one user and one finished job
// whose webhook to hookURL fell due a second ago, and the store's writer.
func dueWebhookFixture(t *testing.T, db, hookURL string) (*Store, *writer, Job) {
	t.Helper()
	ctx := context.Background()
	store := openTestStore(t, db)
	if err := store.createUser(ctx, "alice", "k", newWebhookSecret()); err != nil {
		t.Fatal(err)
	}
	user, err := store.userByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	w := newStoreWriter(store, slog.New(slog.DiscardHandler))
	t.Cleanup(w.stop)
	now := time.Now()
	job := Job{UUID: "job-hook", UserID: user.ID, WebhookURL: hookURL, CreatedAt: now}
	done := []completedNumber{{Number: "+15550000001", Attempts: []attemptRecord{{Started: now, Finished: now,
		Outcome: Outcome{StatusCode: 404, Message: msgNotFound}}}}}
	if err := store.storeCompletedJob(ctx, w, &job, done, now.Add(-time.Second), ""); err != nil {
		t.Fatal(err)
	}
	return store, w, job
}

// startTestSender starts a webhook sender on store with a fast retry
// schedule; the test stops it, or cleanup does.
func startTestSender(t *testing.T, store *Store, w *writer) *webhookSender {
	t.Helper()
	sender := newWebhookSender(store, w, newDeliverer(2*time.Second, true, "bulkrestore/test"),
		retryPolicy{maxAttempts: 3, base: 10 * time.Millisecond, max: 50 * time.Millisecond}, slog.New(slog.DiscardHandler))
	sender.start(context.Background())
	t.Cleanup(func() { sender.stop(context.Background()) })
	return sender
}

// nextDueFails is a queue engine whose takeWebhooks takes the due
// deliveries, then fails to read when the next one falls due: what a
// PostgreSQL server meets when it is stopped between the two statements.
type nextDueFails struct{ queueEngine }

// takeWebhooks implements queueEngine.
func (e nextDueFails) takeWebhooks(ctx context.Context, now time.Time, room, busy int, hold time.Duration) ([]int64, time.Time, error) {
	ids, _, err := e.queueEngine.takeWebhooks(ctx, now, room, busy, hold)
	return ids, time.Time{}, errors.Join(err, errors.New("next due webhook: context canceled"))
}

// TestWebhookSenderDeliversWhatItTookWhenTheNextDueTimeFails: deliveries
// taken from the outbox are delivered even if the statement after the
// claim fails; on PostgreSQL, dropping them would hold them back from
// every instance until their hold ran out.
func TestWebhookSenderDeliversWhatItTookWhenTheNextDueTimeFails(t *testing.T) {
	forEachStore(t, testWebhookSenderDeliversWhatItTookWhenTheNextDueTimeFails)
}

// testWebhookSenderDeliversWhatItTookWhenTheNextDueTimeFails runs
// TestWebhookSenderDeliversWhatItTookWhenTheNextDueTimeFails on one
// database.
func testWebhookSenderDeliversWhatItTookWhenTheNextDueTimeFails(t *testing.T, db string) {
	h := newWHReceiver(t, http.StatusOK)
	store, w, _ := dueWebhookFixture(t, db, h.URL)
	store.eng = nextDueFails{store.eng}
	startTestSender(t, store, w)
	waitFor(t, 5*time.Second, "the delivery taken with the failing read", func() bool { return h.count() == 1 })
}

func TestWebhookCutShortByShutdownIsDueAgainAtOnce(t *testing.T) {
	forEachStore(t, testWebhookCutShortByShutdownIsDueAgainAtOnce)
}

// testWebhookCutShortByShutdownIsDueAgainAtOnce runs
// TestWebhookCutShortByShutdownIsDueAgainAtOnce on one database: a
// delivery still under way at the shutdown deadline is not recorded and
// is due again at once, not held for this (stopped) process.
func testWebhookCutShortByShutdownIsDueAgainAtOnce(t *testing.T, db string) {
	h := newWHReceiver(t, http.StatusOK)
	h.delay.Store(int64(time.Minute)) // answers when the delivery gives up
	store, w, job := dueWebhookFixture(t, db, h.URL)
	sender := startTestSender(t, store, w)
	waitFor(t, 5*time.Second, "the delivery to be under way", func() bool {
		sender.mu.Lock()
		defer sender.mu.Unlock()
		return len(sender.inFlight) == 1
	})
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	sender.stop(expired) // the shutdown deadline has passed: cut it short

	ctx := context.Background()
	got, err := store.jobByID(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.WebhookState != webhookPending || got.WebhookAttempts != 0 {
		t.Fatalf("after the cut: webhook %s after %d attempts; want pending, none recorded", got.WebhookState, got.WebhookAttempts)
	}
	due, _, err := store.eng.takeWebhooks(ctx, time.Now(), 10, 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0] != job.ID {
		t.Fatalf("due deliveries after the cut: %v, want job %d", due, job.ID)
	}
}
