package main

import (
	"context"
	"database/sql"
	"log/slog"
	"sync/atomic"
	"time"
)

// recorder writes the workers' results in groups through the writer:
// whatever has arrived while the previous group was committing goes into
// the next transaction. It never holds a slot for ever: a write the
// database refuses for now is tried again with backoff until it succeeds
// or the pool stops; a write that can never succeed is split by job, and
// a job whose results cannot be written even as failures is stopped, so
// every other job goes on.
type recorder struct {
	store      *Store
	writer     *writer
	registry   *inflight
	dispatch   *dispatcher
	policy     retryPolicy
	results    chan workResult
	maxBatch   int
	log        *slog.Logger
	now        func() time.Time
	storeRetry retryPolicy // the waits after a transient database failure

	// onRecorded is told each group of results, and what it did, once
	// committed.
	onRecorded func(batch []workResult, out recordOutcome)

	// dropped counts the results not recorded as no longer this process's.
	dropped atomic.Int64

	stopCtx context.Context // ended by giveUp: waiting writes are dropped
	giveUp  context.CancelFunc
	done    chan struct{}
}

// newRecorder builds a recorder; start runs it.
func newRecorder(store *Store, w *writer, registry *inflight, d *dispatcher, policy retryPolicy,
	results chan workResult, log *slog.Logger) *recorder {
	ctx, cancel := context.WithCancel(context.Background())
	return &recorder{
		store: store, writer: w, registry: registry, dispatch: d, policy: policy, results: results,
		maxBatch: 4096, log: log, now: time.Now,
		storeRetry: retryPolicy{base: 100 * time.Millisecond, max: 5 * time.Second},
		onRecorded: func([]workResult, recordOutcome) {}, stopCtx: ctx, giveUp: cancel, done: make(chan struct{}),
	}
}

// start runs the recorder until stop.
func (r *recorder) start() { go r.run() }

// stop records what the workers sent (they must have stopped) and returns
// when done, or when giveUp drops what is left.
func (r *recorder) stop() {
	close(r.results)
	<-r.done
	r.giveUp()
}

// run gathers results and records them a group at a time.
func (r *recorder) run() {
	defer close(r.done)
	for res := range r.results {
		batch := []workResult{res}
	gather:
		for len(batch) < r.maxBatch {
			select {
			case res, ok := <-r.results:
				if !ok {
					break gather
				}
				batch = append(batch, res)
			default:
				break gather
			}
		}
		r.record(batch)
	}
}

// record writes one group, waiting out transient failures, and splits a
// group that fails for good.
func (r *recorder) record(batch []workResult) {
	if err := r.writeUntilDone(batch); err != nil {
		r.recordApart(batch, err)
	}
}

// writeUntilDone writes batch, trying again with backoff while the
// database refuses it for now. It returns nil once the batch is recorded
// or dropped (the pool stopping), and a permanent failure as it is.
func (r *recorder) writeUntilDone(batch []workResult) error {
	for try := 1; ; try++ {
		var out recordOutcome
		err := r.writer.do(r.stopCtx, func(tx *sql.Tx) (err error) {
			out, err = r.store.recordResults(tx, batch, r.policy, r.now())
			return err
		})
		switch classifyStoreError(err) {
		case storeOK:
			r.finish(batch, out)
			return nil
		case storePermanent:
			return err
		}
		if r.stopCtx.Err() != nil {
			r.log.Warn("results not recorded before shutdown; their numbers stay pending", "results", len(batch), "err", err)
			r.abandon(batch)
			return nil
		}
		wait := backoff(r.storeRetry.base, r.storeRetry.max, try)
		r.log.Error("record results; will try again", "err", err, "results", len(batch), "wait", wait)
		sleepUntil(r.stopCtx, nil, time.Now().Add(wait)) // cut short by giveUp: the next try drops the batch
	}
}

// recordApart handles a group the database will never take as it is,
// so that what fails is only the numbers concerned: the group is split by
// job, then in halves, each part recorded on its own; a single result that
// still fails is recorded as an internal failure; and if even that fails,
// its job is stopped for the life of this process (its numbers stay
// pending) while every other job goes on.
func (r *recorder) recordApart(batch []workResult, cause error) {
	if parts := splitResults(batch); len(parts) > 1 {
		for _, part := range parts {
			r.record(part)
		}
		return
	}
	res := batch[0]
	r.log.Error("a result cannot be recorded; recording it as an internal failure", "job_id", res.JobID,
		"number", res.Number, "err", cause)
	failed := res
	if !failed.cancelled {
		failed.Outcome = internalFailure() // final: never retried
	}
	if err := r.writeUntilDone([]workResult{failed}); err != nil {
		r.log.Error("job stopped: its results cannot be written; its numbers stay pending", "job_id", res.JobID,
			"err", err)
		r.registry.stop(res.JobID, stopGone)
		r.abandon(batch)
	}
}

// splitResults splits a group in two: by job when it holds several (the
// first job apart from the rest), else in halves. One result is not split.
func splitResults(batch []workResult) [][]workResult {
	if len(batch) < 2 {
		return [][]workResult{batch}
	}
	var first, rest []workResult
	for _, res := range batch {
		if res.JobID == batch[0].JobID {
			first = append(first, res)
		} else {
			rest = append(rest, res)
		}
	}
	if len(rest) > 0 {
		return [][]workResult{first, rest}
	}
	return [][]workResult{batch[:len(batch)/2], batch[len(batch)/2:]}
}

// finish frees the recorded claims and hands on what the write learned:
// retries to the dispatcher, jobs found gone to the registry. Results
// dropped because this process no longer held their numbers (cancelled
// meanwhile, or on PostgreSQL taken over once its lease ran out) are
// counted and logged.
func (r *recorder) finish(batch []workResult, out recordOutcome) {
	if out.dropped > 0 {
		total := r.dropped.Add(int64(out.dropped))
		r.log.Warn("results dropped: their numbers were no longer this instance's (cancelled meanwhile, or taken over by another instance once this one's lease ran out)",
			"results", out.dropped, "dropped_so_far", total)
	}
	for _, id := range out.goneJobs {
		r.registry.stop(id, stopGone)
	}
	r.registry.release(claimsOf(batch))
	r.dispatch.retryLater(out.retries)
	r.dispatch.nudge()
	r.onRecorded(batch, out)
}

// abandon frees claims whose results will not be written.
func (r *recorder) abandon(batch []workResult) {
	r.registry.release(claimsOf(batch))
	r.dispatch.nudge()
}

// claimsOf returns the claims of results.
func claimsOf(batch []workResult) []claim {
	out := make([]claim, len(batch))
	for i, res := range batch {
		out[i] = res.claim
	}
	return out
}
