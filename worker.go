package main

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// pool drains queued numbers from the database. One dispatcher goroutine
// claims due numbers in batches, fairly across jobs; -workers goroutines
// restore them; one recorder goroutine writes their results in groups through
// the writer. Nothing lives only in memory: a claim is a committed
// 'processing' row, and a process that dies leaves rows that the next start
// puts back to 'pending'.
type pool struct {
	store    *Store
	writer   *writer
	backend  Restorer
	policy   retryPolicy
	workers  int
	log      *slog.Logger
	now      func() time.Time
	grace    time.Duration // how long in-flight restores may run on after stop
	maxBatch int           // results per write at most

	// maxInFlight bounds the numbers claimed and not yet recorded, which
	// bounds memory and how far a new job can be queued behind older ones.
	maxInFlight int
	inFlight    atomic.Int64

	// onRecorded is told what each group of results did once committed.
	onRecorded func(out recordOutcome)

	// cancelledJobs holds the ids of jobs cancelled while this process
	// runs: their claimed numbers are cancelled rather than tried.
	cancelledJobs sync.Map

	wake    chan struct{} // size 1: something may be claimable
	work    chan claim
	results chan workResult

	stopDispatch  context.CancelFunc
	stopWorkers   chan struct{}
	cancelRestore context.CancelFunc
	dispatcherWG  sync.WaitGroup
	workerWG      sync.WaitGroup
	recorderDone  chan struct{}
}

// newPool builds a pool; start runs it.
func newPool(store *Store, w *writer, backend Restorer, policy retryPolicy, workers int, log *slog.Logger) *pool {
	inFlight := max(1024, 4*workers)
	return &pool{
		store: store, writer: w, backend: backend, policy: policy, workers: workers, log: log,
		now: time.Now, grace: 30 * time.Second, maxBatch: 2000, maxInFlight: inFlight,
		onRecorded:   func(recordOutcome) {},
		wake:         make(chan struct{}, 1),
		work:         make(chan claim, inFlight),
		results:      make(chan workResult, inFlight),
		stopWorkers:  make(chan struct{}),
		recorderDone: make(chan struct{}),
	}
}

// start takes back the numbers a previous process left in flight, then runs
// the dispatcher, the workers and the recorder.
func (p *pool) start(ctx context.Context) error {
	var recovered int64
	err := p.writer.do(ctx, func(tx *sql.Tx) (err error) {
		recovered, err = recoverInFlight(tx, p.now())
		return err
	})
	if err != nil {
		return err
	}
	if recovered > 0 {
		p.log.Info("numbers left in flight by the last run are queued again", "numbers", recovered)
	}
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.stopDispatch = cancel
	rctx, cancelRestore := context.WithCancel(context.WithoutCancel(ctx))
	p.cancelRestore = cancelRestore
	p.dispatcherWG.Add(1)
	go p.dispatch(dctx)
	for range p.workers {
		p.workerWG.Add(1)
		go p.work1(rctx)
	}
	go p.record()
	p.nudge()
	return nil
}

// jobCancelled tells the workers to skip the job's numbers they have not
// started yet.
func (p *pool) jobCancelled(jobID int64) { p.cancelledJobs.Store(jobID, true) }

// nudge tells the dispatcher that numbers may be claimable.
func (p *pool) nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// stop stops claiming, lets the restores under way finish (for at most the
// grace period), records their results, and returns claimed but unstarted
// numbers to the queue.
func (p *pool) stop() {
	p.stopDispatch()
	p.dispatcherWG.Wait()
	close(p.stopWorkers)
	done := make(chan struct{})
	go func() { p.workerWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(p.grace):
		p.log.Warn("restores still running at shutdown are cancelled")
		p.cancelRestore()
		<-done
	}
	p.cancelRestore()
	close(p.results)
	<-p.recorderDone
	p.releaseUnstarted()
}

