package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// inflight is the registry of the numbers handed to the workers and not yet
// recorded, and of the jobs whose work must stop (cancelled, or deleted
// with their user). It is the one owner of that state: the dispatcher adds
// claims, the workers start them (or learn they must not), the recorder
// releases them, the cancel endpoint stops a job, and the status endpoint
// asks whether a number is being processed.
type inflight struct {
	mu      sync.Mutex
	held    map[inflightKey]bool // true once a worker started it
	perJob  map[int64]int        // held claims per job
	stopped map[int64]jobStop    // jobs whose claims must not be restored
	checked map[int64]time.Time  // when a job was last seen live in the database
	// checking are the checks under way, closed when each is done: a
	// worker that finds one waits for it rather than trusting it.
	checking map[int64]chan struct{}
	count    atomic.Int64 // len(held), read without the lock
}

// inflightKey names one number of one job.
type inflightKey struct {
	job int64
	pos int
}

// jobStop says why a job's work stopped.
type jobStop int

// The reasons a job's work stops.
const (
	// stopNone: not stopped.
	stopNone jobStop = iota
	// stopCancelled: its numbers not yet started are recorded as cancelled.
	stopCancelled
	// stopGone: the job no longer exists (its user was deleted), or its
	// results can never be written; nothing more of it is written.
	stopGone
)

// newInflight builds an empty registry.
func newInflight() *inflight {
	return &inflight{
		held:     map[inflightKey]bool{},
		perJob:   map[int64]int{},
		stopped:  map[int64]jobStop{},
		checked:  map[int64]time.Time{},
		checking: map[int64]chan struct{}{},
	}
}

// size is how many numbers are held.
func (f *inflight) size() int { return int(f.count.Load()) }

// hold records claims handed out to the workers and returns them, less
// any already held (a claim this process made again after its lease ran
// out while it still held it: one worker restores it, not two).
func (f *inflight) hold(claims []claim) []claim {
	f.mu.Lock()
	defer f.mu.Unlock()
	fresh := claims[:0:0]
	for _, c := range claims {
		k := inflightKey{c.JobID, c.Position}
		if _, dup := f.held[k]; dup {
			continue
		}
		f.held[k] = false
		f.perJob[c.JobID]++
		fresh = append(fresh, c)
	}
	f.count.Store(int64(len(f.held)))
	return fresh
}

// heldClaims returns the numbers held, as claims naming their job and
// position, for their leases to be renewed.
func (f *inflight) heldClaims() []claim {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]claim, 0, len(f.held))
	for k := range f.held {
		out = append(out, claim{JobID: k.job, Position: k.pos})
	}
	return out
}

// begin marks the claims a worker may restore now as started and returns
// them; the others, of jobs that were stopped, are returned apart with
// the reason, untouched.
func (f *inflight) begin(claims []claim) (run []claim, skipped []claim, why []jobStop) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range claims {
		if s := f.stopped[c.JobID]; s != stopNone {
			skipped = append(skipped, c)
			why = append(why, s)
			continue
		}
		f.held[inflightKey{c.JobID, c.Position}] = true
		run = append(run, c)
	}
	return run, skipped, why
}

// stop marks a job stopped (a cancellation does not undo a deletion) and
// returns the positions of its numbers being restored right now, which run
// to their end.
func (f *inflight) stop(job int64, why jobStop) (started []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped[job] < why {
		f.stopped[job] = why
	}
	for k, running := range f.held {
		if k.job == job && running {
			started = append(started, k.pos)
		}
	}
	return started
}

// stoppedWhy reports whether and why a job was stopped.
func (f *inflight) stoppedWhy(job int64) jobStop {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopped[job]
}

// isStarted reports whether a worker has started a number and its result
// is not recorded yet, for the status endpoint to show it as 'processing'
// (a number handed out and waiting for a free worker is still pending: a
// cancellation now would cancel it).
func (f *inflight) isStarted(job int64, pos int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held[inflightKey{job, pos}]
}

// release forgets recorded (or abandoned) claims.
func (f *inflight) release(claims []claim) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range claims {
		k := inflightKey{c.JobID, c.Position}
		if _, ok := f.held[k]; !ok {
			continue
		}
		delete(f.held, k)
		if f.perJob[c.JobID]--; f.perJob[c.JobID] <= 0 {
			delete(f.perJob, c.JobID)
		}
	}
	f.count.Store(int64(len(f.held)))
}

// forget drops what the registry keeps of jobs that are no longer active
// in the database and have nothing held: nothing of theirs can reach a
// worker any more.
func (f *inflight) forget(active func(job int64) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for job := range f.stopped {
		if !active(job) && f.perJob[job] == 0 {
			delete(f.stopped, job)
		}
	}
	for job := range f.checked {
		if !active(job) && f.perJob[job] == 0 {
			delete(f.checked, job)
		}
	}
}

// needsCheck returns the jobs among claims that have not been seen live in
// the database within maxAge, marked checked as of now (the caller checks
// them, stops those it finds gone, then calls checkDone), and the checks
// of other jobs among claims that another caller is making now, to wait
// for before restoring. Trusting a check under way as if it were done let
// other workers restore numbers of a job deleted a moment before, while
// the first worker's query was still on its way (four restores of a
// deleted user's numbers under CI's load).
func (f *inflight) needsCheck(claims []claim, now time.Time, maxAge time.Duration) (jobs []int64, underWay []<-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[int64]bool{}
	for _, c := range claims {
		if seen[c.JobID] || f.stopped[c.JobID] != stopNone {
			continue
		}
		seen[c.JobID] = true
		if ch, ok := f.checking[c.JobID]; ok {
			underWay = append(underWay, ch)
			continue
		}
		if t, ok := f.checked[c.JobID]; ok && now.Sub(t) < maxAge {
			continue
		}
		f.checked[c.JobID] = now
		f.checking[c.JobID] = make(chan struct{})
		jobs = append(jobs, c.JobID)
	}
	return jobs, underWay
}

// checkDone ends the checks of jobs that needsCheck handed out: those who
// wait for them go on, and find the jobs stopped if the check stopped them.
func (f *inflight) checkDone(jobs []int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, job := range jobs {
		if ch, ok := f.checking[job]; ok {
			close(ch)
			delete(f.checking, job)
		}
	}
}
