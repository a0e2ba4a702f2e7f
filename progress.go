package main

import (
	"math"
	"sync"
	"time"
)

// How a job's completion time is projected (estimated_completion_at):
//
//   - The recorder tells the tracker, after each commit, how many numbers of
//     each job got their outcome in it. The tracker keeps, per job, those
//     counts in one bucket per second for the last progressWindow.
//   - The rate is the numbers recorded in the window over the time the
//     window covers: from progressWindow ago, or from when the job started,
//     or from when this process started watching, whichever is latest (so a
//     job that started 3 seconds ago is not judged over 30). A job that has
//     stalled (every number waiting for a retry) sees its rate fall as its
//     busy seconds leave the window.
//   - Without a window (no result of the job recorded by this process in the
//     last progressWindow: after a restart, or a stall), the rate is the
//     average since the job's started_at.
//   - The estimate is now + (total - processed) / rate. It is null while
//     nothing has been processed (no rate yet) and once the job is
//     completed or cancelled.

// progressWindow is how far back a job's recent rate looks.
const progressWindow = 30 * time.Second

// progressBuckets is the number of one-second buckets of the window.
const progressBuckets = int(progressWindow / time.Second)

// progressTracker projects when the jobs this process restores will
// finish, from when their results commit. It holds a fixed-size window per
// job that had a result recorded in the last progressWindow, so its memory
// follows the jobs under way, not the jobs ever run.
type progressTracker struct {
	mu    sync.Mutex
	jobs  map[int64]*jobRate
	since time.Time // when this tracker started watching
	now   func() time.Time
	swept int64 // the second of the last sweep of idle jobs
}

// jobRate is one job's recorded numbers in the seconds of the window.
type jobRate struct {
	counts  [progressBuckets]int
	seconds [progressBuckets]int64 // the Unix second each bucket counts
	last    int64                  // the last second a result was recorded
}

// newProgressTracker builds a tracker watching from now.
func newProgressTracker(now func() time.Time) *progressTracker {
	return &progressTracker{jobs: map[int64]*jobRate{}, since: now(), now: now}
}

// recorded is the recorder's hook: a committed group of results, with
// what the write learned. Retries are not processed numbers; the results
// of jobs found gone are dropped; a finished job's window is let go.
func (t *progressTracker) recorded(batch []workResult, out recordOutcome) {
	if t == nil {
		return
	}
	processed := map[int64]int{}
	for _, res := range batch {
		processed[res.JobID]++
	}
	for _, c := range out.retries {
		processed[c.JobID]--
	}
	for _, id := range out.goneJobs {
		delete(processed, id)
	}
	at := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, n := range processed {
		if n > 0 {
			t.add(id, n, at)
		}
	}
	for _, id := range append(out.completedJobs, out.goneJobs...) {
		delete(t.jobs, id)
	}
	t.sweep(at)
}

// add counts n numbers of job id recorded at at; t.mu is held.
func (t *progressTracker) add(id int64, n int, at time.Time) {
	r := t.jobs[id]
	if r == nil {
		r = &jobRate{}
		t.jobs[id] = r
	}
	sec := at.Unix()
	i := int(sec % int64(progressBuckets))
	if r.seconds[i] != sec {
		r.seconds[i], r.counts[i] = sec, 0
	}
	r.counts[i] += n
	r.last = sec
}

// sweep lets go, once a second at most, of the windows of jobs with
// nothing recorded for a whole window (cancelled, deleted, or stalled:
// those fall back to their average); t.mu is held.
func (t *progressTracker) sweep(at time.Time) {
	sec := at.Unix()
	if sec == t.swept {
		return
	}
	t.swept = sec
	for id, r := range t.jobs {
		if sec-r.last >= int64(progressBuckets) {
			delete(t.jobs, id)
		}
	}
}

// recent returns how many of the job's numbers were recorded in the window
// ending at now, and when the window began.
func (t *progressTracker) recent(id int64, now time.Time) (int, time.Time) {
	start := now.Add(-progressWindow)
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.jobs[id]
	if r == nil {
		return 0, start
	}
	sec, n := now.Unix(), 0
	for i, s := range r.seconds {
		if s > sec-int64(progressBuckets) && s <= sec {
			n += r.counts[i]
		}
	}
	return n, start
}

// progress is a job's processed_count and estimated_completion_at now.
func (t *progressTracker) progress(j Job) *JobProgress {
	p := &JobProgress{ProcessedCount: j.SuccessCount + j.FailureCount + j.CancelledCount}
	if t == nil || !j.Status.active() || p.ProcessedCount == 0 || p.ProcessedCount >= j.Total {
		return p
	}
	now := t.now()
	rate := 0.0
	if n, start := t.recent(j.ID, now); n > 0 {
		start = latest(start, j.StartedAt, t.since)
		rate = float64(n) / max(now.Sub(start).Seconds(), 1e-3)
	} else if !j.StartedAt.IsZero() && now.After(j.StartedAt) {
		rate = float64(p.ProcessedCount) / now.Sub(j.StartedAt).Seconds()
	}
	if rate > 0 {
		secs := math.Min(float64(j.Total-p.ProcessedCount)/rate, maxEstimate.Seconds())
		p.EstimatedCompletionAt = jsonTime(now.Add(time.Duration(math.Ceil(secs)) * time.Second))
	}
	return p
}

// maxEstimate caps a projection: a rate of a number a month says "a long
// time", not a date centuries away.
const maxEstimate = 10 * 365 * 24 * time.Hour

// latest returns the latest of some times.
func latest(first time.Time, rest ...time.Time) time.Time {
	for _, t := range rest {
		first = maxTime(first, t)
	}
	return first
}