// releaseUnstarted puts numbers claimed but never handed to a worker back to
// pending (a restart would too; this keeps the status honest meanwhile).
func (p *pool) releaseUnstarted() {
	var left []claim
	for {
		select {
		case c := <-p.work:
			left = append(left, c)
			continue
		default:
		}
		break
	}
	if len(left) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.writer.do(ctx, func(tx *sql.Tx) error {
		for _, c := range left {
			if _, err := tx.Exec("UPDATE job_numbers SET status = 'pending' WHERE job_id = ? AND position = ? AND status = 'processing'",
				c.JobID, c.Position); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		p.log.Warn("could not release unstarted numbers; the next start will", "err", err)
	}
}

// dispatch claims due numbers whenever there is room for them, and sleeps
// until nudged or until the earliest retry falls due.
func (p *pool) dispatch(ctx context.Context) {
	defer p.dispatcherWG.Done()
	var cursor int64
	minClaim := max(1, p.maxInFlight/8)
	errWait := time.Second
	for ctx.Err() == nil {
		var due time.Time
		if free := p.maxInFlight - int(p.inFlight.Load()); free >= minClaim {
			var claims []claim
			now := p.now()
			err := p.writer.do(ctx, func(tx *sql.Tx) (err error) {
				claims, cursor, err = claimNumbers(tx, now, free, 8, cursor)
				if err == nil && len(claims) == 0 {
					due, err = nextDue(tx, now)
				}
				return err
			})
			if err != nil {
				if ctx.Err() == nil {
					p.log.Error("claim numbers", "err", err)
					due = p.now().Add(errWait)
				}
			} else {
				p.inFlight.Add(int64(len(claims)))
				for _, c := range claims {
					p.work <- c // never blocks: capacity is maxInFlight
				}
				if len(claims) > 0 {
					continue
				}
			}
		}
		sleepUntil(ctx, p.wake, due, p.now)
	}
}

// sleepUntil waits for a nudge on wake, for ctx, or until `until` when it
// is set: the background loops never poll on a fixed interval.
func sleepUntil(ctx context.Context, wake <-chan struct{}, until time.Time, now func() time.Time) {
	var timer <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(max(0, until.Sub(now())))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-wake:
	case <-timer:
	case <-ctx.Done():
	}
}

// work1 is one worker: it restores claimed numbers until stopped.
func (p *pool) work1(ctx context.Context) {
	defer p.workerWG.Done()
	onPanic := func(v any, stack []byte) {
		p.log.Error("restore panicked", "panic", v, "stack", string(stack))
	}
	for {
		select {
		case <-p.stopWorkers:
			return
		default:
		}
		select {
		case <-p.stopWorkers:
			return
		case c := <-p.work:
			if _, cancelled := p.cancelledJobs.Load(c.JobID); cancelled {
				p.results <- workResult{claim: c, cancelled: true}
				continue
			}
			start := p.now()
			o := safeRestore(ctx, p.backend, c.UserID, c.Number, onPanic)
			p.results <- workResult{claim: c, attemptRecord: attemptRecord{Started: start, Finished: p.now(), Outcome: o}}
		}
	}
}

// record writes worker results in groups: whatever has arrived while the
// previous group was committing goes into the next transaction.
func (p *pool) record() {
	defer close(p.recorderDone)
	for r := range p.results {
		batch := []workResult{r}
	gather:
		for len(batch) < p.maxBatch {
			select {
			case r, ok := <-p.results:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			default:
				break gather
			}
		}
		p.recordBatch(batch)
	}
}

// recordBatch writes one group, trying again while the database refuses
// (a full disk, say) so that no result is dropped while the process lives.
func (p *pool) recordBatch(batch []workResult) {
	wait := 100 * time.Millisecond
	for {
		var out recordOutcome
		err := p.writer.do(context.Background(), func(tx *sql.Tx) (err error) {
			out, err = recordResults(tx, batch, p.policy, p.now())
			return err
		})
		if err == nil {
			p.inFlight.Add(-int64(len(batch)))
			p.nudge()
			for _, id := range out.completedJobs {
				p.cancelledJobs.Delete(id)
			}
			p.onRecorded(out)
			return
		}
		p.log.Error("record results; will try again", "err", err, "results", len(batch))
		if err == errWriterClosed {
			return // the numbers stay 'processing' and are recovered at the next start
		}
		time.Sleep(wait)
		wait = min(2*wait, 5*time.Second)
	}
}
