package main

import (
	"context"
	"database/sql"
	"log/slog"
	"time"
)

// leaser keeps this process's claims alive where they can run out
// (PostgreSQL, shared by several instances): every period it renews the
// leases of the numbers it holds (the workers' and the waiting retries')
// in one statement, settles the cancelled jobs whose last numbers no live
// instance holds any more, and makes the dispatcher read every job from its
// start, where numbers whose holder died have fallen free.
type leaser struct {
	store    *Store
	writer   *writer
	registry *inflight
	dispatch *dispatcher
	period   time.Duration
	log      *slog.Logger
	cancel   context.CancelFunc
	done     chan struct{}
}

// newLeaser builds a leaser for the store's engine; nil where claims never
// run out (SQLite).
func newLeaser(store *Store, w *writer, registry *inflight, d *dispatcher, log *slog.Logger) *leaser {
	period := store.eng.leaseRenewal()
	if period <= 0 {
		return nil
	}
	return &leaser{store: store, writer: w, registry: registry, dispatch: d, period: period, log: log, done: make(chan struct{})}
}

// start runs the leaser until stop.
func (l *leaser) start() {
	if l == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.run(ctx)
}

// stop ends the leaser.
func (l *leaser) stop() {
	if l == nil {
		return
	}
	l.cancel()
	<-l.done
}

// run renews, settles and rescans once a period.
func (l *leaser) run(ctx context.Context) {
	defer close(l.done)
	for sleepUntil(ctx, nil, time.Now().Add(l.period)) {
		l.round(ctx)
	}
}

// round is one period's work.
func (l *leaser) round(ctx context.Context) {
	held := append(l.registry.heldClaims(), l.dispatch.waitingRetries()...)
	if err := l.store.eng.renewClaims(ctx, held); err != nil && ctx.Err() == nil {
		l.log.Warn("renew leases; will try again", "claims", len(held), "err", err)
	}
	now := time.Now()
	err := l.writer.do(ctx, func(tx *sql.Tx) error { return l.store.recoverCancelled(tx, now) })
	if err != nil && ctx.Err() == nil {
		l.log.Warn("settle cancelled jobs", "err", err)
	}
	l.dispatch.rescan()
}
