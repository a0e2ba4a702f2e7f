package main

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"golang.org/x/time/rate"
)

// service is everything the server runs besides its listener: the store,
// the writer, the worker pool, the webhook sender, the janitor and the HTTP
// handlers. Tests drive its handlers without a socket.
type service struct {
	store    *Store
	writer   *writer
	pool     *pool
	webhooks *webhookSender
	janitor  *janitor
	app      *app
	log      *slog.Logger
	// stopListening ends the wait for other instances' notifications;
	// listening is closed once it has ended.
	stopListening context.CancelFunc
	listening     chan struct{}

	shutdownTimeout time.Duration
}

// startService opens the database and starts the background work.
func startService(ctx context.Context, cfg serveConfig, log *slog.Logger) (*service, error) {
	store, err := openServerStore(cfg.db, cfg.lease, log)
	if err != nil {
		return nil, err
	}
	if err := greet(ctx, cfg, store, log); err != nil {
		store.Close()
		return nil, err
	}
	m := newMetrics(store.queuedNumbers)
	if store.turns != nil {
		m.watchTurns(store.turns)
	}
	w := newStoreWriter(store, log)
	store.write = w.do // the admin API's writes join the group commits
	w.onStoreError = func(c storeErrorClass) { m.storeErrors.WithLabelValues(c.String()).Inc() }
	w.observe = func(d time.Duration, n int) {
		m.commit(d, n)
		store.ckpt.committed()
	}
	var backend Restorer = &inventoryBackend{store: store, window: cfg.restoreWindow, now: time.Now, log: log}
	if cfg.backend == "upstream" {
		backend = newUpstreamBackend(cfg.upstreamURL, cfg.upstreamUser, cfg.upstreamPassword, cfg.restoreTimeout, userAgent())
	}
	if cfg.restorer != nil {
		backend = cfg.restorer
	}
	backend = m.instrument(backend, cfg.backend)
	retry := retryPolicy{maxAttempts: cfg.restoreMaxAttempts, base: cfg.restoreRetryBase, max: maxRestoreRetryWait}
	p := newPool(store, w, backend, retry, cfg.workers, log)
	sender := newWebhookSender(store, w,
		newDeliverer(cfg.webhookTimeout, cfg.allowPrivateWebhooks(), userAgent()),
		retryPolicy{maxAttempts: cfg.webhookMaxAttempts, base: cfg.webhookRetryBase, max: cfg.webhookRetryMax}, log)
	sender.observe = m.webhookAttempt
	progress := newProgressTracker(time.Now)
	p.recorder.onRecorded = func(batch []workResult, out recordOutcome) {
		if store.pg == nil {
			// With several instances each records a share of a job: the
			// projection falls back to the job's average since it started,
			// which counts every instance's results.
			progress.recorded(batch, out)
		}
		for o, n := range out.finals {
			m.numbersFinishedAs(o, n)
		}
		m.jobsFinished.WithLabelValues(string(jobCompleted)).Add(float64(out.jobsCompleted))
		if len(out.completedJobs) > 0 {
			sender.nudge()
		}
	}
	if err := p.start(ctx); err != nil {
		w.stop()
		store.Close()
		return nil, err
	}
	sender.start(ctx)
	jan := newJanitor(store, w, cfg.retention, log)
	jan.start(ctx)
	listenCtx, stopListening := context.WithCancel(context.WithoutCancel(ctx))
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		store.eng.listen(listenCtx, func(channel, payload string) {
			switch channel {
			case pgWorkChannel:
				p.nudge()
			case pgReleasedChannel:
				p.rescan()
			case pgWebhookChannel:
				sender.nudge()
			case pgCancelChannel:
				p.cancelledElsewhere(listenCtx, payload)
			case pgCancelDoneChannel:
				p.cancelAcks.deliver(payload)
			}
		}, log)
	}()

	syncRetry := retry
	syncRetry.max = min(retry.max, 30*time.Second) // a client is waiting
	a := &app{store: store, writer: w, pool: p, webhooks: sender, backend: backend, retry: syncRetry,
		preview:         newPreviewer(cfg, store, log),
		idempotencyWait: defaultIdempotencyWait,
		cfg:             cfg, log: log, now: time.Now, metrics: m, progress: progress,
		authFailures: newLimiterSet(authFailureRate, authFailureBurst), bodies: newBodyBudget(cfg.maxBodyMemory, cmp.Or(cfg.bodyGrace, bodyGrace))}
	if cfg.rateLimit > 0 {
		a.userLimits = newLimiterSet(rate.Limit(cfg.rateLimit), cfg.rateBurst)
	}
	logAdminAPI(cfg, log)
	return &service{store: store, writer: w, pool: p, webhooks: sender, janitor: jan, app: a, log: log,
		stopListening: stopListening, listening: listening, shutdownTimeout: cfg.shutdownTimeout}, nil
}

// stop is stopBy with -shutdown-timeout from now.
func (s *service) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	s.stopBy(ctx)
}

// stopBy lets the restores under way finish, records their results, stops
// the sender and the janitor, and closes the database, in that order, all
// before ctx's deadline: what is still under way then is cut short and
// left for the next start (on PostgreSQL, given back to the other
// instances within shutdownWriteGrace more).
func (s *service) stopBy(ctx context.Context) {
	// The pool stops first, still listening: while its restores finish
	// it holds claims, and a cancellation elsewhere waits for its answer.
	s.pool.stop(ctx)
	s.stopListening()
	<-s.listening
	s.webhooks.stop(ctx)
	s.janitor.stop()
	s.writer.stop()
	s.store.Close()
	s.log.Info("stopped")
}
