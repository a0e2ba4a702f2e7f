package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// webhookSender delivers each completed job's final payload to its
// webhook_url from the outbox in the jobs table: a job whose webhook_state is
// 'pending' is due at webhook_next_at. Every attempt is recorded; failures
// are retried with capped exponential backoff and jitter, and since the
// schedule lives in the database, a restart picks up where the last run
// stopped. Where instances share the database (PostgreSQL), taking a due
// delivery claims it for this instance (see queueEngine.takeWebhooks), so
// a job's webhook is in flight from one instance at a time.
type webhookSender struct {
	store       *Store
	writer      *writer
	deliverer   *deliverer
	retry       retryPolicy // maxAttempts, base and max of the waits
	concurrency int
	log         *slog.Logger
	now         func() time.Time

	// observe, when set, is told the outcome of every attempt.
	observe func(deliveryResult)

	wake     chan struct{}
	mu       sync.Mutex
	inFlight map[int64]bool
	wg       sync.WaitGroup
	cancel   context.CancelFunc
	done     chan struct{}

	deliveries context.Context // ended by cutShort at the shutdown deadline
	cutShort   context.CancelFunc
}

// errCutShort is an attempt that shutdown cut short: it is not recorded.
var errCutShort = errors.New("webhook attempt cut short by shutdown")

// newWebhookSender builds a sender; start runs it.
func newWebhookSender(store *Store, w *writer, d *deliverer, retry retryPolicy, log *slog.Logger) *webhookSender {
	return &webhookSender{
		store: store, writer: w, deliverer: d, retry: retry, concurrency: 64, log: log, now: time.Now,
		wake: make(chan struct{}, 1), inFlight: map[int64]bool{}, done: make(chan struct{}),
	}
}

// start runs the delivery loop until stop.
func (s *webhookSender) start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.deliveries, s.cutShort = context.WithCancel(context.Background())
	go s.loop(ctx)
}

// stop ends the loop and waits for the deliveries under way (each bounded
// by the webhook timeout) to be recorded; those still running when ctx
// ends are cut short, and are due again at once, for another instance or
// the next start.
func (s *webhookSender) stop(ctx context.Context) {
	s.cancel()
	<-s.done
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		s.cutShort()
		<-finished
	}
	s.cutShort()
}

// nudge tells the loop that a delivery may be due.
func (s *webhookSender) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// loop starts due deliveries, at most concurrency at a time, and sleeps
// until nudged or until the next one falls due.
func (s *webhookSender) loop(ctx context.Context) {
	defer close(s.done)
	for ctx.Err() == nil {
		ids, heldUntil, next, err := s.due(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("list due webhooks", "err", err)
			next = s.now().Add(time.Second)
		}
		for _, id := range ids {
			s.launch(id, heldUntil)
		}
		sleepUntil(ctx, s.wake, next)
	}
}

// due lists deliveries that are due and not under way (as many as there is
// room for), when this process's hold on them ends (PostgreSQL), and when
// the next future one falls due. The deliveries it returns with an error
// were taken all the same (see takeWebhooks).
func (s *webhookSender) due(ctx context.Context) ([]int64, time.Time, time.Time, error) {
	s.mu.Lock()
	busy := len(s.inFlight)
	s.mu.Unlock()
	room := s.concurrency - busy
	if room <= 0 {
		return nil, time.Time{}, time.Time{}, nil // a finishing delivery nudges the loop
	}
	now, hold := s.now(), s.hold()
	ids, next, err := s.store.eng.takeWebhooks(ctx, now, room, busy, hold)
	heldUntil := time.UnixMilli(ms(now) + hold.Milliseconds()) // as the claim writes it
	s.mu.Lock()
	defer s.mu.Unlock()
	var free []int64
	for _, id := range ids {
		if !s.inFlight[id] && len(free) < room {
			free = append(free, id)
		}
	}
	return free, heldUntil, next, err
}

// hold is how long a delivery taken from the outbox is this process's
// alone (PostgreSQL): longer than one attempt may take, with room to
// record it. Should the process die, the delivery falls due again then.
func (s *webhookSender) hold() time.Duration {
	return s.deliverer.timeout + 30*time.Second
}

// launch delivers one job's message in its own goroutine; heldUntil is
// when this process's hold on it ends.
func (s *webhookSender) launch(id int64, heldUntil time.Time) {
	s.mu.Lock()
	s.inFlight[id] = true
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.inFlight, id)
			s.mu.Unlock()
			s.nudge()
		}()
		if err := s.deliverJob(id, heldUntil); err != nil {
			s.log.Error("webhook delivery", "job_id", id, "err", err)
		}
	}()
}

// deliverJob makes one attempt for a due job and records it. A job that is
// gone (deleted with its user) or no longer due is left alone. A delivery
// cut short by shutdown before its attempt was recorded is given back, due
// at once for another instance or the next start, if this process's hold
// on it (until heldUntil) is still the one in place.
func (s *webhookSender) deliverJob(id int64, heldUntil time.Time) (err error) {
	ctx := s.deliveries
	defer func() {
		if err == nil || ctx.Err() == nil {
			return
		}
		if errors.Is(err, errCutShort) {
			err = nil // not a failure: the attempt is made again
		}
		back, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownWriteGrace)
		defer cancel()
		err = errors.Join(err, s.store.eng.giveBackWebhook(back, id, heldUntil, s.now()))
	}()
	job, err := s.store.jobByID(ctx, id)
	if errors.Is(err, errNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if job.WebhookState != webhookPending {
		return nil // delivered or given up meanwhile
	}
	body, err := s.store.finalPayload(ctx, job)
	if err != nil {
		return err
	}
	secrets, err := s.store.webhookSecrets(ctx, job.UserID, s.now())
	if err != nil {
		return err
	}
	_, err = s.attempt(ctx, job, secrets, body)
	return err
}

// attempt sends the message once and records the attempt with the next
// step: delivered, given up, or the time of the next try. An attempt cut
// short by shutdown is not recorded (errCutShort). The attempt of a job
// deleted meanwhile has nothing to be recorded in.
func (s *webhookSender) attempt(ctx context.Context, job Job, secrets []string, body []byte) (deliveryResult, error) {
	at := s.now()
	res := s.deliverer.deliver(ctx, job.WebhookURL, "msg_"+job.UUID, secrets, body)
	if ctx.Err() != nil && !res.ok() {
		return res, errCutShort
	}
	if s.observe != nil {
		s.observe(res)
	}
	err := s.writer.do(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		return s.store.recordWebhookAttempt(tx, job.ID, at, res, s.retry, s.now())
	})
	if errors.Is(err, errNotFound) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("record webhook attempt: %w", err)
	}
	if !res.ok() {
		s.log.Warn("webhook attempt failed", "job", job.UUID, "err", res.Err)
	}
	return res, nil
}

// finalPayload renders a completed job's webhook body.
func (s *Store) finalPayload(ctx context.Context, job Job) ([]byte, error) {
	return jobPayload{
		kind: finalPayload,
		job:  job,
		results: func(fn func(NumberResult) error) error {
			return s.eachResult(ctx, job.ID, "", 0, -1, fn)
		},
	}.bytes()
}
