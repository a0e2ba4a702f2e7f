package main

import (
	"net/http"
	"testing"
	"time"
)

// fakeClock is a time the test moves by hand.
type fakeClock struct{ t time.Time }

// now returns the clock's time.
func (c *fakeClock) now() time.Time { return c.t }

// recordedBatch is a committed group of n results of job id, none retried.
func recordedBatch(id int64, n int) []workResult {
	out := make([]workResult, n)
	for i := range out {
		out[i] = workResult{claim: claim{JobID: id, Position: i}}
	}
	return out
}

func TestProgressProjectsFromTheRecentRate(t *testing.T) {
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	job := func(processed int, status jobStatus) Job {
		return Job{ID: 7, Status: status, Total: 1000, SuccessCount: processed, StartedAt: start}
	}
	eta := func(p *JobProgress) string {
		if p.EstimatedCompletionAt == nil {
			return "null"
		}
		return *p.EstimatedCompletionAt
	}
	cases := []struct {
		name      string
		steps     func(tr *progressTracker, c *fakeClock)
		job       Job
		wantCount int
		wantETA   string
	}{
		{name: "nothing processed yet is not estimable",
			steps: func(tr *progressTracker, c *fakeClock) { c.t = start.Add(10 * time.Second) },
			job:   job(0, jobProcessing), wantCount: 0, wantETA: "null"},
		{name: "10 a second over its first ten seconds leaves 90 seconds for 900",
			steps: func(tr *progressTracker, c *fakeClock) {
				for i := range 10 {
					c.t = start.Add(time.Duration(i+1) * time.Second)
					tr.recorded(recordedBatch(7, 10), recordOutcome{})
				}
			},
			job: job(100, jobProcessing), wantCount: 100, wantETA: "2026-11-30 12:01:40"},
		{name: "the window forgets a slow start: 10 a second for 60s, then 100 a second",
			steps: func(tr *progressTracker, c *fakeClock) {
				for s := 1; s <= 90; s++ {
					c.t = start.Add(time.Duration(s) * time.Second)
					n := 10
					if s > 60 {
						n = 100
					}
					tr.recorded(recordedBatch(7, n), recordOutcome{})
				}
			},
			// 600 + 3000 done of 4000; 30 seconds of window at 100 a second: 4 more seconds.
			job:       Job{ID: 7, Status: jobProcessing, Total: 4000, SuccessCount: 3600, StartedAt: start},
			wantCount: 3600, wantETA: "2026-11-30 12:01:34"},
		{name: "retries are not processed numbers",
			steps: func(tr *progressTracker, c *fakeClock) {
				for i := range 10 {
					c.t = start.Add(time.Duration(i+1) * time.Second)
					batch := recordedBatch(7, 20)
					tr.recorded(batch, recordOutcome{retries: []claim{batch[0].claim, batch[1].claim, batch[2].claim,
						batch[3].claim, batch[4].claim, batch[5].claim, batch[6].claim, batch[7].claim, batch[8].claim, batch[9].claim}})
				}
			},
			job: job(100, jobProcessing), wantCount: 100, wantETA: "2026-11-30 12:01:40"},
		{name: "without a window (a restart) the average since started_at is the rate",
			steps: func(tr *progressTracker, c *fakeClock) { c.t = start.Add(100 * time.Second) },
			// 500 in 100 seconds: 5 a second, 500 left.
			job: job(500, jobProcessing), wantCount: 500, wantETA: "2026-11-30 12:03:20"},
		{name: "a job stalled for a whole window falls back to its average",
			steps: func(tr *progressTracker, c *fakeClock) {
				c.t = start.Add(10 * time.Second)
				tr.recorded(recordedBatch(7, 100), recordOutcome{})
				c.t = start.Add(100 * time.Second)
				tr.recorded(recordedBatch(8, 1), recordOutcome{}) // another job's commit sweeps the idle window
			},
			job: job(100, jobProcessing), wantCount: 100, wantETA: "2026-11-30 12:16:40"},
		{name: "a completed job has no estimate",
			steps:     func(tr *progressTracker, c *fakeClock) { c.t = start.Add(time.Minute) },
			job:       Job{ID: 7, Status: jobCompleted, Total: 1000, SuccessCount: 990, FailureCount: 10, StartedAt: start},
			wantCount: 1000, wantETA: "null"},
		{name: "a cancelled job has no estimate, and cancelled numbers count as processed",
			steps:     func(tr *progressTracker, c *fakeClock) { c.t = start.Add(time.Minute) },
			job:       Job{ID: 7, Status: jobCancelled, Total: 1000, SuccessCount: 10, CancelledCount: 900, StartedAt: start},
			wantCount: 910, wantETA: "null"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := &fakeClock{t: start}
			tr := newProgressTracker(clock.now)
			c.steps(tr, clock)
			p := tr.progress(c.job)
			if p.ProcessedCount != c.wantCount || eta(p) != c.wantETA {
				t.Fatalf("processed %d, estimate %s; want %d, %s", p.ProcessedCount, eta(p), c.wantCount, c.wantETA)
			}
		})
	}
}

