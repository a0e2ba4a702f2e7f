package main

import (
	"context"
	"fmt"
	"time"
)

// The bench on PostgreSQL (-db): servers on fresh databases of -db's
// server, raw PostgreSQL as the throughput's baseline, and a scenario of
// its own, two instances on one database against one.

// startPGServer is startServer on a fresh PostgreSQL database, dropped when
// the server stops.
func (b *bench) startPGServer(ctx context.Context, inventory []string, extra ...string) (*benchServer, error) {
	db, drop, err := b.pg.newDatabase(ctx)
	if err != nil {
		return nil, err
	}
	if err := benchSeed(ctx, db, inventory); err != nil {
		drop()
		return nil, err
	}
	s, err := b.serveDB(ctx, db, extra...)
	if err != nil {
		drop()
		return nil, err
	}
	s.drop = drop
	return s, nil
}

// rawRate is the baseline of the throughput: batched updates on raw SQLite,
// or on raw PostgreSQL under -db.
func (b *bench) rawRate(ctx context.Context, rows, perTx int) (float64, error) {
	if b.pg != nil {
		return b.pg.rawPGRate(ctx, rows, perTx)
	}
	return rawSQLiteRate(ctx, rows, perTx)
}

// rawName names the baseline's database.
func (b *bench) rawName() string {
	if b.pg != nil {
		return "PostgreSQL"
	}
	return "SQLite"
}

// benchInstancesScenario compares two instances on one database with one.
var benchInstancesScenario = benchScenario{
	name: "instances", key: "ratio", unit: "× (two/one)", target: ">= 1.0", store: "postgres",
	run: (*bench).runInstances,
	met: func(f benchFigures) bool { return f["ratio"] >= 1 },
	note: func(b *bench, f benchFigures) string {
		cpu := ""
		if f["one_cpu_ms_per_1000"] > 0 && f["two_cpu_ms_per_1000"] > 0 {
			cpu = fmt.Sprintf(" (the machine's CPUs %.0f%% and %.0f%% busy, %s and %s CPU ms per 1,000 numbers)",
				100*f["one_busy"], 100*f["two_busy"], benchFormat(f["one_cpu_ms_per_1000"]), benchFormat(f["two_cpu_ms_per_1000"]))
		}
		return fmt.Sprintf("one %s-number job, submit to completed, inventory backend: one instance %s numbers/s, two %s%s; "+
			"upstream backend (%d workers each, %s): one %s numbers/s, two %s (× %.2f)",
			benchFormat(f["numbers"]), benchFormat(f["one_per_s"]), benchFormat(f["two_per_s"]), cpu,
			b.cfg.workersUpstream, b.cfg.latency, benchFormat(f["one_upstream_per_s"]), benchFormat(f["two_upstream_per_s"]),
			f["upstream_ratio"])
	},
}

// runInstances drains equal jobs with one instance and with two instances
// sharing a database, on each backend. As in the growth scenario, the two
// sides are measured in turns (one, two, then two, one) and each rate is
// the better of a side's two turns: a drain takes seconds, and a burst of
// someone else's work on the shared machine in one turn says nothing
// about either side.
func (b *bench) runInstances(ctx context.Context) (benchFigures, error) {
	n := b.count(100000, benchSmallJob)
	out := benchFigures{"numbers": float64(n)}
	for _, backend := range []string{"inventory", "upstream"} {
		for _, instances := range []int{1, 2, 2, 1} {
			d, err := b.drainWith(ctx, backend, instances, n)
			if err != nil {
				return nil, fmt.Errorf("%s backend, %d instance(s): %w", backend, instances, err)
			}
			side := map[int]string{1: "one", 2: "two"}[instances]
			key := side + map[string]string{"inventory": "_per_s", "upstream": "_upstream_per_s"}[backend]
			if d.rate <= out[key] {
				continue
			}
			out[key] = d.rate
			if backend == "inventory" && d.cpuOK {
				out[side+"_busy"], out[side+"_cpu_ms_per_1000"] = d.busy, d.cpuMsPer1000
			}
		}
	}
	out["ratio"] = out["two_per_s"] / out["one_per_s"]
	out["upstream_ratio"] = out["two_upstream_per_s"] / out["one_upstream_per_s"]
	return out, nil
}

// benchDrain is what drainWith measured: the rate, and (cpuOK) the busy
// share of the machine's CPUs and their busy time per 1,000 numbers,
// servers, PostgreSQL and the bench's client alike (the machine's
// /proc/stat: everything on it).
type benchDrain struct {
	rate, busy, cpuMsPer1000 float64
	cpuOK                    bool
}

// drainWith times one job of n numbers from submit to completed with
// instances servers on one fresh database.
func (b *bench) drainWith(ctx context.Context, backend string, instances, n int) (benchDrain, error) {
	numbers := benchNumbers(benchFirstNumber, n)
	var extra []string
	var inventory []string
	if backend == "upstream" {
		up, err := startBenchUpstream(b.cfg.latency, nil)
		if err != nil {
			return benchDrain{}, err
		}
		defer up.close()
		extra = b.upstreamArgs(up)
	} else {
		inventory = numbers
	}
	first, err := b.startServer(ctx, inventory, extra...)
	if err != nil {
		return benchDrain{}, err
	}
	defer first.stop()
	if instances == 2 {
		second, err := b.serveDB(ctx, first.dbURL, extra...)
		if err != nil {
			return benchDrain{}, err
		}
		defer second.stop()
	}
	cpuBefore, okBefore := readMachineCPU()
	start := time.Now()
	id, err := first.submit(ctx, benchBody(numbers, ""))
	if err != nil {
		return benchDrain{}, err
	}
	if err := first.waitCompleted(ctx, id, b.deadline(n)); err != nil {
		return benchDrain{}, err
	}
	d := benchDrain{rate: float64(n) / time.Since(start).Seconds()}
	cpuAfter, okAfter := readMachineCPU()
	var seconds float64
	d.busy, seconds, d.cpuOK = benchCPUUse(cpuBefore, cpuAfter, okBefore, okAfter)
	d.cpuMsPer1000 = seconds * 1000 / float64(n) * 1000
	return d, nil
}
