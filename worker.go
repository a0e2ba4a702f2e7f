package main

import (
	"cmp"
	"container/heap"
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// pool drains queued numbers from the database. One dispatcher goroutine
// reads due numbers in batches, fairly across jobs; -workers goroutines
// restore them; one recorder goroutine writes their results in groups through
// the writer. A claim costs no write: the dispatcher remembers how far it
// has read each job, and a number stays 'pending' in the database until its
// result is committed, so a process that dies leaves nothing to undo and the
// next start simply reads the pending numbers again.
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

	// maxInFlight bounds the numbers handed out and not yet recorded, which
	// bounds memory and how far a new job can queue behind older ones.
	maxInFlight int
	inFlight    atomic.Int64

	// onRecorded is told what each group of results did once committed.
	onRecorded func(out recordOutcome)

	mu        sync.Mutex
	cursors   map[int64]int        // per active job: the last position read
	claimed   map[inflightKey]bool // handed out, not yet recorded; true once started
	cancelled map[int64]bool       // jobs cancelled while this process runs
	started   map[int64]bool       // jobs marked 'processing' by this process
	retries   claimHeap            // numbers waiting for their next attempt
	lastJob   int64                // the job served last, so the next read starts after it

	wake    chan struct{} // size 1: something may be claimable
	work    chan claim
	results chan workResult

	stopDispatch  context.CancelFunc
	stopWorkers   chan struct{}
	cancelRestore context.CancelFunc
	dispatcherWG  sync.WaitGroup
	markWG        sync.WaitGroup
	workerWG      sync.WaitGroup
	recorderDone  chan struct{}
}

// inflightKey names one number of one job.
type inflightKey struct {
	job int64
	pos int
}

// claimHeap orders waiting retries by when they fall due.
type claimHeap []claim

// Len implements heap.Interface.
func (h claimHeap) Len() int { return len(h) }

// Less implements heap.Interface.
func (h claimHeap) Less(i, j int) bool { return h[i].DueAt.Before(h[j].DueAt) }

