package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// tinyBenchArgs run every scenario once at a size that takes seconds.
var tinyBenchArgs = []string{"bench", "-scale", "0.002", "-repeats", "1", "-duration", "200ms"}

// runTinyBench runs the bench with extra flags and returns its standard
// output; it fails the test, with the bench's log, if the bench fails.
func runTinyBench(t *testing.T, extra ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := append(slices.Clone(tinyBenchArgs), extra...)
	if err := run(context.Background(), args, mapEnv(nil), nil, &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	return stdout.Bytes()
}

// checkBenchRows checks that the report has exactly the wanted scenarios,
// in order, each with a positive finite value and figures. It judges no
// time and no rate: only that the code ran and produced numbers.
func checkBenchRows(t *testing.T, report benchReport, want []string) {
	t.Helper()
	var got []string
	for _, r := range report.Results {
		got = append(got, r.Name)
		if r.Error != "" {
			t.Errorf("%s: error %s", r.Name, r.Error)
		}
		if !(r.Value > 0) || math.IsInf(r.Value, 0) {
			t.Errorf("%s: value %v, want a positive finite number", r.Name, r.Value)
		}
		if len(r.Runs) != 1 || len(r.Figures) == 0 {
			t.Errorf("%s: %d runs and %d figures, want 1 run and some figures", r.Name, len(r.Runs), len(r.Figures))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("scenarios %v, want %v", got, want)
	}
}

// TestBenchRunsEveryScenarioAtTinyScale runs the whole bench in-process at
// a tiny scale so that its code cannot rot, and checks the table and the
// JSON report it writes.
func TestBenchRunsEveryScenarioAtTinyScale(t *testing.T) {
	if all := benchScenarioNames(); len(all) != 15 {
		t.Fatalf("%d scenarios, want 15", len(all))
	}
	forEachStore(t, func(t *testing.T, db string) {
		var cfg benchConfig
		args := []string{"-json", filepath.Join(t.TempDir(), "bench.json")}
		if onPG(db) {
			cfg.db = db
			args = append(args, "-db", db)
		}
		var names []string
		for _, sc := range benchScenarios {
			if cfg.storeFits(sc) {
				names = append(names, sc.name)
			}
		}
		checkTinyBench(t, names, args...)
	})
}

// checkTinyBench runs the tiny bench with args (the first two being -json
// and its file) and checks that its table and report hold exactly the
// scenarios names, each with a positive finite value.
func checkTinyBench(t *testing.T, names []string, args ...string) {
	t.Helper()
	jsonPath := args[1]
	table := string(runTinyBench(t, args...))
	for _, want := range []string{"machine: ", "SCENARIO", "VALUE", "TARGET", "MET"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(table, "\n") {
		if fields := strings.Fields(line); len(fields) > 0 && slices.Contains(names, fields[0]) {
			rows[fields[0]] = fields
		}
	}
	for _, name := range names {
		fields, ok := rows[name]
		if !ok {
			t.Errorf("table has no %s row:\n%s", name, table)
			continue
		}
		v, err := strconv.ParseFloat(strings.ReplaceAll(fields[1], ",", ""), 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s row value %q, want a positive finite number", name, fields[1])
		}
	}

	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var report benchReport
	if err := json.Unmarshal(data, &report); err != nil {
		t.Fatalf("-json output does not parse: %v\n%s", err, data)
	}
	if report.Machine.Cores < 1 || report.Machine.GoVersion == "" {
		t.Errorf("machine %+v lacks cores or Go version", report.Machine)
	}
	checkBenchRows(t, report, names)
}

// TestBenchJSONToStandardOutput checks that -json - leaves standard output
// pure JSON (the table goes to standard error), and that -only selects.
func TestBenchJSONToStandardOutput(t *testing.T) {
	out := runTinyBench(t, "-only", "submit,sync", "-json", "-")
	var report benchReport
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("standard output is not JSON: %v\n%s", err, out)
	}
	checkBenchRows(t, report, []string{"sync", "submit"})
}

// TestBenchFlagsRejectNonsense checks the flag validation.
func TestBenchFlagsRejectNonsense(t *testing.T) {
	for _, args := range [][]string{
		{"-scale", "0"}, {"-scale", "-1"}, {"-repeats", "0"}, {"-latency", "0s"},
		{"-duration", "-1s"}, {"-only", "throughput,nosuch"}, {"-workers-upstream", "0"}, {"extra"},
	} {
		var stderr bytes.Buffer
		if _, err := parseBenchFlags(args, mapEnv(nil), &stderr); err == nil {
			t.Errorf("parseBenchFlags(%q) accepted it", args)
		}
	}
}
