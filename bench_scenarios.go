package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The shapes of the scenarios: what -scale leaves alone.
const (
	benchUserName    = "bench"
	benchAPIKey      = "bench-0f6b2c8e4a1d9375c2e8b6a4f0d1e3c5"
	benchSyncClients = 32   // concurrent clients of the sync scenario
	benchSyncNumbers = 10   // numbers per synchronous request (the default -sync-limit)
	benchSmallJob    = 11   // the smallest queued job
	benchRawPerTx    = 1000 // updates per transaction of the raw SQLite (or PostgreSQL) rate
	benchPollEvery   = 5 * time.Millisecond
	benchFirstNumber = 15550000000 // the bench's numbers are 11 digits from here
)

// benchNumbers returns n distinct valid numbers from first on.
func benchNumbers(first int64, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.FormatInt(first+int64(i), 10)
	}
	return out
}

// benchBody is a POST /v3/bulk_restore body.
func benchBody(numbers []string, webhookURL string) []byte {
	body, err := json.Marshal(struct {
		Numbers    []string `json:"numbers"`
		WebhookURL string   `json:"webhook_url,omitempty"`
	}{numbers, webhookURL})
	if err != nil {
		panic(err) // strings always marshal
	}
	return body
}

// benchPercentile returns the p-th percentile (0-100) of sorted durations,
// in milliseconds, by the nearest-rank method.
func benchPercentile(sorted []time.Duration, p float64) float64 {
	rank := max(0, min(len(sorted)-1, int(float64(len(sorted))*p/100+0.999999)-1))
	return float64(sorted[rank]) / float64(time.Millisecond)
}

