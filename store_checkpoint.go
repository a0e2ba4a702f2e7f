package main

import (
	"context"
	"database/sql"
	"log/slog"
	"time"
)

// checkpointer copies the write-ahead log back into the database file from
// a connection of its own, so that the writer's commits never stall on a
// checkpoint: the writer's connection has automatic checkpoints turned off
// (see openStore), and this loop runs a PASSIVE checkpoint, which never
// blocks the writer or the readers, whenever commits have happened.
type checkpointer struct {
	db       *sql.DB
	log      *slog.Logger
	interval time.Duration // at most one checkpoint per interval
	wake     chan struct{}
	cancel   context.CancelFunc
	done     chan struct{}
}

// newCheckpointer starts the loop on db, a one-connection pool.
func newCheckpointer(db *sql.DB, log *slog.Logger) *checkpointer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, log: log, interval: 200 * time.Millisecond,
		wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go c.loop(ctx)
	return c
}

// committed tells the checkpointer that the log has grown; a store
// without one (PostgreSQL's) has nothing to do.
func (c *checkpointer) committed() {
	if c == nil {
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// stop ends the loop after one last checkpoint.
func (c *checkpointer) stop() {
	c.cancel()
	<-c.done
	c.checkpoint(context.Background())
}

// loop checkpoints after commits, no more often than the interval.
func (c *checkpointer) loop(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-c.wake:
		case <-ctx.Done():
			return
		}
		c.checkpoint(ctx)
		t := time.NewTimer(c.interval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// checkpoint runs one PASSIVE checkpoint.
func (c *checkpointer) checkpoint(ctx context.Context) {
	var busy, logFrames, done int
	if err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &done); err != nil {
		if ctx.Err() == nil {
			c.log.Warn("checkpoint", "err", err)
		}
	}
}
