package main

import (
	"cmp"
	"container/heap"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// reconcileEvery bounds how long the dispatcher sleeps while it holds
// anything of a job in memory (read cursors, waiting retries), so that a
// job deleted by another process is forgotten promptly even when nothing
// else wakes the dispatcher.
const reconcileEvery = time.Second

// dispatcher hands due numbers to the workers whenever there is room for
// them: first retries that fell due, then numbers not read yet, a fair
// share from each active job in turn so that a small job is never stuck
// behind a large one. It sleeps until nudged or until the next retry falls
// due. It alone owns the read cursors, the set of jobs it marked started
// and the queue of waiting retries (which the recorder feeds through
// retryLater).
type dispatcher struct {
	store       *Store
	writer      *writer
	registry    *inflight
	work        chan<- claim
	maxInFlight int
	log         *slog.Logger
	now         func() time.Time
	wake        chan struct{} // size 1: something may be claimable

	cursors    map[int64]int  // per active job: the last position read
	started    map[int64]bool // jobs this process marked 'processing'
	lastActive map[int64]bool // the active jobs of the previous round
	lastJob    int64          // the job served last; the next read starts after it

	retryMu sync.Mutex
	retries claimHeap // numbers waiting for their next attempt

	// rescanAsked, when set, makes the next round read every job from its
	// start (PostgreSQL: numbers whose claims ran out or were given back
	// lie behind the cursors).
	rescanAsked atomic.Bool
	// poll bounds every sleep where other instances add work unseen
	// (PostgreSQL), as a safety net for a lost notification; zero: none.
	poll time.Duration

	cancel context.CancelFunc
	done   chan struct{}
	markWG sync.WaitGroup
}

// newDispatcher builds a dispatcher; start runs it.
func newDispatcher(store *Store, w *writer, registry *inflight, work chan<- claim, maxInFlight int, log *slog.Logger) *dispatcher {
	return &dispatcher{
		store: store, writer: w, registry: registry, work: work, maxInFlight: maxInFlight, log: log, now: time.Now,
		wake: make(chan struct{}, 1), cursors: map[int64]int{}, started: map[int64]bool{}, lastActive: map[int64]bool{},
		done: make(chan struct{}), poll: store.eng.leaseRenewal(),
	}
}

// start runs the dispatcher until stop.
func (d *dispatcher) start() {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go d.run(ctx)
	d.nudge()
}

// stop ends the dispatcher and waits for the job-start marks it issued.
func (d *dispatcher) stop() {
	d.cancel()
	<-d.done
	d.markWG.Wait()
}

// nudge tells the dispatcher that numbers may be claimable.
func (d *dispatcher) nudge() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// rescan makes the next round read every active job from its start, and
// wakes the dispatcher.
func (d *dispatcher) rescan() {
	d.rescanAsked.Store(true)
	d.nudge()
}

// waitingRetries returns the numbers waiting for their next attempt, which
// this process still holds.
func (d *dispatcher) waitingRetries() []claim {
	d.retryMu.Lock()
	defer d.retryMu.Unlock()
	return slices.Clone(d.retries)
}

// retryLater queues numbers for their next attempt at their DueAt.
func (d *dispatcher) retryLater(claims []claim) {
	if len(claims) == 0 {
		return
	}
	d.retryMu.Lock()
	for _, c := range claims {
		heap.Push(&d.retries, c)
	}
	d.retryMu.Unlock()
	d.nudge()
}

// run is the dispatcher's loop.
func (d *dispatcher) run(ctx context.Context) {
	defer close(d.done)
	minClaim := max(1, d.maxInFlight/8)
	for ctx.Err() == nil {
		now := d.now()
		var wakeAt time.Time
		if d.rescanAsked.Swap(false) {
			clear(d.cursors)
		}
		jobs, err := d.reconcile(ctx)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("list active jobs", "err", err)
			}
			sleepUntil(ctx, d.wake, now.Add(time.Second))
			continue
		}
		free := d.maxInFlight - d.registry.size()
		batch := d.dueRetries(now, free)
		if room := free - len(batch); room >= minClaim && len(jobs) > 0 {
			fresh, err := d.readPending(ctx, jobs, room, now)
			if err != nil && ctx.Err() == nil {
				d.log.Error("read pending numbers", "err", err)
				wakeAt = now.Add(time.Second)
			}
			batch = append(batch, fresh...)
		}
		if len(batch) > 0 {
			d.handOut(batch)
			continue
		}
		if wakeAt.IsZero() {
			wakeAt = d.nextRetry()
		}
		if len(d.cursors) > 0 || !d.nextRetry().IsZero() {
			if limit := now.Add(reconcileEvery); wakeAt.IsZero() || wakeAt.After(limit) {
				wakeAt = limit
			}
		}
		if limit := now.Add(d.poll); d.poll > 0 && (wakeAt.IsZero() || wakeAt.After(limit)) {
			wakeAt = limit
		}
		sleepUntil(ctx, d.wake, wakeAt)
	}
}

