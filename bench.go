package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// benchConfig is every setting of `bulkrestore bench`.
type benchConfig struct {
	jsonPath        string
	scale           float64
	repeats         int
	latency         time.Duration
	duration        time.Duration
	only            []string
	workersUpstream int
	cpuProfile      string
	db              string // a PostgreSQL URL: every scenario that can runs on fresh databases there
}

// parseBenchFlags reads bench's flags (and their environment fallbacks).
func parseBenchFlags(args []string, getenv func(string) string, stderr io.Writer) (benchConfig, error) {
	var c benchConfig
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.jsonPath, "json", "", "also write the results as JSON to FILE (- for standard output; the table then goes to standard error)")
	fs.Float64Var(&c.scale, "scale", 1, "multiply every amount of work (numbers, jobs, requests, rows) by this; the shapes stay (clients, workers, job sizes around -sync-limit)")
	fs.IntVar(&c.repeats, "repeats", 3, "runs of each scenario; the table shows the medians")
	fs.DurationVar(&c.latency, "latency", 20*time.Millisecond, "latency of the fake upstream")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long the sync scenario runs")
	only := fs.String("only", "", "run only these scenarios, comma-separated: "+strings.Join(benchScenarioNames(), ","))
	fs.IntVar(&c.workersUpstream, "workers-upstream", 64, "-workers of the servers that call the fake upstream")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (server and client alike) to FILE")
	fs.StringVar(&c.db, "db", "", "a PostgreSQL URL (postgres://...) whose role may create databases: the scenarios that can run there, each on a fresh database, with raw PostgreSQL as the baseline; better given in BULKRESTORE_DB")
	rest, err := parseArgs(fs, args, getenv)
	if err != nil {
		return c, err
	}
	if len(rest) > 0 {
		return c, fmt.Errorf("%w: bench takes no arguments, got %q", errUsage, rest)
	}
	var problems []string
	check := func(bad bool, msg string) {
		if bad {
			problems = append(problems, msg)
		}
	}
	check(!(c.scale > 0) || math.IsInf(c.scale, 0), "-scale must be a positive number")
	check(c.repeats < 1, "-repeats must be at least 1")
	check(c.latency <= 0, "-latency must be positive")
	check(c.duration <= 0, "-duration must be positive")
	check(c.workersUpstream < 1, "-workers-upstream must be at least 1")
	check(c.db != "" && !isPostgresURL(c.db), "-db must be a PostgreSQL URL (the SQLite runs make their own files)")
	for _, name := range strings.Split(*only, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		check(!slices.Contains(benchScenarioNames(), name), fmt.Sprintf("-only: no scenario %q (have %s)", name, strings.Join(benchScenarioNames(), ",")))
		c.only = append(c.only, name)
	}
	if len(problems) > 0 {
		return c, fmt.Errorf("%w: %s", errUsage, strings.Join(problems, "; "))
	}
	return c, nil
}

// selected reports whether a scenario is to run.
func (c benchConfig) selected(name string) bool {
	return len(c.only) == 0 || slices.Contains(c.only, name)
}

// storeFits reports whether a scenario can run on the database of this
// run (SQLite files, or the PostgreSQL of -db).
func (c benchConfig) storeFits(sc benchScenario) bool {
	switch sc.store {
	case "sqlite":
		return c.db == ""
	case "postgres":
		return c.db != ""
	}
	return true
}

// bench runs the scenarios with one configuration.
type bench struct {
	cfg   benchConfig
	log   io.Writer                  // progress lines and the servers' warnings
	fills map[benchFill]*benchFilled // databases built for the run (bench_fill.go)
	pg    *benchPGServer             // -db's server, where the scenarios make their databases
}

// count scales an amount of work, keeping at least least.
func (b *bench) count(n, least int) int {
	return max(least, int(math.Round(float64(n)*b.cfg.scale)))
}

// deadline bounds how long a job of n numbers may take before the bench
// gives up on it: generous, since the bench measures and must not judge.
func (b *bench) deadline(n int) time.Duration {
	perNumber := time.Millisecond + 2*b.cfg.latency/time.Duration(b.cfg.workersUpstream)
	return 2*time.Minute + time.Duration(n)*perNumber
}

