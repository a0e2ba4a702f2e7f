package main

import (
	"context"
	"database/sql"
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
// stopped.
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
}

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
	go s.loop(ctx)
}

// stop ends the loop and waits for the deliveries under way (each bounded by
// the webhook timeout) to be recorded.
func (s *webhookSender) stop() {
	s.cancel()
	<-s.done
	s.wg.Wait()
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
		ids, next, err := s.due(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("list due webhooks", "err", err)
			next = s.now().Add(time.Second)
		}
		for _, id := range ids {
			s.launch(id)
		}
		sleepUntil(ctx, s.wake, next, s.now)
	}
}

// due lists deliveries that are due and not under way (as many as there is
// room for), and when the next future one falls due.
func (s *webhookSender) due(ctx context.Context) ([]int64, time.Time, error) {
	s.mu.Lock()
	busy := len(s.inFlight)
	s.mu.Unlock()
	room := s.concurrency - busy
	if room <= 0 {
		return nil, time.Time{}, nil // a finishing delivery nudges the loop
	}
	now := ms(s.now())
	rows, err := s.store.r.QueryContext(ctx, `SELECT id FROM jobs WHERE webhook_state = 'pending' AND webhook_next_at <= ?
		ORDER BY webhook_next_at LIMIT ?`, now, room+busy)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer rows.Close()
	var ids []int64
	s.mu.Lock()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			s.mu.Unlock()
			return nil, time.Time{}, err
		}
		if !s.inFlight[id] && len(ids) < room {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, err
	}
	var next sql.NullInt64
	err = s.store.r.QueryRowContext(ctx,
		"SELECT min(webhook_next_at) FROM jobs WHERE webhook_state = 'pending' AND webhook_next_at > ?", now).Scan(&next)
	return ids, fromMs(next), err
}

// launch delivers one job's message in its own goroutine.
func (s *webhookSender) launch(id int64) {
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
		if err := s.deliverJob(id); err != nil {
			s.log.Error("webhook delivery", "job_id", id, "err", err)
		}
	}()
}

// deliverJob makes one attempt for a due job and records it.
func (s *webhookSender) deliverJob(id int64) error {
	ctx := context.Background()
	job, err := s.store.jobByID(ctx, id)
	if err != nil {
		return err
	}
	if job.WebhookState != "pending" {
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
// step: delivered, given up, or the time of the next try.
func (s *webhookSender) attempt(ctx context.Context, job Job, secrets []string, body []byte) (deliveryResult, error) {
	at := s.now()
	res := s.deliverer.deliver(ctx, job.WebhookURL, "msg_"+job.UUID, secrets, body)
	if s.observe != nil {
		s.observe(res)
	}
	err := s.writer.do(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		return s.recordAttempt(tx, job.ID, at, res)
	})
	if err != nil {
		return res, fmt.Errorf("record webhook attempt: %w", err)
	}
	if !res.ok() {
		s.log.Warn("webhook attempt failed", "job", job.UUID, "err", res.Err)
	}
	return res, nil
}

// recordAttempt stores one attempt and the job's new delivery state.
func (s *webhookSender) recordAttempt(tx *sql.Tx, jobID int64, at time.Time, res deliveryResult) error {
	var attempts int
	if err := tx.QueryRow("SELECT webhook_attempts FROM jobs WHERE id = ?", jobID).Scan(&attempts); err != nil {
		return err
	}
	attempts++
	var status any
	if res.HTTPStatus != 0 {
		status = res.HTTPStatus
	}
	if _, err := tx.Exec(`INSERT INTO webhook_attempts (job_id, attempt, at, http_status, error, duration_ms)
		VALUES (?, ?, ?, ?, ?, ?)`, jobID, attempts, ms(at), status, nullString(res.Err), res.Duration.Milliseconds()); err != nil {
		return err
	}
	state, next, delivered := "pending", any(nil), any(nil)
	switch {
	case res.ok():
		state, delivered = "delivered", ms(s.now())
	case res.Final || attempts >= s.retry.maxAttempts:
		state = "failed"
	default:
		next = ms(s.now().Add(backoff(s.retry.base, s.retry.max, attempts)))
	}
	_, err := tx.Exec(`UPDATE jobs SET webhook_attempts = ?, webhook_state = ?, webhook_next_at = ?,
		webhook_delivered_at = coalesce(?, webhook_delivered_at), webhook_error = ? WHERE id = ?`,
		attempts, state, next, delivered, nullString(res.Err), jobID)
	return err
}

// webhookSecrets returns the secrets a user's messages are signed with: the
// current one and, for a day after a rotation, the previous one.
func (s *Store) webhookSecrets(ctx context.Context, userID int64, now time.Time) ([]string, error) {
	var secret string
	var previous sql.NullString
	var until sql.NullInt64
	err := s.rq.queryRow(ctx, "SELECT webhook_secret, previous_secret, previous_until FROM users WHERE id = ?", userID).
		Scan(&secret, &previous, &until)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	secrets := []string{secret}
	if previous.Valid && until.Valid && until.Int64 > ms(now) {
		secrets = append(secrets, previous.String)
	}
	return secrets, nil
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
