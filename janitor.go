package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// janitor deletes finished jobs older than -retention, idempotency keys
// past their day, and console sessions past their expiry. It deletes in small transactions through the writer, so a
// job of 100,000 numbers goes away in many short steps between which API
// writes get their turn.
type janitor struct {
	store     *Store
	writer    *writer
	retention time.Duration
	chunk     int // rows deleted per transaction
	log       *slog.Logger
	now       func() time.Time
	cancel    context.CancelFunc
	done      chan struct{}
}

// newJanitor builds a janitor; start runs it.
func newJanitor(store *Store, w *writer, retention time.Duration, log *slog.Logger) *janitor {
	return &janitor{store: store, writer: w, retention: retention, chunk: 2000, log: log, now: time.Now, done: make(chan struct{})}
}

// start runs a sweep now and then one per interval, until stop.
func (j *janitor) start(ctx context.Context) {
	ctx, j.cancel = context.WithCancel(context.WithoutCancel(ctx))
	interval := min(max(j.retention/24, time.Minute), time.Hour)
	go func() {
		defer close(j.done)
		for {
			// One instance at a time sweeps a database that several share.
			_, err := j.store.eng.exclusively(ctx, retentionLock, func() error { return j.sweep(ctx) })
			if err != nil && ctx.Err() == nil {
				j.log.Error("retention sweep", "err", err)
			}
			sleepUntil(ctx, nil, j.now().Add(interval))
			if ctx.Err() != nil {
				return
			}
		}
	}()
}

// stop ends the janitor, waiting for the step under way.
func (j *janitor) stop() {
	j.cancel()
	<-j.done
}

// sweep deletes everything that is due, one chunk per transaction.
func (j *janitor) sweep(ctx context.Context) error {
	now := j.now()
	if err := j.writer.do(ctx, func(tx *sql.Tx) error {
		return j.store.expireIdempotencyKeys(tx, now)
	}); err != nil {
		return fmt.Errorf("expire idempotency keys: %w", err)
	}
	if err := j.writer.do(ctx, func(tx *sql.Tx) error { return j.store.deleteExpiredSessions(tx, now) }); err != nil {
		return err
	}
	if j.retention <= 0 {
		return nil
	}
	deleted := 0
	defer func() {
		if deleted > 0 {
			j.log.Info("deleted jobs past retention", "jobs", deleted, "retention", j.retention)
		}
	}()
	for ctx.Err() == nil {
		jobID, found, err := j.store.nextExpiredJob(ctx, now.Add(-j.retention))
		if err != nil || !found {
			return err
		}
		if err := j.deleteJob(ctx, jobID); err != nil {
			return err
		}
		deleted++
	}
	return ctx.Err()
}

// deleteJob removes one job's rows a chunk at a time, the job row last.
func (j *janitor) deleteJob(ctx context.Context, jobID int64) error {
	for {
		var finished bool
		err := j.writer.do(ctx, func(tx *sql.Tx) (err error) {
			finished, err = j.store.deleteJobChunk(tx, jobID, j.chunk)
			return err
		})
		if err != nil {
			return fmt.Errorf("delete job %d: %w", jobID, err)
		}
		if finished {
			return nil
		}
	}
}
