package main

import (
	"context"
	"fmt"
)

// The table of the bench: what each scenario measures, its target and its
// note.

// benchFigures is what one run of a scenario measured, by name; a
// scenario's row holds the median of each figure over the repeats.
type benchFigures map[string]float64

// benchScenario is one row of the table: how to run it and how to judge
// and describe its medians.
type benchScenario struct {
	name   string
	key    string // the figure shown as the row's value
	unit   string
	target string
	run    func(b *bench, ctx context.Context) (benchFigures, error)
	met    func(f benchFigures) bool
	note   func(b *bench, f benchFigures) string
	// pgTarget and pgMet, when set, are the target on PostgreSQL, where
	// it differs from SQLite's.
	pgTarget string
	pgMet    func(f benchFigures) bool
	// store is the database the scenario needs: "" either, "sqlite" (it
	// builds its file directly), "postgres" (several instances share it).
	store string
}

// benchScenarios are the rows of the table, in the order they run.
var benchScenarios = []benchScenario{
	{
		name: "throughput", key: "numbers_per_s", unit: "numbers/s", target: ">= 50,000 (ratio >= 0.25)",
		run:      (*bench).runThroughput,
		met:      func(f benchFigures) bool { return f["numbers_per_s"] >= 50000 && f["ratio"] >= 0.25 },
		pgTarget: ">= 20,000 (ratio >= 0.15)",
		pgMet:    func(f benchFigures) bool { return f["numbers_per_s"] >= 20000 && f["ratio"] >= 0.15 },
		note: func(b *bench, f benchFigures) string {
			return fmt.Sprintf("one %s-number job, submit to completed; raw %s %s updates/s (1,000 a tx): ratio %.3f",
				benchFormat(f["numbers"]), b.rawName(), benchFormat(f["raw_updates_per_s"]), f["ratio"])
		},
	},
	{
		name: "upstream", key: "efficiency", unit: "of ideal", target: ">= 0.90",
		run: (*bench).runUpstream,
		met: func(f benchFigures) bool { return f["efficiency"] >= 0.90 },
		note: func(b *bench, f benchFigures) string {
			return fmt.Sprintf("%s numbers at %s numbers/s (202 to completed); ideal %s/s = %d workers / %s; %s calls under way on average, %s ms each",
				benchFormat(f["numbers"]), benchFormat(f["numbers_per_s"]), benchFormat(f["ideal_per_s"]),
				b.cfg.workersUpstream, b.cfg.latency, benchFormat(f["upstream_mean_concurrency"]), benchFormat(f["upstream_mean_call_ms"]))
		},
	},
	{
		name: "sync", key: "p99_ms", unit: "ms p99", target: "<= 20 ms at >= 2,000 req/s",
		run:      (*bench).runSync,
		met:      syncMet(20, 2000),
		pgTarget: "<= 30 ms at >= 1,000 req/s",
		pgMet:    syncMet(30, 1000),
		note: func(b *bench, f benchFigures) string {
			return fmt.Sprintf("%s requests/s, p50 %s ms; %d clients posting %d numbers for %s",
				benchFormat(f["requests_per_s"]), benchFormat(f["p50_ms"]), benchSyncClients, benchSyncNumbers, b.cfg.duration)
		},
	},
	{
		name: "paced", key: "p99_ms", unit: "ms p99", target: "<= 20 ms at >= 2,000 req/s",
		run:      (*bench).runSyncPaced,
		met:      syncMet(20, 2000),
		pgTarget: "<= 30 ms at >= 1,000 req/s",
		pgMet:    syncMet(30, 1000),
		note:     pacedNote,
	},
	{
		name: "submit", key: "p50_ms", unit: "ms p50", target: "<= 150 ms",
		run: (*bench).runSubmit,
		met: func(f benchFigures) bool { return f["p50_ms"] <= 150 },
		note: func(b *bench, f benchFigures) string {
			return fmt.Sprintf("p99 %s ms; time to 202 over %s requests of %s numbers, one after another",
				benchFormat(f["p99_ms"]), benchFormat(f["requests"]), benchFormat(f["numbers"]))
		},
	},
	{
		name: "fairness", key: "seconds", unit: "s", target: "<= 2 s",
		run: (*bench).runFairness,
		met: func(f benchFigures) bool { return f["seconds"] <= 2 },
		note: func(b *bench, f benchFigures) string {
			return fmt.Sprintf("%d-number job to completed, sent while a %s-number job drains (%d workers, %s upstream; big job %.1f%% done by then)",
				benchSmallJob, benchFormat(f["big_numbers"]), b.cfg.workersUpstream, b.cfg.latency, 100*f["big_done_fraction"])
		},
	},
	{
		name: "memory", key: "peak_mb", unit: "MB", target: "<= 150 MB",
		run: (*bench).runMemory,
		met: func(f benchFigures) bool { return f["peak_mb"] <= 150 },
		note: func(b *bench, f benchFigures) string {
			return fmt.Sprintf("peak RSS of the whole process (see below) through a %s-number job and one full status read (%s MB); %s MB at the start",
				benchFormat(f["numbers"]), benchFormat(f["status_mb"]), benchFormat(f["start_mb"]))
		},
	},
	{
		name: "million", key: "peak_mb", unit: "MB", target: "<= 150 MB",
		run: (*bench).runMillion,
		met: func(f benchFigures) bool { return f["peak_mb"] <= 150 },
		note: func(b *bench, f benchFigures) string {
			return fmt.Sprintf("peak RSS of the whole process through a %s-number job: submitted, drained, read back as CSV (%s MB); %s MB at the start",
				benchFormat(f["numbers"]), benchFormat(f["csv_mb"]), benchFormat(f["start_mb"]))
		},
	},
	{
		name: "history", store: "sqlite", key: "p99_ms", unit: "ms p99", target: "<= 10 ms on 10,000,000 numbers",
		run: (*bench).runHistory,
		met: func(f benchFigures) bool { return f["p99_ms"] <= 10 && f["numbers"] >= benchHistoryNumbers },
		note: func(b *bench, f benchFigures) string {
			return fmt.Sprintf("GET /v3/numbers/{number}/history, one after another, %s requests; p50 %s ms, max %s ms, %s entries an answer; %s recorded numbers in %s jobs of 100 users (built in %s s)",
				benchFormat(f["queries"]), benchFormat(f["p50_ms"]), benchFormat(f["max_ms"]), benchFormat(f["mean_entries"]),
				benchFormat(f["numbers"]), benchFormat(f["jobs"]), benchFormat(f["fill_s"]))
		},
	},
	{
		name: "growth", store: "sqlite", key: "worst_ratio", unit: "× (grown/fresh)", target: "every ratio <= 1.2",
		run:  (*bench).runGrowth,
		met:  func(f benchFigures) bool { return f["worst_ratio"] <= 1.2 },
		note: func(b *bench, f benchFigures) string { return growthNote(f) },
	},
	{
		name: "csv", store: "sqlite", key: "rows_per_s", unit: "rows/s", target: ">= 200,000, RSS +<= 150 MB",
		run: (*bench).runCSV,
		met: func(f benchFigures) bool { return f["rows_per_s"] >= 200000 && f["delta_mb"] <= 150 },
		note: func(b *bench, f benchFigures) string {
			return fmt.Sprintf("a %s-number job as CSV (%s MB in %s s); peak RSS %s MB, %s MB above the %s MB before it",
				benchFormat(f["rows"]), benchFormat(f["csv_mb"]), benchFormat(f["seconds"]), benchFormat(f["peak_mb"]),
				benchFormat(f["delta_mb"]), benchFormat(f["start_mb"]))
		},
	},
	{
		name: "import", key: "rows_per_s", unit: "rows/s", target: ">= 100,000, RSS < 200 MB",
		run: (*bench).runImport,
		met: func(f benchFigures) bool { return f["rows_per_s"] >= 100000 && f["peak_mb"] < 200 },
		note: func(b *bench, f benchFigures) string {
			return fmt.Sprintf("PUT of a %s-row inventory CSV through the admin API, one transaction (%s s), peak RSS %s MB (%s at the start); "+
				"another user's 1-number restore waited up to %s ms (p50 %s): the import's write holds the writer. "+
				"Then DELETE of that user with a %s-number job: %s s, the restore waited up to %s ms (p50 %s)",
				benchFormat(f["rows"]), benchFormat(f["seconds"]), benchFormat(f["peak_mb"]), benchFormat(f["start_mb"]),
				benchFormat(f["import_probe_max_ms"]), benchFormat(f["import_probe_p50_ms"]),
				benchFormat(f["job_numbers"]), benchFormat(f["delete_seconds"]), benchFormat(f["delete_probe_max_ms"]), benchFormat(f["delete_probe_p50_ms"]))
		},
	},
	{
		name: "webhooks", key: "deliveries_per_s", unit: "deliveries/s", target: ">= 500",
		run: (*bench).runWebhooks,
		met: func(f benchFigures) bool { return f["deliveries_per_s"] >= 500 },
		note: func(b *bench, f benchFigures) string {
			return fmt.Sprintf("%s jobs completing at once (their last restores held, then released): jobs / (release to last delivery); first delivery after %s ms, first to last %s/s",
				benchFormat(f["jobs"]), benchFormat(f["first_delivery_ms"]), benchFormat(f["first_to_last_per_s"]))
		},
	},
	benchDryRunScenario,
	benchInstancesScenario,
}

// benchScenarioNames lists the scenarios' names, in order.
func benchScenarioNames() []string {
	names := make([]string, len(benchScenarios))
	for i, s := range benchScenarios {
		names[i] = s.name
	}
	return names
}