func TestProgressLetsGoOfFinishedAndIdleJobs(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	tr := newProgressTracker(clock.now)
	tr.recorded(recordedBatch(1, 5), recordOutcome{})
	tr.recorded(recordedBatch(2, 5), recordOutcome{})
	tr.recorded(recordedBatch(3, 5), recordOutcome{})
	tr.recorded(recordedBatch(1, 5), recordOutcome{completedJobs: []int64{1}, goneJobs: []int64{2}})
	if _, ok := tr.jobs[1]; ok {
		t.Fatal("a completed job's window is kept")
	}
	if _, ok := tr.jobs[2]; ok {
		t.Fatal("a deleted job's window is kept")
	}
	clock.t = clock.t.Add(progressWindow + time.Second)
	tr.recorded(recordedBatch(4, 1), recordOutcome{})
	if _, ok := tr.jobs[3]; ok || len(tr.jobs) != 1 {
		t.Fatalf("windows %v after a window of nothing from job 3, want job 4's alone", tr.jobs)
	}
}

// progressOf reads processed_count and estimated_completion_at of a job's
// status and of its entry in the job list, which must agree. While the job
// runs, results may land between the two reads: the status is read again
// after the list, and the pair is taken only when nothing moved between
// them (a few tries at most).
func progressOf(t *testing.T, base, id string) (float64, any) {
	t.Helper()
	for try := 0; ; try++ {
		st := call(t, http.MethodGet, base+"/v3/bulk_restore_status?limit=0&job_uuid="+id, "demo", "demo", nil)
		list := call(t, http.MethodGet, base+"/v3/bulk_restore_jobs?limit=1", "demo", "demo", nil)
		again := call(t, http.MethodGet, base+"/v3/bulk_restore_status?limit=0&job_uuid="+id, "demo", "demo", nil)
		entry := list.Body["jobs"].([]any)[0].(map[string]any)
		count, ok := st.Body["processed_count"].(float64)
		if !ok {
			t.Fatalf("the status has no processed_count: %s", st.Raw)
		}
		if again.Body["processed_count"] != count && try < 20 {
			continue // a result landed between the reads
		}
		if entry["processed_count"] != count {
			t.Fatalf("processed_count %v in the status, %v in the list", count, entry["processed_count"])
		}
		if _, has := st.Body["estimated_completion_at"]; !has {
			t.Fatalf("the status has no estimated_completion_at: %s", st.Raw)
		}
		return count, st.Body["estimated_completion_at"]
	}
}

func TestProgressOverAJobsLife(t *testing.T) {
	numbers := seqNumbers(15550300000, 20)
	b := newScriptedBackend(nil, numbers[5:]...)
	_, srv := startServiceWith(t, b, "-dev", "-workers", "2")
	t.Cleanup(b.open)
	submitted := time.Now().UTC().Truncate(time.Second)
	resp := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": numbers})
	id := resp.Body["job_uuid"].(string)

	waitFor(t, 10*time.Second, "the first five numbers to be recorded", func() bool {
		n, _ := progressOf(t, srv.URL, id)
		return n == 5
	})
	t.Run("with numbers processed, the estimate is a time to come", func(t *testing.T) {
		_, eta := progressOf(t, srv.URL, id)
		s, ok := eta.(string)
		if !ok {
			t.Fatalf("estimated_completion_at=%v, want a time", eta)
		}
		at, err := time.Parse(timeLayout, s)
		if err != nil || at.Before(submitted) {
			t.Fatalf("estimated_completion_at=%q (%v), want a time from %s on", s, err, submitted.Format(timeLayout))
		}
	})
	b.open()
	waitJobDone(t, &testServer{URL: srv.URL}, "demo", "demo", id, 10*time.Second)
	t.Run("finished, every number is processed and there is no estimate", func(t *testing.T) {
		if n, eta := progressOf(t, srv.URL, id); n != 20 || eta != nil {
			t.Fatalf("processed_count=%v estimated_completion_at=%v, want 20 and null", n, eta)
		}
	})
	t.Run("a synchronous job is finished from the start", func(t *testing.T) {
		sync := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": []string{"15550390000"}})
		if _, has := sync.Body["processed_count"]; has {
			t.Fatalf("the final payload carries processed_count: %s", sync.Raw)
		}
		if n, eta := progressOf(t, srv.URL, sync.Body["job_uuid"].(string)); n != 1 || eta != nil {
			t.Fatalf("processed_count=%v estimated_completion_at=%v, want 1 and null", n, eta)
		}
	})
}

func TestProgressIsNullBeforeAnythingIsProcessed(t *testing.T) {
	numbers := seqNumbers(15550310000, 12)
	b := newScriptedBackend(nil, numbers...)
	_, srv := startServiceWith(t, b, "-dev", "-workers", "2")
	t.Cleanup(b.open)
	resp := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": numbers})
	id := resp.Body["job_uuid"].(string)
	waitFor(t, 10*time.Second, "two numbers to be under way", func() bool { return b.started.Load() == 2 })
	if n, eta := progressOf(t, srv.URL, id); n != 0 || eta != nil {
		t.Fatalf("processed_count=%v estimated_completion_at=%v, want 0 and null", n, eta)
	}
}