// startWithUpstream starts a fake upstream at the bench's latency and a
// server that restores through it; stop stops both.
func (b *bench) startWithUpstream(ctx context.Context) (*benchUpstream, *benchServer, func(), error) {
	up, err := startBenchUpstream(b.cfg.latency, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := b.startServer(ctx, nil, b.upstreamArgs(up)...)
	if err != nil {
		up.close()
		return nil, nil, nil, err
	}
	return up, s, func() { s.stop(); up.close() }, nil
}

// upstreamArgs are the serve flags that point a server at the fake upstream.
func (b *bench) upstreamArgs(u *benchUpstream) []string {
	return []string{"-backend", "upstream", "-upstream-url", u.url, "-workers", strconv.Itoa(b.cfg.workersUpstream)}
}

// runThroughput times one queued job of all-released inventory numbers from
// submit to completed, and the raw SQLite update rate on the same kind of
// file.
func (b *bench) runThroughput(ctx context.Context) (benchFigures, error) {
	raw, err := b.rawRate(ctx, b.count(100000, benchRawPerTx), benchRawPerTx)
	if err != nil {
		return nil, err
	}
	n := b.count(100000, benchSmallJob)
	numbers := benchNumbers(benchFirstNumber, n)
	s, err := b.startServer(ctx, numbers)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	body := benchBody(numbers, "")
	start := time.Now()
	id, err := s.submit(ctx, body)
	if err != nil {
		return nil, err
	}
	accepted := time.Since(start)
	if err := s.waitCompleted(ctx, id, b.deadline(n)); err != nil {
		return nil, err
	}
	rate := float64(n) / time.Since(start).Seconds()
	return benchFigures{"numbers_per_s": rate, "raw_updates_per_s": raw, "ratio": rate / raw,
		"numbers": float64(n), "submit_ms": float64(accepted) / float64(time.Millisecond)}, nil
}

// runUpstream drains one job through the fake upstream and compares the
// rate with what the workers could do at its latency.
func (b *bench) runUpstream(ctx context.Context) (benchFigures, error) {
	up, s, stop, err := b.startWithUpstream(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	n := b.count(20000, benchSmallJob)
	id, err := s.submit(ctx, benchBody(benchNumbers(benchFirstNumber, n), ""))
	if err != nil {
		return nil, err
	}
	start, busyBefore := time.Now(), up.busy.Load()
	if err := s.waitCompleted(ctx, id, b.deadline(n)); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	rate := float64(n) / elapsed.Seconds()
	ideal := float64(b.cfg.workersUpstream) / b.cfg.latency.Seconds()
	// Calls under way at the upstream, on average: the workers' time there.
	concurrency := float64(up.busy.Load()-busyBefore) / float64(elapsed)
	return benchFigures{"efficiency": rate / ideal, "numbers_per_s": rate, "ideal_per_s": ideal,
		"numbers": float64(n), "upstream_mean_concurrency": concurrency,
		"upstream_mean_call_ms": float64(up.busy.Load()-busyBefore) / float64(n) / float64(time.Millisecond)}, nil
}

// runSync has concurrent clients post small synchronous requests for the
// -duration and reports the request rate and latencies.
func (b *bench) runSync(ctx context.Context) (benchFigures, error) {
	s, bodies, err := b.startSyncServer(ctx)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var latencies []time.Duration
	start := time.Now()
	end := start.Add(b.cfg.duration)
	var wg sync.WaitGroup
	for range benchSyncClients {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(end) && ctx.Err() == nil {
				body := bodies[int(next.Add(1)-1)%len(bodies)]
				t := time.Now()
				status, data, err := s.call(ctx, http.MethodPost, "/v3/bulk_restore", body)
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("sync request: HTTP %d, want 200: %.300s", status, data)
				}
				if err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					break
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return nil, firstErr
	}
	if len(latencies) == 0 {
		return nil, errors.New("sync: no request finished")
	}
	slices.Sort(latencies)
	return benchFigures{"requests_per_s": float64(len(latencies)) / elapsed.Seconds(),
		"p50_ms": benchPercentile(latencies, 50), "p99_ms": benchPercentile(latencies, 99),
		"requests": float64(len(latencies))}, nil
}

// startSyncServer starts a server whose inventory holds the numbers of the
// synchronous scenarios and returns it with their request bodies, each of
// benchSyncNumbers numbers; the bodies are sent in turn, again and again.
func (b *bench) startSyncServer(ctx context.Context) (*benchServer, [][]byte, error) {
	pool := benchNumbers(benchFirstNumber, b.count(100000, benchSyncClients*benchSyncNumbers))
	s, err := b.startServer(ctx, pool)
	if err != nil {
		return nil, nil, err
	}
	bodies := make([][]byte, 0, len(pool)/benchSyncNumbers)
	for i := 0; i+benchSyncNumbers <= len(pool); i += benchSyncNumbers {
		bodies = append(bodies, benchBody(pool[i:i+benchSyncNumbers], ""))
	}
	return s, bodies, nil
}

// runSubmit times queued submissions, one after another, to their 202,
// while the workers drain the earlier ones.
func (b *bench) runSubmit(ctx context.Context) (benchFigures, error) {
	n, requests := b.count(10000, benchSmallJob), b.count(100, 5)
	numbers := benchNumbers(benchFirstNumber, n)
	s, err := b.startServer(ctx, numbers)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	body := benchBody(numbers, "")
	latencies := make([]time.Duration, 0, requests)
	for range requests {
		t := time.Now()
		if _, err := s.submit(ctx, body); err != nil {
			return nil, err
		}
		latencies = append(latencies, time.Since(t))
	}
	slices.Sort(latencies)
	return benchFigures{"p50_ms": benchPercentile(latencies, 50), "p99_ms": benchPercentile(latencies, 99),
		"requests": float64(requests), "numbers": float64(n)}, nil
}

// runFairness times a small job sent while a big one drains through the
// fake upstream, then cancels the big one.
func (b *bench) runFairness(ctx context.Context) (benchFigures, error) {
	_, s, stop, err := b.startWithUpstream(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	n := b.count(100000, benchSmallJob)
	bigID, err := s.submit(ctx, benchBody(benchNumbers(benchFirstNumber, n), ""))
	if err != nil {
		return nil, err
	}
	draining := func(j jobSummaryJSON) bool { return j.processed() > 0 || j.settled() }
	if _, err := s.waitJob(ctx, bigID, b.deadline(n), draining); err != nil {
		return nil, err
	}
	start := time.Now()
	smallID, err := s.submit(ctx, benchBody(benchNumbers(benchFirstNumber+int64(n), benchSmallJob), ""))
	if err != nil {
		return nil, err
	}
	if err := s.waitCompleted(ctx, smallID, b.deadline(n)); err != nil {
		return nil, err
	}
	seconds := time.Since(start).Seconds()
	big, err := s.status(ctx, bigID)
	if err != nil {
		return nil, err
	}
	status, data, err := s.call(ctx, http.MethodPost, "/v3/bulk_restore_cancel?job_uuid="+bigID, nil)
	if err == nil && status != http.StatusOK && status != http.StatusConflict { // 409: it had finished
		err = fmt.Errorf("cancel: HTTP %d: %.300s", status, data)
	}
	if err != nil {
		return nil, err
	}
	return benchFigures{"seconds": seconds, "big_numbers": float64(n),
		"big_done_fraction": float64(big.SuccessCount+big.FailureCount) / float64(n)}, nil
}

// runMemory measures the peak RSS of the process through one big job and
// one full read of its status.
func (b *bench) runMemory(ctx context.Context) (benchFigures, error) {
	n := b.count(100000, benchSmallJob)
	numbers := benchNumbers(benchFirstNumber, n)
	s, err := b.startServer(ctx, numbers)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	body := benchBody(numbers, "")
	startKB, err := benchResetPeakRSS()
	if err != nil {
		return nil, err
	}
	id, err := s.submit(ctx, body)
	if err != nil {
		return nil, err
	}
	if err := s.waitCompleted(ctx, id, b.deadline(n)); err != nil {
		return nil, err
	}
	size, err := s.readFullStatus(ctx, id)
	if err != nil {
		return nil, err
	}
	peakKB, err := benchProcStatusKB("VmHWM")
	if err != nil {
		return nil, err
	}
	return benchFigures{"peak_mb": float64(peakKB) * 1024 / 1e6, "start_mb": float64(startKB) * 1024 / 1e6,
		"status_mb": float64(size) / 1e6, "numbers": float64(n)}, nil
}

// readFullStatus reads a job's whole status answer, every result, as a
// client streaming it would, and returns its size in bytes.
func (s *benchServer) readFullStatus(ctx context.Context, id string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/v3/bulk_restore_status?job_uuid="+id, nil)
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(benchUserName, benchAPIKey)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("full status: HTTP %d", resp.StatusCode)
	}
	return io.Copy(io.Discard, resp.Body)
}

// benchProcStatusKB reads one kB figure of /proc/self/status, such as VmHWM.
func benchProcStatusKB(field string) (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read peak RSS: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if value, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(value), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

// runWebhooks makes many small jobs with a webhook each finish at once and
// measures how fast their deliveries reach the receiver. The jobs restore
// through the fake upstream, which holds each job's last number until every
// job is submitted and its other numbers are answered: releasing them
// completes every job within a commit or two.
func (b *bench) runWebhooks(ctx context.Context) (benchFigures, error) {
	jobs := b.count(1000, 4)
	up, err := startBenchUpstream(b.cfg.latency, func(number string) bool {
		n, err := strconv.ParseInt(number, 10, 64)
		return err == nil && (n-benchFirstNumber)%benchSmallJob == benchSmallJob-1
	})
	if err != nil {
		return nil, err
	}
	defer up.close()
	recv, err := startBenchReceiver(jobs)
	if err != nil {
		return nil, err
	}
	defer recv.srv.Close()
	// A worker for every held call, and the usual number besides.
	s, err := b.startServer(ctx, nil, "-backend", "upstream", "-upstream-url", up.url,
		"-workers", strconv.Itoa(jobs+b.cfg.workersUpstream), "-restore-timeout", "10m")
	if err != nil {
		return nil, err
	}
	defer s.stop()
	numbers := benchNumbers(benchFirstNumber, jobs*benchSmallJob)
	bodies := make(chan []byte, jobs)
	for j := range jobs {
		bodies <- benchBody(numbers[j*benchSmallJob:(j+1)*benchSmallJob], recv.url)
	}
	close(bodies)
	var mu sync.Mutex
	var lastSubmit time.Time
	var firstErr error
	var wg sync.WaitGroup
	for range benchSyncClients {
		wg.Go(func() {
			for body := range bodies {
				_, err := s.submit(ctx, body)
				mu.Lock()
				firstErr, lastSubmit = cmp.Or(firstErr, err), maxTime(lastSubmit, time.Now())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	for deadline := time.Now().Add(b.deadline(len(numbers))); up.held.Load() < int64(jobs) ||
		up.answered.Load() < int64(len(numbers)-jobs); time.Sleep(benchPollEvery) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("webhooks: %d of %d last numbers reached the upstream in time", up.held.Load(), jobs)
		}
	}
	release := time.Now()
	close(up.release)
	select {
	case <-recv.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(b.deadline(len(numbers))):
		recv.mu.Lock()
		defer recv.mu.Unlock()
		return nil, fmt.Errorf("webhooks: %d of %d delivered in time", len(recv.seen), jobs)
	}
	recv.mu.Lock()
	first, last := recv.first, recv.last
	recv.mu.Unlock()
	f := benchFigures{"deliveries_per_s": float64(jobs) / last.Sub(release).Seconds(), "jobs": float64(jobs),
		"first_delivery_ms": float64(first.Sub(release)) / float64(time.Millisecond),
		"tail_ms":           float64(last.Sub(lastSubmit)) / float64(time.Millisecond)}
	if span := last.Sub(first); span > 0 {
		f["first_to_last_per_s"] = float64(jobs) / span.Seconds()
	}
	return f, nil
}
