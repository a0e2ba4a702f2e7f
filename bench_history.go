package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"
)

// The shape of the history scenario's database, at scale 1.
const (
	benchHistoryNumbers = 10_000_000 // recorded numbers
	benchHistoryPerJob  = 10         // numbers a job, on average
	benchHistoryRepeats = 5          // jobs a number is in, on average
	benchHistoryUsers   = 100
	benchHistoryQueries = 2000
)

// runHistory measures GET /v3/numbers/{number}/history on a database that
// holds many recorded numbers: one client asks, one request after
// another, for numbers of the users' pools, each as its owner.
func (b *bench) runHistory(ctx context.Context) (benchFigures, error) {
	numbers := b.count(benchHistoryNumbers, 10*benchHistoryPerJob*benchHistoryUsers)
	shape := benchFill{Users: benchHistoryUsers, Jobs: numbers / benchHistoryPerJob, Numbers: numbers,
		Distinct: numbers / benchHistoryRepeats}
	f, s, err := b.serveFilled(ctx, shape)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	queries := b.count(benchHistoryQueries, 200)
	rng := rand.New(rand.NewPCG(1, 2))
	latencies := make([]time.Duration, 0, queries)
	entries := 0
	for range queries {
		u := 1 + rng.IntN(shape.Users)
		number := f.poolNumber(u, rng.IntN(f.poolSize))
		start := time.Now()
		status, data, err := s.callAs(ctx, benchFillUser(u), benchFillKey(u), http.MethodGet, "/v3/numbers/"+number+"/history", nil)
		latencies = append(latencies, time.Since(start))
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("history: HTTP %d: %.300s", status, data)
		}
		if err != nil {
			return nil, err
		}
		var h struct {
			History []json.RawMessage `json:"history"`
		}
		if err := json.Unmarshal(data, &h); err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
		entries += len(h.History)
	}
	slices.Sort(latencies)
	return benchFigures{"p50_ms": benchPercentile(latencies, 50), "p99_ms": benchPercentile(latencies, 99),
		"max_ms": benchPercentile(latencies, 100), "queries": float64(queries), "numbers": float64(numbers),
		"jobs": float64(shape.Jobs), "mean_entries": float64(entries) / float64(queries), "fill_s": f.took.Seconds()}, nil
}
