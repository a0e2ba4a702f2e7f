package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"
)

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
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	store := newTestStore(t)
	if err := store.createUser(ctx, "alice", "k", newWebhookSecret()); err != nil {
		t.Fatal(err)
	}
	user, err := store.userByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	w := newStoreWriter(store, log)
	t.Cleanup(w.stop)
	h := newWHReceiver(t, http.StatusOK)
	now := time.Now()
	job := Job{UUID: "job-hook", UserID: user.ID, WebhookURL: h.URL, CreatedAt: now}
	done := []completedNumber{{Number: "+15550000001", Attempts: []attemptRecord{{Started: now, Finished: now,
		Outcome: Outcome{StatusCode: 404, Message: msgNotFound}}}}}
	if err := store.storeCompletedJob(ctx, w, &job, done, now.Add(-time.Second), ""); err != nil {
		t.Fatal(err)
	}
	store.eng = nextDueFails{store.eng}

	sender := newWebhookSender(store, w, newDeliverer(2*time.Second, true, "bulkrestore/test"),
		retryPolicy{maxAttempts: 3, base: 10 * time.Millisecond, max: 50 * time.Millisecond}, log)
	sender.start(ctx)
	t.Cleanup(func() { sender.stop(ctx) })
	waitFor(t, 5*time.Second, "the delivery taken with the failing read", func() bool { return h.count() == 1 })
}