// benchMachine describes where the bench ran.
type benchMachine struct {
	Cores     int    `json:"cores"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	GoVersion string `json:"go_version"`
	CPU       string `json:"cpu"`
	Version   string `json:"bulkrestore"`
	// LoadStart and LoadEnd are the 1, 5 and 15 minute load averages
	// before and after the run: other processes on the cores skew it.
	LoadStart string `json:"load_average_start"`
	LoadEnd   string `json:"load_average_end"`
}

// benchSettings records the flags a report was made with.
type benchSettings struct {
	Scale           float64 `json:"scale"`
	Repeats         int     `json:"repeats"`
	Latency         string  `json:"upstream_latency"`
	Duration        string  `json:"sync_duration"`
	WorkersUpstream int     `json:"workers_upstream"`
	Database        string  `json:"database,omitempty"` // PostgreSQL's server (password hidden); empty: SQLite files
}

// benchRow is one scenario's outcome: the medians over its repeats.
type benchRow struct {
	Name    string         `json:"name"`
	Value   float64        `json:"value"`
	Unit    string         `json:"unit"`
	Target  string         `json:"target"`
	Met     bool           `json:"met"`
	Note    string         `json:"note"`
	Error   string         `json:"error,omitempty"`
	Figures benchFigures   `json:"figures"` // medians over the repeats
	Runs    []benchFigures `json:"runs"`
}

// benchReport is the whole result, as -json writes it.
type benchReport struct {
	Machine  benchMachine  `json:"machine"`
	Settings benchSettings `json:"settings"`
	Results  []benchRow    `json:"results"`
	Notes    []string      `json:"notes"`
}

// runBench is `bulkrestore bench`: it runs the scenarios against servers
// started in-process, prints the table and, with -json, writes the report.
func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseBenchFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	b := &bench{cfg: cfg, log: stderr}
	defer b.removeFills()
	if cfg.db != "" {
		if b.pg, err = openBenchPG(cfg.db); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer b.pg.close()
	}
	report := benchReport{
		Machine: benchMachineInfo(),
		Settings: benchSettings{Scale: cfg.scale, Repeats: cfg.repeats, Latency: cfg.latency.String(),
			Duration: cfg.duration.String(), WorkersUpstream: cfg.workersUpstream},
		Notes: []string{"memory is the peak RSS (VmHWM) of the whole bench process: the server runs in-process, so the figure includes the bench's client"},
	}
	if cfg.scale != 1 {
		report.Notes = append(report.Notes, fmt.Sprintf("run at -scale %g: the targets are for scale 1, so 'met' says little here", cfg.scale))
	}
	if cfg.db != "" {
		report.Settings.Database = redactDB(cfg.db)
		report.Notes = append(report.Notes, "on PostgreSQL: every scenario on a fresh database of "+redactDB(cfg.db)+
			"'s server; history, growth and csv build SQLite files directly and do not run")
	}
	var failed []string
	for _, sc := range benchScenarios {
		if !cfg.selected(sc.name) || !cfg.storeFits(sc) || ctx.Err() != nil {
			continue
		}
		row := b.runScenario(ctx, sc)
		if row.Error != "" {
			failed = append(failed, sc.name)
		}
		report.Results = append(report.Results, row)
	}
	report.Machine.LoadEnd = benchLoadAverage()
	tableOut := stdout
	if cfg.jsonPath == "-" {
		tableOut = stderr
	}
	if err := writeBenchTable(tableOut, report); err != nil {
		return err
	}
	if cfg.jsonPath != "" {
		if err := writeBenchJSON(cfg.jsonPath, stdout, report); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("bench: scenarios failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// runScenario runs one scenario -repeats times and returns its row; a
// failed run ends the scenario and is reported in the row.
func (b *bench) runScenario(ctx context.Context, sc benchScenario) benchRow {
	if b.pg != nil && sc.pgTarget != "" {
		sc.target, sc.met = sc.pgTarget, sc.pgMet
	}
	row := benchRow{Name: sc.name, Unit: sc.unit, Target: sc.target}
	for i := range b.cfg.repeats {
		f, err := sc.run(b, ctx)
		if err != nil {
			row.Error = err.Error()
			row.Note = "error: " + row.Error
			fmt.Fprintf(b.log, "bench: %s %d/%d failed: %v\n", sc.name, i+1, b.cfg.repeats, err)
			return row
		}
		fmt.Fprintf(b.log, "bench: %s %d/%d: %s %s\n", sc.name, i+1, b.cfg.repeats, benchFormat(f[sc.key]), sc.unit)
		row.Runs = append(row.Runs, f)
	}
	row.Figures = benchMedians(row.Runs)
	row.Value = row.Figures[sc.key]
	row.Met = sc.met(row.Figures)
	row.Note = sc.note(b, row.Figures)
	return row
}

// benchMedians returns, for every figure, its median over the runs.
func benchMedians(runs []benchFigures) benchFigures {
	values := map[string][]float64{}
	for _, r := range runs {
		for k, v := range r {
			values[k] = append(values[k], v)
		}
	}
	out := benchFigures{}
	for k, vs := range values {
		slices.Sort(vs)
		if n := len(vs); n%2 == 1 {
			out[k] = vs[n/2]
		} else {
			out[k] = (vs[n/2-1] + vs[n/2]) / 2
		}
	}
	return out
}

// benchMachineInfo describes this machine and build.
func benchMachineInfo() benchMachine {
	return benchMachine{Cores: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		GoVersion: runtime.Version(), CPU: benchCPUModel(), Version: versionString(), LoadStart: benchLoadAverage()}
}

// benchLoadAverage reads the load averages from /proc/loadavg.
func benchLoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if fields := strings.Fields(string(data)); err == nil && len(fields) >= 3 {
		return strings.Join(fields[:3], " ")
	}
	return "unknown"
}

// benchCPUModel reads the CPU's model name from /proc/cpuinfo.
func benchCPUModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown"
}

// writeBenchTable prints the header and one line per scenario.
func writeBenchTable(w io.Writer, r benchReport) error {
	m, s := r.Machine, r.Settings
	fmt.Fprintf(w, "%s bench\n", m.Version)
	fmt.Fprintf(w, "machine: %d cores, %s/%s, %s, CPU %s; load average %s at the start, %s at the end\n",
		m.Cores, m.OS, m.Arch, m.GoVersion, m.CPU, m.LoadStart, m.LoadEnd)
	database := "SQLite files"
	if s.Database != "" {
		database = "PostgreSQL at " + s.Database
	}
	fmt.Fprintf(w, "settings: -scale %g, medians of %d repeats, fake upstream latency %s, sync for %s, %d upstream workers, %s\n\n",
		s.Scale, s.Repeats, s.Latency, s.Duration, s.WorkersUpstream, database)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tVALUE\tUNIT\tTARGET\tMET\tNOTE")
	for _, row := range r.Results {
		value, met := benchFormat(row.Value), "no"
		if row.Error != "" {
			value = "-"
		} else if row.Met {
			met = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", row.Name, value, row.Unit, row.Target, met, row.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
	return nil
}

// writeBenchJSON writes the report as indented JSON to path, or to stdout
// when path is "-".
func writeBenchJSON(path string, stdout io.Writer, r benchReport) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if path == "-" {
		_, err = stdout.Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// benchFormat renders a figure with a precision that suits its size, and
// thousands separators from 1,000 up.
func benchFormat(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'f', -1, 64)
	case a >= 1000 || (v == math.Trunc(v) && a > 0):
		digits := strconv.FormatFloat(math.Round(a), 'f', 0, 64)
		var sb strings.Builder
		if v < 0 {
			sb.WriteByte('-')
		}
		for i, d := range digits {
			if i > 0 && (len(digits)-i)%3 == 0 {
				sb.WriteByte(',')
			}
			sb.WriteRune(d)
		}
		return sb.String()
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
