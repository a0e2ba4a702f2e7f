package main

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"time"
)

// shutdownWriteGrace is how long, past the shutdown deadline, a write that
// shutdown must not lose may take: giving claims back to the other
// instances, or finishing a claim of webhook deliveries once sent.
const shutdownWriteGrace = 5 * time.Second

// pool drains queued numbers from the database with three kinds of
// goroutine, each owning its own state: one dispatcher reads due numbers,
// fairly across jobs (queue_dispatch.go); -workers workers restore them
// (queue_workers.go); one recorder writes their results in groups through
// the writer (queue_recorder.go). What is in flight between them is kept
// by the inflight registry (queue_inflight.go).
//
// A claim costs no write: the dispatcher remembers how far it has read
// each job, and a number stays 'pending' in the database until its result
// is committed, so a process that dies leaves nothing to undo and the next
// start reads the pending numbers again.
type pool struct {
	store    *Store
	registry *inflight
	dispatch *dispatcher
	workers  *workerSet
	recorder *recorder
	leases   *leaser // nil where claims never run out (SQLite)
	log      *slog.Logger

	// cancelAcks are the cancellations waiting for other instances
	// (PostgreSQL; see store_pg_cancel.go).
	cancelAcks cancelAcks
}

// claim is one number handed to a worker.
type claim struct {
	JobID    int64
	UserID   int64
	Position int
	Number   string
	Attempts int       // tries already recorded before this one
	DueAt    time.Time // not before this (a retry's wait)
}

// workResult is a worker's report on one claim.
type workResult struct {
	claim
	attemptRecord
	// cancelled: the job was cancelled before the worker started on this
	// number, so it was not tried.
	cancelled bool
}

// newPool builds a pool; start runs it.
func newPool(store *Store, w *writer, backend Restorer, policy retryPolicy, workers int, log *slog.Logger) *pool {
	// The window of numbers claimed and not yet recorded. A backend that
	// answers one number at a time gets two per worker: the one it restores
	// and the next, ready when it finishes, while results wait for their
	// commit. More would only queue a big job's numbers ahead of a new small
	// one (the work channel is first come, first served) and keep them from
	// other instances: 1,024 at 64 workers and a 20 ms upstream kept a small
	// job waiting 0.34 s, two per worker 0.05 s, at the same rate
	// (BENCHMARKS.md). A batch backend answers in microseconds: a larger
	// window means larger groups per commit, and twice the largest group lets
	// the next group be read and restored while one commits, so the writer
	// never waits; still well under a second of queue ahead of a new job.
	maxInFlight := 2 * workers
	if _, ok := backend.(batchRestorer); ok {
		maxInFlight = max(8192, 4*workers)
	}
	registry := newInflight()
	work := make(chan claim, maxInFlight)
	results := make(chan workResult, maxInFlight)
	d := newDispatcher(store, w, registry, work, maxInFlight, log)
	return &pool{
		store:    store,
		registry: registry,
		dispatch: d,
		workers:  newWorkerSet(store, backend, registry, work, results, workers, d.nudge, log),
		recorder: newRecorder(store, w, registry, d, policy, results, log),
		leases:   newLeaser(store, w, registry, d, log),
		log:      log,
	}
}

// start settles jobs cancelled by a process that died, then runs the
// dispatcher, the workers and the recorder.
func (p *pool) start(ctx context.Context) error {
	now := time.Now()
	if err := p.recorder.writer.do(ctx, func(tx *sql.Tx) error { return p.store.recoverCancelled(tx, now) }); err != nil {
		return err
	}
	p.recorder.start()
	p.workers.start()
	p.dispatch.start()
	p.leases.start()
	return nil
}

// nudge tells the dispatcher that numbers may be claimable.
func (p *pool) nudge() { p.dispatch.nudge() }

// rescan tells the dispatcher that numbers may be claimable behind its
// read cursors (another instance gave its claims back).
func (p *pool) rescan() { p.dispatch.rescan() }

// cancelJob stops a job's numbers that no worker has started, and returns
// the positions being restored right now, which run to their end. It is
// called inside the write that cancels the job, so no worker can start a
// number between the two.
func (p *pool) cancelJob(jobID int64) (started []int) {
	return p.registry.stop(jobID, stopCancelled)
}

// isProcessing reports whether one of this process's workers has started a
// number and its result is not recorded yet.
func (p *pool) isProcessing(jobID int64, pos int) bool { return p.registry.isStarted(jobID, pos) }

// stop stops claiming, lets the restores under way finish and records
// their results, all before ctx's deadline: restores still running a
// moment before it are cancelled, and results the database cannot take by
// then are dropped. Whatever was not recorded stays pending in the
// database for the next start, or, on PostgreSQL, is given back for the
// other instances to take at once (else when its lease runs out).
func (p *pool) stop(ctx context.Context) {
	p.dispatch.stop()
	grace := 10 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		grace = time.Until(deadline) * 9 / 10 // the rest is for recording
	}
	p.workers.stop(grace)
	var giveUp sync.Once
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			giveUp.Do(p.recorder.giveUp)
		case <-stopped:
		}
	}()
	p.recorder.stop()
	close(stopped)
	p.leases.stop()
	release, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownWriteGrace)
	defer cancel()
	if err := p.store.eng.releaseClaims(release); err != nil {
		p.log.Warn("claims not given back; other instances take them over when their leases run out", "err", err)
	}
}
