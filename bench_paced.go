package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// The paced synchronous scenario: the target's question asked directly.
// The sync scenario's 32 clients send as fast as the server answers, so it
// reports the latency at whatever rate the machine saturates at; the
// targets ask for a latency at a given rate. This one offers requests at a
// fixed rate, whether or not the earlier ones were answered, the way a
// reseller's many independent clients arrive.

const (
	// benchPacedOver is how far above its target's rate the scenario
	// offers requests, so that the rate it achieves (a little under the
	// offered one: the last requests' answers are still on the way when
	// the clock starts counting) can be held to the target.
	benchPacedOver = 1.1
	// benchPacedSlots bounds the requests in flight. A server that falls
	// behind makes later requests wait for a slot, and that wait counts
	// in their latency.
	benchPacedSlots = 256
	// benchPacedWarmUp is the longest the scenario sends at its rate
	// before it starts counting (a fifth of -duration when that is
	// shorter): a server just started opens its database connections and
	// fills its caches on the first requests, which a running service did
	// long ago.
	benchPacedWarmUp = time.Second
)

// pacedTargetRate is the request rate the synchronous target names: 2,000
// a second on SQLite, 1,000 on PostgreSQL.
func (b *bench) pacedTargetRate() float64 {
	if b.pg != nil {
		return 1000
	}
	return 2000
}

// runSyncPaced offers small synchronous requests at a fixed rate, warms up,
// then counts those due in the -duration after, each timed from the moment
// it was due, not from the moment it was sent: a server that falls behind
// is not excused by the client waiting for it (no coordinated omission).
func (b *bench) runSyncPaced(ctx context.Context) (benchFigures, error) {
	s, bodies, err := b.startSyncServer(ctx)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	offered := benchPacedOver * b.pacedTargetRate()
	interval := time.Duration(float64(time.Second) / offered)
	slots := make(chan struct{}, benchPacedSlots)
	var mu sync.Mutex
	var latencies []time.Duration
	var wg sync.WaitGroup
	begin := time.Now()
	start := begin.Add(min(benchPacedWarmUp, b.cfg.duration/5)) // the first due request counted
	end := start.Add(b.cfg.duration)
	for i := 0; ctx.Err() == nil; i++ {
		due := begin.Add(time.Duration(i) * interval)
		if !due.Before(end) || !sleepUntil(ctx, nil, due) {
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue // the loop ends
		}
		body := bodies[i%len(bodies)]
		wg.Go(func() {
			defer func() { <-slots }()
			status, data, err := s.call(ctx, http.MethodPost, "/v3/bulk_restore", body)
			took := time.Since(due)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("paced sync request: HTTP %d, want 200: %.300s", status, data)
			}
			if err != nil {
				cancel(err)
				return
			}
			if due.Before(start) {
				return // warming up
			}
			mu.Lock()
			latencies = append(latencies, took)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	if len(latencies) == 0 {
		return nil, errors.New("paced sync: no request finished")
	}
	slices.Sort(latencies)
	return benchFigures{"offered_per_s": offered, "requests_per_s": float64(len(latencies)) / elapsed.Seconds(),
		"p50_ms": benchPercentile(latencies, 50), "p99_ms": benchPercentile(latencies, 99),
		"max_ms": benchPercentile(latencies, 100), "requests": float64(len(latencies))}, nil
}

// syncMet judges a synchronous scenario against its target: p99 at most
// maxP99 ms while at least rate requests a second were answered.
func syncMet(maxP99, rate float64) func(f benchFigures) bool {
	return func(f benchFigures) bool { return f["p99_ms"] <= maxP99 && f["requests_per_s"] >= rate }
}

// pacedNote describes the paced scenario's medians.
func pacedNote(b *bench, f benchFigures) string {
	return fmt.Sprintf("%s requests/s answered of %s offered, p50 %s ms, max %s ms; %d numbers each for %s after a warm-up, timed from when each was due",
		benchFormat(f["requests_per_s"]), benchFormat(f["offered_per_s"]), benchFormat(f["p50_ms"]),
		benchFormat(f["max_ms"]), benchSyncNumbers, b.cfg.duration)
}