// Swap implements heap.Interface.
func (h claimHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

// Push implements heap.Interface.
func (h *claimHeap) Push(x any) { *h = append(*h, x.(claim)) }

// Pop implements heap.Interface.
func (h *claimHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// newPool builds a pool; start runs it.
func newPool(store *Store, w *writer, backend Restorer, policy retryPolicy, workers int, log *slog.Logger) *pool {
	// A batch backend answers in microseconds: a larger window means larger
	// groups per commit, and twice the largest group lets the next group be
	// read and restored while one commits, so the writer never waits; still
	// well under a second of queue ahead of a new job.
	inFlight := max(1024, 4*workers)
	if _, ok := backend.(batchRestorer); ok {
		inFlight = max(8192, inFlight)
	}
	return &pool{
		store: store, writer: w, backend: backend, policy: policy, workers: workers, log: log,
		now: time.Now, grace: 30 * time.Second, maxBatch: 4096, maxInFlight: inFlight,
		onRecorded:   func(recordOutcome) {},
		cursors:      map[int64]int{},
		claimed:      map[inflightKey]bool{},
		cancelled:    map[int64]bool{},
		started:      map[int64]bool{},
		wake:         make(chan struct{}, 1),
		work:         make(chan claim, inFlight),
		results:      make(chan workResult, inFlight),
		stopWorkers:  make(chan struct{}),
		recorderDone: make(chan struct{}),
	}
}

// start settles jobs cancelled by a process that died, then runs the
// dispatcher, the workers and the recorder.
func (p *pool) start(ctx context.Context) error {
	err := p.writer.do(ctx, func(tx *sql.Tx) error { return recoverCancelled(tx, p.now()) })
	if err != nil {
		return err
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

// cancelJob makes the workers skip the job's numbers they have not started,
// and returns the positions they have started, which run to the end.
func (p *pool) cancelJob(jobID int64) (started []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cancelled[jobID] = true
	for k, running := range p.claimed {
		if k.job == jobID && running {
			started = append(started, k.pos)
		}
	}
	return started
}

// isClaimed reports whether a number is with the workers right now, for the
// status endpoint to show it as 'processing'.
func (p *pool) isClaimed(jobID int64, pos int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.claimed[inflightKey{jobID, pos}]
	return ok
}

// nudge tells the dispatcher that numbers may be claimable.
func (p *pool) nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// stop stops claiming, lets the restores under way finish (for at most the
// grace period) and records their results. Numbers handed out but not
// started stay pending in the database, for the next start.
func (p *pool) stop() {
	p.stopDispatch()
	p.dispatcherWG.Wait()
	p.markWG.Wait()
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
}

// markStarted records that jobs have started, without making the
// dispatcher wait for the commit (it joins the next group commit). A job
// that completes first is left alone.
func (p *pool) markStarted(ids []int64) {
	idsJSON, _ := json.Marshal(ids)
	now := ms(p.now())
	p.markWG.Add(1)
	go func() {
		defer p.markWG.Done()
		err := p.writer.do(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE jobs SET status = 'processing', started_at = coalesce(started_at, ?)
				WHERE id IN (SELECT value FROM json_each(?)) AND status = 'pending'`, now, string(idsJSON))
			return err
		})
		if err != nil && err != errWriterClosed {
			p.log.Warn("mark jobs started", "err", err)
		}
	}()
}

// dispatch hands out due numbers whenever there is room for them: first
// retries that fell due, then numbers not read yet. It sleeps until nudged
// or until the next retry falls due.
func (p *pool) dispatch(ctx context.Context) {
	defer p.dispatcherWG.Done()
	minClaim := max(1, p.maxInFlight/8)
	for ctx.Err() == nil {
		now := p.now()
		free := p.maxInFlight - int(p.inFlight.Load())
		var batch []claim
		var nextRetry time.Time
		p.mu.Lock()
		for len(batch) < free && len(p.retries) > 0 && !p.retries[0].DueAt.After(now) {
			batch = append(batch, heap.Pop(&p.retries).(claim))
		}
		p.mu.Unlock()
		if room := free - len(batch); room >= minClaim {
			fresh, err := p.readPending(ctx, room, now)
			if err != nil && ctx.Err() == nil {
				p.log.Error("read pending numbers", "err", err)
				nextRetry = now.Add(time.Second)
			}
			batch = append(batch, fresh...)
		}
		if len(batch) > 0 {
			p.handOut(batch)
			continue
		}
		p.mu.Lock()
		if len(p.retries) > 0 && nextRetry.IsZero() {
			nextRetry = p.retries[0].DueAt
		}
		p.mu.Unlock()
		sleepUntil(ctx, p.wake, nextRetry, p.now)
	}
}

// readPending reads up to limit numbers not handed out yet, a fair share
// from each active job in turn. Numbers whose retry is not due yet (left by
// an earlier process) go to the retry queue instead.
func (p *pool) readPending(ctx context.Context, limit int, now time.Time) ([]claim, error) {
	jobs, err := p.store.activeJobs(ctx)
	if err != nil || len(jobs) == 0 {
		return nil, err
	}
	p.mu.Lock()
	active := make(map[int64]bool, len(jobs))
	for _, j := range jobs {
		active[j.id] = true
	}
	for id := range p.cursors {
		if !active[id] {
			delete(p.cursors, id)
		}
	}
	p.forgetFinished(active)
	start, _ := slices.BinarySearchFunc(jobs, p.lastJob+1, func(j activeJob, id int64) int { return cmp.Compare(j.id, id) })
	jobs = append(jobs[start:], jobs[:start]...)
	p.mu.Unlock()

	share := max(8, limit/len(jobs))
	var out []claim
	for _, j := range jobs {
		if len(out) >= limit {
			break
		}
		p.mu.Lock()
		after, seen := p.cursors[j.id]
		skip := p.cancelled[j.id]
		p.mu.Unlock()
		if !seen {
			after = -1
		}
		if skip {
			continue
		}
		got, err := p.store.pendingAfter(ctx, j, after, min(share, limit-len(out)))
		if err != nil {
			return out, err
		}
		p.mu.Lock()
		p.lastJob = j.id
		if len(got) > 0 {
			p.cursors[j.id] = got[len(got)-1].Position
		}
		for _, c := range got {
			if c.DueAt.After(now) {
				heap.Push(&p.retries, c)
			} else {
				out = append(out, c)
			}
		}
		p.mu.Unlock()
	}
	return out, nil
}

// forgetFinished drops what the pool remembers of jobs that are no longer
// active and have nothing left with the workers (a job cancelled with no
// number in flight never reaches the recorder's cleanup). Called with p.mu
// held.
func (p *pool) forgetFinished(active map[int64]bool) {
	if len(p.cancelled) == 0 && len(p.started) == 0 {
		return
	}
	held := map[int64]bool{}
	for k := range p.claimed {
		held[k.job] = true
	}
	for id := range p.cancelled {
		if !active[id] && !held[id] {
			delete(p.cancelled, id)
		}
	}
	for id := range p.started {
		if !active[id] && !held[id] {
			delete(p.started, id)
		}
	}
}

// handOut gives claims to the workers, and marks the jobs among them that
// are starting now as 'processing'.
func (p *pool) handOut(batch []claim) {
	var starting []int64
	p.mu.Lock()
	for _, c := range batch {
		p.claimed[inflightKey{c.JobID, c.Position}] = false
		if !p.started[c.JobID] {
			p.started[c.JobID] = true
			starting = append(starting, c.JobID)
		}
	}
	p.mu.Unlock()
	if len(starting) > 0 {
		p.markStarted(starting)
	}
	p.inFlight.Add(int64(len(batch)))
	for _, c := range batch {
		p.work <- c // never blocks: capacity is maxInFlight
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
			p.restoreClaims(ctx, p.takeMore(c), onPanic)
		}
	}
}

// workerBatch is how many claims a worker takes at once from a backend
// that restores in batches.
const workerBatch = 512

// takeMore returns c and, for a batch backend, whatever more claims are
// waiting, up to workerBatch.
func (p *pool) takeMore(c claim) []claim {
	batch := []claim{c}
	if _, ok := p.backend.(batchRestorer); !ok {
		return batch
	}
	for len(batch) < workerBatch {
		select {
		case c := <-p.work:
			batch = append(batch, c)
		default:
			return batch
		}
	}
	return batch
}

// restoreClaims restores claims and sends their results to the recorder;
// claims of a job cancelled meanwhile are reported cancelled, untried.
func (p *pool) restoreClaims(ctx context.Context, claims []claim, onPanic func(any, []byte)) {
	run := claims[:0:0]
	p.mu.Lock()
	for _, c := range claims {
		if p.cancelled[c.JobID] {
			p.results <- workResult{claim: c, cancelled: true} // never blocks: capacity is maxInFlight
			continue
		}
		p.claimed[inflightKey{c.JobID, c.Position}] = true
		run = append(run, c)
	}
	p.mu.Unlock()
	b, batched := p.backend.(batchRestorer)
	for len(run) > 0 {
		if !batched {
			c := run[0]
			start := p.now()
			o := safeRestore(ctx, p.backend, c.UserID, c.Number, onPanic)
			p.results <- workResult{claim: c, attemptRecord: attemptRecord{Started: start, Finished: p.now(), Outcome: o}}
			run = run[1:]
			continue
		}
		// One call per run of claims of the same user.
		n := 1
		for n < len(run) && run[n].UserID == run[0].UserID {
			n++
		}
		numbers := make([]string, n)
		for i, c := range run[:n] {
			numbers[i] = c.Number
		}
		start := p.now()
		outcomes := safeRestoreBatch(ctx, b, run[0].UserID, numbers, onPanic)
		end := p.now()
		for i, c := range run[:n] {
			p.results <- workResult{claim: c, attemptRecord: attemptRecord{Started: start, Finished: end, Outcome: outcomes[i]}}
		}
		run = run[n:]
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
			p.mu.Lock()
			for _, r := range batch {
				delete(p.claimed, inflightKey{r.JobID, r.Position})
			}
			for _, c := range out.retries {
				heap.Push(&p.retries, c)
			}
			for _, id := range out.completedJobs {
				delete(p.cancelled, id)
				delete(p.cursors, id)
				delete(p.started, id)
			}
			p.mu.Unlock()
			p.inFlight.Add(-int64(len(batch)))
			p.nudge()
			p.onRecorded(out)
			return
		}
		p.log.Error("record results; will try again", "err", err, "results", len(batch))
		if err == errWriterClosed {
			return // the numbers stay pending and are read again at the next start
		}
		time.Sleep(wait)
		wait = min(2*wait, 5*time.Second)
	}
}
