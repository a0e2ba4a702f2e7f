package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The growth scenario's sizes, at scale 1: the grown database is the
// history scenario's (10,000,000 recorded numbers in 1,000,000 jobs of 100
// users); the fresh one has the same users and inventory and no job.
const (
	benchGrowthBigJob  = 100_000 // numbers of the job whose status is read
	benchGrowthQueued  = 10_000  // numbers of each queued POST timed to its 202
	benchGrowthPosts   = 5       // queued POSTs timed
	benchGrowthReads   = 500     // requests of each timed read
	benchGrowthClients = 8       // concurrent clients of the sync load
)

// benchGrowthFigures are the figures measured on each database, in the
// order the note lists them, with what each is.
var benchGrowthFigures = []struct{ key, what string }{
	{"sync_p99_ms", "sync p99"},
	{"queued_202_ms", "queued POST to 202"},
	{"number_p99_ms", "one number of a 100k job"},
	{"last_page_p99_ms", "last page of a 100k job"},
	{"jobs_list_p99_ms", "jobs list"},
	{"history_p99_ms", "number history"},
	{"startup_ms", "start-up to /readyz (median of 5)"},
}

// runGrowth measures the same requests against a fresh database and one
// that has grown, in the same run, and reports each figure on both and
// their ratio, grown over fresh: a service that stays flat as its data
// grows has every ratio near 1.
func (b *bench) runGrowth(ctx context.Context) (benchFigures, error) {
	numbers := b.count(benchHistoryNumbers, 10*benchHistoryPerJob*benchHistoryUsers)
	grown := benchFill{Users: benchHistoryUsers, Jobs: numbers / benchHistoryPerJob, Numbers: numbers,
		Distinct: numbers / benchHistoryRepeats}
	fresh := grown
	fresh.Jobs, fresh.Numbers = 1, 1
	out := benchFigures{"jobs": float64(grown.Jobs), "numbers": float64(grown.Numbers)}
	// The two sides are measured in turns (fresh, grown, then grown,
	// fresh), and each figure is the better of a side's two turns: the
	// machine is shared, and a burst of someone else's work in one turn
	// would otherwise read as growth (or as its absence).
	figures := map[string]benchFigures{}
	sides := map[string]benchFill{"fresh": fresh, "grown": grown}
	for _, name := range []string{"fresh", "grown", "grown", "fresh"} {
		db, err := b.filled(ctx, sides[name])
		if err != nil {
			return nil, err
		}
		f, err := b.measureGrowth(ctx, db)
		if err != nil {
			return nil, fmt.Errorf("%s database: %w", name, err)
		}
		if best, ok := figures[name]; ok {
			for k, v := range f {
				f[k] = min(v, best[k])
			}
		}
		figures[name] = f
	}
	worst := 0.0
	for _, g := range benchGrowthFigures {
		ratio := figures["grown"][g.key] / figures["fresh"][g.key]
		out["fresh_"+g.key], out["grown_"+g.key], out["ratio_"+g.key] = figures["fresh"][g.key], figures["grown"][g.key], ratio
		worst = max(worst, ratio)
	}
	out["worst_ratio"] = worst
	return out, nil
}

// growthNote lists every figure of the growth scenario.
func growthNote(f benchFigures) string {
	var parts []string
	for _, g := range benchGrowthFigures {
		parts = append(parts, fmt.Sprintf("%s %s → %s ms (×%.2f)", g.what, benchFormat(f["fresh_"+g.key]),
			benchFormat(f["grown_"+g.key]), f["ratio_"+g.key]))
	}
	return fmt.Sprintf("fresh database → one of %s jobs and %s recorded numbers: %s", benchFormat(f["jobs"]),
		benchFormat(f["numbers"]), strings.Join(parts, "; "))
}

// measureGrowth serves db and times each request of the scenario as the
// fill's first users (user 1 reads, user 2 owns the big job).
func (b *bench) measureGrowth(ctx context.Context, db *benchFilled) (benchFigures, error) {
	s, err := b.serveDB(ctx, db.db)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			s.stop()
		}
	}()
	rng := rand.New(rand.NewPCG(3, 4))
	pool := func(u, n int) []string {
		start := rng.IntN(max(1, db.poolSize-n))
		out := make([]string, n)
		for i := range out {
			out[i] = db.poolNumber(u, start+i)
		}
		return out
	}
	f := benchFigures{}
	if f["sync_p99_ms"], err = b.growthSync(ctx, s, db, pool); err != nil {
		return nil, err
	}
	if f["queued_202_ms"], err = b.growthQueued(ctx, s, pool); err != nil {
		return nil, err
	}
	bigNumbers := pool(2, min(b.count(benchGrowthBigJob, 50), db.poolSize))
	big, err := growthSubmit(ctx, s, 2, bigNumbers)
	if err != nil {
		return nil, err
	}
	if err := growthWait(ctx, s, 2, big, b.deadline(len(bigNumbers))); err != nil {
		return nil, err
	}
	reads := b.count(benchGrowthReads, 20)
	last := max(0, len(bigNumbers)-100)
	timed := []struct {
		key  string
		user int
		path func() string
	}{
		{"number_p99_ms", 2, func() string {
			return "/v3/bulk_restore_status?job_uuid=" + big + "&number=" + bigNumbers[rng.IntN(len(bigNumbers))]
		}},
		{"last_page_p99_ms", 2, func() string {
			return "/v3/bulk_restore_status?job_uuid=" + big + "&offset=" + strconv.Itoa(last) + "&limit=100"
		}},
		{"jobs_list_p99_ms", 1, func() string { return "/v3/bulk_restore_jobs?limit=50" }},
		// The newest entry of a number of the big job: an answer of the
		// same size on both sides (with more, the grown side would answer
		// more, the number being in more of its jobs, and the ratio would
		// measure the answer, not the lookup).
		{"history_p99_ms", 2, func() string {
			return "/v3/numbers/" + bigNumbers[rng.IntN(len(bigNumbers))] + "/history?limit=1"
		}},
	}
	for _, t := range timed {
		if f[t.key], err = growthReads(ctx, s, t.user, reads, t.path); err != nil {
			return nil, fmt.Errorf("%s: %w", t.key, err)
		}
	}
	s.stop()
	stopped = true
	if f["startup_ms"], err = b.growthStartup(ctx, db); err != nil {
		return nil, err
	}
	return f, nil
}