// reconcile reads the active jobs and forgets what the dispatcher and the
// registry keep of jobs that are no longer active: finished, cancelled,
// or deleted with their user, perhaps by another process.
func (d *dispatcher) reconcile(ctx context.Context) ([]activeJob, error) {
	jobs, err := d.store.activeJobs(ctx)
	if err != nil {
		return nil, err
	}
	active := make(map[int64]bool, len(jobs))
	for _, j := range jobs {
		active[j.id] = true
	}
	lost := false
	for id := range d.lastActive {
		lost = lost || !active[id]
	}
	d.lastActive = active
	for id := range d.cursors {
		if !active[id] {
			delete(d.cursors, id)
		}
	}
	for id := range d.started {
		if !active[id] {
			delete(d.started, id)
		}
	}
	if lost {
		d.dropRetries(func(c claim) bool { return !active[c.JobID] })
	}
	d.registry.forget(func(job int64) bool { return active[job] })
	return jobs, nil
}

// dropRetries removes the waiting retries that match.
func (d *dispatcher) dropRetries(match func(claim) bool) {
	d.retryMu.Lock()
	defer d.retryMu.Unlock()
	kept := d.retries[:0]
	for _, c := range d.retries {
		if !match(c) {
			kept = append(kept, c)
		}
	}
	clear(d.retries[len(kept):])
	d.retries = kept
	heap.Init(&d.retries)
}

// dueRetries pops up to n retries that are due.
func (d *dispatcher) dueRetries(now time.Time, n int) []claim {
	d.retryMu.Lock()
	defer d.retryMu.Unlock()
	var out []claim
	for len(out) < n && len(d.retries) > 0 && !d.retries[0].DueAt.After(now) {
		out = append(out, heap.Pop(&d.retries).(claim))
	}
	return out
}

// nextRetry is when the earliest waiting retry falls due; zero if none.
func (d *dispatcher) nextRetry() time.Time {
	d.retryMu.Lock()
	defer d.retryMu.Unlock()
	if len(d.retries) == 0 {
		return time.Time{}
	}
	return d.retries[0].DueAt
}

// readPending reads up to limit numbers not handed out yet, a fair share
// from each active job in turn, starting after the job served last.
// Numbers whose retry is not due yet (left by an earlier process) go to
// the retry queue instead. On SQLite reading is the claim; on PostgreSQL
// each read claims what it returns (see queueEngine).
func (d *dispatcher) readPending(ctx context.Context, jobs []activeJob, limit int, now time.Time) ([]claim, error) {
	start, _ := slices.BinarySearchFunc(jobs, d.lastJob+1, func(j activeJob, id int64) int { return cmp.Compare(j.id, id) })
	jobs = append(jobs[start:], jobs[:start]...)
	share := max(8, limit/len(jobs))
	var out, later []claim
	for _, j := range jobs {
		if len(out) >= limit {
			break
		}
		if d.registry.stoppedWhy(j.id) != stopNone {
			continue
		}
		after, seen := d.cursors[j.id]
		if !seen {
			after = -1
		}
		got, err := d.store.eng.takeNumbers(ctx, j, after, min(share, limit-len(out)))
		if err != nil {
			d.retryLater(later)
			return out, err
		}
		d.lastJob = j.id
		if len(got) > 0 {
			d.cursors[j.id] = got[len(got)-1].Position
		}
		for _, c := range got {
			if c.DueAt.After(now) {
				later = append(later, c)
			} else {
				out = append(out, c)
			}
		}
	}
	d.retryLater(later)
	return out, nil
}

// handOut gives claims to the workers, and marks the jobs among them that
// are starting now as 'processing'.
func (d *dispatcher) handOut(batch []claim) {
	var starting []int64
	for _, c := range batch {
		if !d.started[c.JobID] {
			d.started[c.JobID] = true
			starting = append(starting, c.JobID)
		}
	}
	if len(starting) > 0 {
		d.markStarted(starting)
	}
	for _, c := range d.registry.hold(batch) {
		d.work <- c // never blocks: its capacity is maxInFlight
	}
}

// markStarted records that jobs have started, without making the
// dispatcher wait for the commit (it joins the next group commit).
func (d *dispatcher) markStarted(ids []int64) {
	now := d.now()
	d.markWG.Add(1)
	go func() {
		defer d.markWG.Done()
		err := d.writer.do(context.Background(), func(tx *sql.Tx) error { return d.store.markJobsStarted(tx, ids, now) })
		if err != nil && !errors.Is(err, errWriterClosed) {
			d.log.Warn("mark jobs started", "err", err)
		}
	}()
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
