package main

// liveResult returns how a number of job is shown now: a pending number
// that a worker holds is shown as processing (a state never stored). The
// status endpoint and the console both show numbers through it.
func (a *app) liveResult(job Job) func(NumberResult) NumberResult {
	active := job.Status.active() || job.Status == jobCancelled
	return func(n NumberResult) NumberResult {
		if active && n.Status == numberPending && a.pool.isProcessing(job.ID, n.Position) {
			n.Status = numberProcessing
		}
		return n
	}
}