// growthStartups is how many start-ups growthStartup times: one takes a few
// milliseconds, so a single one measured the machine's noise.
const growthStartups = 5

// growthStartup starts a server on db growthStartups times, each until
// /readyz answers, and returns the median time in milliseconds.
func (b *bench) growthStartup(ctx context.Context, db *benchFilled) (float64, error) {
	var times []float64
	for range growthStartups {
		start := time.Now()
		s, err := b.serveDB(ctx, db.db)
		if err != nil {
			return 0, err
		}
		err = growthReady(ctx, s)
		times = append(times, float64(time.Since(start).Microseconds())/1000)
		s.stop()
		if err != nil {
			return 0, err
		}
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

// growthSync runs benchGrowthClients clients posting 10-number requests of
// user 1's numbers for a while and returns the p99 of their latencies.
func (b *bench) growthSync(ctx context.Context, s *benchServer, db *benchFilled, pool func(u, n int) []string) (float64, error) {
	var bodies [][]byte
	for range 64 {
		bodies = append(bodies, benchBody(pool(1, benchSyncNumbers), ""))
	}
	until := time.Now().Add(max(b.cfg.duration/2, 200*time.Millisecond))
	var mu sync.Mutex
	var latencies []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	for c := range benchGrowthClients {
		wg.Go(func() {
			for i := c; time.Now().Before(until) && ctx.Err() == nil; i += benchGrowthClients {
				start := time.Now()
				status, data, err := s.callAs(ctx, benchFillUser(1), benchFillKey(1), http.MethodPost, "/v3/bulk_restore", bodies[i%len(bodies)])
				d := time.Since(start)
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("sync: HTTP %d: %.300s", status, data)
				}
				mu.Lock()
				latencies = append(latencies, d)
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	slices.Sort(latencies)
	return benchPercentile(latencies, 99), nil
}

// growthQueued times queued POSTs of user 1's numbers to their 202, one
// after another, each after the previous job drained, and returns the
// median.
func (b *bench) growthQueued(ctx context.Context, s *benchServer, pool func(u, n int) []string) (float64, error) {
	n := b.count(benchGrowthQueued, benchSyncNumbers+1)
	var took []time.Duration
	for range benchGrowthPosts {
		numbers := pool(1, n)
		start := time.Now()
		id, err := growthSubmit(ctx, s, 1, numbers)
		if err != nil {
			return 0, err
		}
		took = append(took, time.Since(start))
		if err := growthWait(ctx, s, 1, id, b.deadline(n)); err != nil {
			return 0, err
		}
	}
	slices.Sort(took)
	return benchPercentile(took, 50), nil
}

// growthSubmit queues a job of numbers as fill user u and returns its uuid.
func growthSubmit(ctx context.Context, s *benchServer, u int, numbers []string) (string, error) {
	status, data, err := s.callAs(ctx, benchFillUser(u), benchFillKey(u), http.MethodPost, "/v3/bulk_restore", benchBody(numbers, ""))
	if err != nil {
		return "", err
	}
	var queued struct {
		JobUUID string `json:"job_uuid"`
	}
	if status != http.StatusAccepted || json.Unmarshal(data, &queued) != nil || queued.JobUUID == "" {
		return "", fmt.Errorf("queue: HTTP %d: %.300s", status, data)
	}
	return queued.JobUUID, nil
}

// growthWait polls user u's job until it completes, within timeout.
func growthWait(ctx context.Context, s *benchServer, u int, id string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		status, data, err := s.callAs(ctx, benchFillUser(u), benchFillKey(u), http.MethodGet, "/v3/bulk_restore_status?limit=0&job_uuid="+id, nil)
		if err != nil {
			return err
		}
		var j jobSummaryJSON
		if status != http.StatusOK || json.Unmarshal(data, &j) != nil {
			return fmt.Errorf("status: HTTP %d: %.300s", status, data)
		}
		if j.Status == jobCompleted {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("job %s still %s after %s", id, j.Status, timeout)
		}
		if !sleepUntil(ctx, nil, time.Now().Add(benchPollEvery)) {
			return ctx.Err()
		}
	}
}

// growthReads times n GETs of the paths next gives, as fill user u, one
// after another, and returns their p99.
func growthReads(ctx context.Context, s *benchServer, u, n int, next func() string) (float64, error) {
	latencies := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		status, data, err := s.callAs(ctx, benchFillUser(u), benchFillKey(u), http.MethodGet, next(), nil)
		latencies = append(latencies, time.Since(start))
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("HTTP %d: %.300s", status, data)
		}
		if err != nil {
			return 0, err
		}
	}
	slices.Sort(latencies)
	return benchPercentile(latencies, 99), nil
}

// growthReady polls /readyz until it answers 200.
func growthReady(ctx context.Context, s *benchServer) error {
	deadline := time.Now().Add(time.Minute)
	for {
		status, _, err := s.call(ctx, http.MethodGet, "/readyz", nil)
		if err == nil && status == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after a minute (HTTP %d, %v)", status, err)
		}
		if !sleepUntil(ctx, nil, time.Now().Add(time.Millisecond)) {
			return ctx.Err()
		}
	}
}
