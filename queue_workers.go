package main

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// liveCheckAge is how long a job seen live in the database is trusted to
// be so before a worker restores more of its numbers. Deleting a user (from
// another process, say) therefore stops its restores within this time,
// while a busy job costs one small query per this interval, not one per
// number. A variable only so that a test of the instances' own signals
// can show it is not what stopped them.
var liveCheckAge = 100 * time.Millisecond

// workerBatch is how many claims a worker takes at once from a backend
// that restores in batches.
const workerBatch = 512

// workerSet is the -workers goroutines that restore claimed numbers and
// send their results to the recorder.
type workerSet struct {
	store    *Store
	backend  Restorer
	registry *inflight
	work     <-chan claim
	results  chan<- workResult
	n        int
	freed    func() // told when claims were dropped without a result
	log      *slog.Logger
	now      func() time.Time

	quit          chan struct{} // closed: take no more claims
	cancelRestore context.CancelFunc
	ctx           context.Context
	wg            sync.WaitGroup
}

// newWorkerSet builds the workers; start runs them.
func newWorkerSet(store *Store, backend Restorer, registry *inflight, work <-chan claim, results chan<- workResult,
	n int, freed func(), log *slog.Logger) *workerSet {
	ctx, cancel := context.WithCancel(context.Background())
	return &workerSet{store: store, backend: backend, registry: registry, work: work, results: results, n: n,
		freed: freed, log: log, now: time.Now, quit: make(chan struct{}), ctx: ctx, cancelRestore: cancel}
}

// start runs the workers.
func (s *workerSet) start() {
	for range s.n {
		s.wg.Add(1)
		go s.run()
	}
}

// stop makes the workers take no more claims and waits for the restores
// under way; those still running after grace are cancelled, and their
// numbers are left unrecorded (pending, for the next start).
func (s *workerSet) stop(grace time.Duration) {
	close(s.quit)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	t := time.NewTimer(max(grace, 0))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("restores still running at shutdown are cancelled; their numbers stay pending")
		s.cancelRestore()
		<-done
	}
	s.cancelRestore()
}

// run is one worker: it restores claims until stopped.
func (s *workerSet) run() {
	defer s.wg.Done()
	for {
		select {
		case <-s.quit:
			return
		default:
		}
		select {
		case <-s.quit:
			return
		case c := <-s.work:
			s.restoreClaims(s.takeMore(c))
		}
	}
}

// takeMore returns c and, for a batch backend, whatever more claims are
// waiting, up to workerBatch.
func (s *workerSet) takeMore(c claim) []claim {
	batch := []claim{c}
	if _, ok := s.backend.(batchRestorer); !ok {
		return batch
	}
	for len(batch) < workerBatch {
		select {
		case c := <-s.work:
			batch = append(batch, c)
		default:
			return batch
		}
	}
	return batch
}

// checkLive asks the database about the jobs of claims not seen live
// lately, and stops in the registry those that were cancelled or deleted
// meanwhile (by another process, say); it waits for the checks another
// worker is making of the others. A failed check changes nothing: the
// results are then filtered when recorded.
func (s *workerSet) checkLive(claims []claim) {
	jobs, underWay := s.registry.needsCheck(claims, s.now(), liveCheckAge)
	if len(jobs) > 0 {
		func() {
			defer s.registry.checkDone(jobs) // whatever happens, nobody waits for ever
			s.checkJobs(jobs)
		}()
	}
	for _, done := range underWay {
		select {
		case <-done:
		case <-s.ctx.Done():
			return
		}
	}
}

// checkJobs reads the statuses of jobs and stops in the registry those
// cancelled or gone.
func (s *workerSet) checkJobs(jobs []int64) {
	statuses, err := s.store.jobStatuses(s.ctx, jobs)
	if err != nil {
		s.log.Warn("check jobs before restoring", "err", err)
		return
	}
	for _, id := range jobs {
		switch statuses[id] {
		case jobPending, jobProcessing:
		case jobCancelled:
			s.registry.stop(id, stopCancelled)
		default: // deleted with its user (or finished, which no held claim allows)
			s.registry.stop(id, stopGone)
		}
	}
}

// restoreClaims restores claims and sends their results to the recorder.
// Claims of a cancelled job are reported cancelled, untried; those of a
// job that is gone are dropped; those cut short by shutdown are dropped
// too, and stay pending in the database.
func (s *workerSet) restoreClaims(claims []claim) {
	s.checkLive(claims)
	run, skipped, why := s.registry.begin(claims)
	var dropped []claim
	for i, c := range skipped {
		if why[i] == stopCancelled {
			s.results <- workResult{claim: c, cancelled: true} // never blocks: capacity is maxInFlight
		} else {
			dropped = append(dropped, c)
		}
	}
	onPanic := func(v any, stack []byte) {
		s.log.Error("restore panicked", "panic", v, "stack", string(stack))
	}
	b, batched := s.backend.(batchRestorer)
	for len(run) > 0 {
		// One call per run of claims of the same user (a batch backend), or
		// per claim.
		n := 1
		for batched && n < len(run) && run[n].UserID == run[0].UserID {
			n++
		}
		group := run[:n]
		run = run[n:]
		start := s.now()
		var outcomes []Outcome
		if batched {
			numbers := make([]string, n)
			for i, c := range group {
				numbers[i] = c.Number
			}
			outcomes = safeRestoreBatch(s.ctx, b, group[0].UserID, numbers, onPanic)
		} else {
			outcomes = []Outcome{safeRestore(s.ctx, s.backend, group[0].UserID, group[0].Number, onPanic)}
		}
		end := s.now()
		if s.ctx.Err() != nil {
			dropped = append(dropped, group...) // cut short by shutdown: not an attempt
			continue
		}
		for i, c := range group {
			s.results <- workResult{claim: c, attemptRecord: attemptRecord{Started: start, Finished: end, Outcome: outcomes[i]}}
		}
	}
	if len(dropped) > 0 {
		s.registry.release(dropped)
		s.freed()
	}
}
