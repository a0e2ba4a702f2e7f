package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// benchDryRunScenario is the dryrun row of the bench: how long a dry run of
// a full request of known inventory numbers takes to answer.
var benchDryRunScenario = benchScenario{
	name: "dryrun", key: "p50_ms", unit: "ms p50", target: "<= 200 ms",
	run: (*bench).runDryRun,
	met: func(f benchFigures) bool { return f["p50_ms"] <= 200 },
	note: func(b *bench, f benchFigures) string {
		return fmt.Sprintf("p99 %s ms; dry runs of %s inventory numbers (five states, all known), %s requests one after another",
			benchFormat(f["p99_ms"]), benchFormat(f["numbers"]), benchFormat(f["requests"]))
	},
}

// benchDryRunMix is the inventory of the dryrun scenario, a state per
// number in turn: restorable, already active, window expired, no longer
// available, restorable with both flags. Three of five would succeed.
var benchDryRunMix = []struct {
	state   string
	ago     time.Duration
	flags   bool
	success bool
}{
	{"released", time.Hour, false, true},
	{"active", 24 * time.Hour, false, true},
	{"released", 40 * 24 * time.Hour, false, false},
	{"unavailable", time.Hour, false, false},
	{"released", time.Hour, true, true},
}

// runDryRun times dry runs of the same request, one after another, against
// a server whose inventory holds every number in a mix of states, and
// checks each answer's counts.
func (b *bench) runDryRun(ctx context.Context) (benchFigures, error) {
	n, requests := min(b.count(10000, benchSmallJob), 10000), b.count(50, 5)
	numbers := benchNumbers(benchFirstNumber, n)
	s, err := b.startServer(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	wantSuccess, err := benchSeedMix(ctx, s.dbURL, numbers)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]any{"numbers": numbers, "dry_run": true})
	if err != nil {
		return nil, err
	}
	latencies := make([]time.Duration, 0, requests)
	for i := range requests + 1 { // the first one warms up, untimed
		t := time.Now()
		status, data, err := s.call(ctx, http.MethodPost, "/v3/bulk_restore", body)
		elapsed := time.Since(t)
		if err != nil {
			return nil, fmt.Errorf("dry run: %w", err)
		}
		var got dryRunJSON
		if status != http.StatusOK || json.Unmarshal(data, &got) != nil || !got.DryRun ||
			got.SuccessCount != wantSuccess || got.FailureCount != n-wantSuccess || len(got.Results) != n {
			return nil, fmt.Errorf("dry run: HTTP %d, want 200 with %d of %d succeeding: %.300s", status, wantSuccess, n, data)
		}
		if i > 0 {
			latencies = append(latencies, elapsed)
		}
	}
	slices.Sort(latencies)
	return benchFigures{"p50_ms": benchPercentile(latencies, 50), "p99_ms": benchPercentile(latencies, 99),
		"numbers": float64(n), "requests": float64(requests)}, nil
}

// benchSeedMix gives the bench user the numbers in the states of
// benchDryRunMix, beside the running server (as `numbers import` would),
// and returns how many a restore would succeed for.
func benchSeedMix(ctx context.Context, db string, numbers []string) (int, error) {
	store, err := openStore(db)
	if err != nil {
		return 0, err
	}
	defer store.Close()
	u, err := store.userByName(ctx, benchUserName)
	if err != nil {
		return 0, err
	}
	now, success := time.Now(), 0
	rows := make([]InventoryRow, len(numbers))
	for i, number := range numbers {
		m := benchDryRunMix[i%len(benchDryRunMix)]
		rows[i] = InventoryRow{Number: number, State: m.state, ReleasedAt: now.Add(-m.ago),
			RequiresIdentityUpdate: m.flags, NeedsRegistration: m.flags}
		if m.success {
			success++
		}
	}
	return success, store.importInventory(ctx, u.ID, rows, false)
}
