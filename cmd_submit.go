package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
)

// maxInvalidShown caps how many bad input lines submit lists.
const maxInvalidShown = 20

// submitOptions are the flags of `bulkrestore submit`, parsed.
type submitOptions struct {
	conn        connFlags
	webhook     string
	wait        bool
	out         string
	format      string
	batch       int
	poll        time.Duration
	waitTimeout time.Duration
	progress    string
	dryRun      bool
}

// runSubmit is `bulkrestore submit`.
func runSubmit(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	var o submitOptions
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	o.conn.register(fs)
	fs.StringVar(&o.webhook, "webhook", "", "webhook_url for every job")
	fs.BoolVar(&o.wait, "wait", false, "wait for every job, show progress and write every result")
	registerOutputFlags(fs, &o.out, &o.format)
	fs.IntVar(&o.batch, "batch", 10000, "most numbers per job (halved while the server answers 413)")
	fs.DurationVar(&o.poll, "poll", time.Second, "how often -wait asks for progress")
	fs.DurationVar(&o.waitTimeout, "wait-timeout", 24*time.Hour, "how long -wait waits at most")
	fs.StringVar(&o.progress, "progress", "auto", "progress display of -wait: auto, bar, plain or none")
	fs.BoolVar(&o.dryRun, "dry-run", false, "create nothing: show what restoring each number would give now (a table, or -o)")
	api, rest, err := o.conn.parse(fs, args, getenv, stderr, o.check)
	if err != nil {
		return err
	}
	numbers, err := readInput(rest[0], stdin, stderr)
	if err != nil {
		return err
	}
	s := &submission{opts: o, api: api, numbers: numbers, stdout: stdout, stderr: stderr}
	if o.dryRun {
		return serverTrouble(s.dryRun(ctx))
	}
	return serverTrouble(s.run(ctx))
}

// check validates the submit flags other than the connection's.
func (o *submitOptions) check(rest []string) error {
	switch {
	case len(rest) != 1:
		return fmt.Errorf("%w: submit takes one FILE (or - for standard input), got %d arguments", errUsage, len(rest))
	case o.dryRun && o.wait:
		return fmt.Errorf("%w: -dry-run creates no job, so there is nothing to -wait for", errUsage)
	case o.batch < 1:
		return fmt.Errorf("%w: -batch must be at least 1", errUsage)
	}
	return o.checkWaitAndOutput()
}

// checkWaitAndOutput validates the flags submit and retry share: -o,
// -format, -poll, -wait-timeout and -progress.
func (o *submitOptions) checkWaitAndOutput() error {
	var err error
	if o.format, err = resultFormat(o.out, o.format); err != nil {
		return err
	}
	switch {
	case o.poll < time.Millisecond || o.poll > time.Hour:
		return fmt.Errorf("%w: -poll must be between 1ms and 1h", errUsage)
	case o.waitTimeout <= 0:
		return fmt.Errorf("%w: -wait-timeout must be positive", errUsage)
	case !progressModes[o.progress]:
		return fmt.Errorf("%w: -progress must be auto, bar, plain or none", errUsage)
	}
	return nil
}

// readInput reads and checks the numbers of FILE (- for stdin); any bad
// line is reported and nothing is sent.
func readInput(name string, stdin io.Reader, stderr io.Writer) ([]string, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		defer f.Close()
		r = f
	}
	in, err := readNumbers(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errUsage, name, err)
	}
	for i, bad := range in.invalid {
		if i == maxInvalidShown {
			fmt.Fprintf(stderr, "… and %d more\n", len(in.invalid)-maxInvalidShown)
			break
		}
		fmt.Fprintf(stderr, "line %d: %q is not a number (7 to 15 digits)\n", bad.line, bad.text)
	}
	switch {
	case len(in.invalid) > 0:
		return nil, fmt.Errorf("%w: %s: %d invalid line(s); nothing was sent", errUsage, name, len(in.invalid))
	case len(in.numbers) == 0:
		return nil, fmt.Errorf("%w: %s holds no numbers", errUsage, name)
	}
	if in.duplicates > 0 {
		fmt.Fprintf(stderr, "%d duplicate number(s) dropped\n", in.duplicates)
	}
	return in.numbers, nil
}

// numberInput is what readNumbers found.
type numberInput struct {
	numbers    []string // unique, in input order
	duplicates int
	invalid    []badLine
}

// badLine is an input line that is not a number.
type badLine struct {
	line int
	text string
}

// readNumbers reads one number a line, or the first column of a CSV, the
// way the server reads numbers_text: blanks trimmed, blank lines skipped,
// a number being 7 to 15 digits, duplicates dropped (the first kept). A
// first row whose first field holds no digit is a header and skipped.
func readNumbers(r io.Reader) (numberInput, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	var in numberInput
	seen := map[string]bool{}
	first := true
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return in, nil
		}
		if err != nil {
			return in, err
		}
		line, _ := cr.FieldPos(0)
		field := strings.TrimSpace(strings.TrimPrefix(rec[0], "\ufeff"))
		if field == "" {
			continue
		}
		if first && !strings.ContainsAny(field, "0123456789") {
			first = false
			continue // a header row
		}
		first = false
		switch {
		case !validNumber(field):
			in.invalid = append(in.invalid, badLine{line: line, text: field})
		case seen[field]:
			in.duplicates++
		default:
			seen[field] = true
			in.numbers = append(in.numbers, field)
		}
	}
}

// submission is one run of submit: its jobs, in the order they were sent.
type submission struct {
	opts    submitOptions
	api     *apiClient
	numbers []string
	stdout  io.Writer
	stderr  io.Writer
	jobs    []*clientJob
}

// clientJob is one job the client created.
type clientJob struct {
	numbers []string
	sync    bool // answered at once, with its results
	summary jobReply
}

// resultsToStdout reports whether results take standard output, in which
// case job UUIDs go to standard error.
func (s *submission) resultsToStdout() bool {
	return s.opts.out == "-" || (s.opts.out == "" && s.opts.wait)
}

// run submits every number, then finishes.
func (s *submission) run(ctx context.Context) error {
	if err := s.submitAll(ctx); err != nil {
		return err
	}
	return s.finish(ctx)
}

// finish waits for the jobs when asked, writes the results and turns the
// outcome into the exit status.
func (s *submission) finish(ctx context.Context) error {
	if s.opts.wait {
		if err := s.waitAll(ctx); err != nil {
			return err
		}
	}
	tally := resultTally{}
	if s.opts.out != "" || s.opts.wait {
		if err := s.writeResults(ctx, &tally); err != nil {
			return err
		}
	} else {
		for _, j := range s.jobs {
			tally.addSummary(j)
		}
	}
	total := 0
	for _, j := range s.jobs {
		total += j.summary.TotalNumbers
	}
	fmt.Fprintf(s.stderr, "%d number(s) in %d job(s): %s\n", total, len(s.jobs), tally)
	if bad := tally.failed + tally.cancelled + tally.other; bad > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d number(s) not restored", bad, total)}
	}
	return nil
}

// submitAll sends the numbers in jobs of -batch numbers.
func (s *submission) submitAll(ctx context.Context) error {
	err := s.eachBatch("job", func(chunk []string) error {
		job, err := s.submitOne(ctx, chunk)
		if err != nil {
			return err
		}
		s.jobs = append(s.jobs, job)
		s.announce(job)
		return nil
	})
	if err != nil && len(s.jobs) > 0 {
		fmt.Fprintf(s.stderr, "%d job(s) were submitted before this error; see their job_uuid above\n", len(s.jobs))
	}
	return err
}

// eachBatch calls send with the numbers in batches of -batch, in order,
// until one fails; a 413 halves the batch and the same numbers are sent
// again (what names a batch in the note that says so).
func (s *submission) eachBatch(what string, send func(chunk []string) error) error {
	batch := s.opts.batch
	for start := 0; start < len(s.numbers); {
		chunk := s.numbers[start:min(start+batch, len(s.numbers))]
		err := send(chunk)
		var fail *apiFailure
		if errors.As(err, &fail) && fail.status == http.StatusRequestEntityTooLarge && len(chunk) > 1 {
			batch = len(chunk) / 2
			fmt.Fprintf(s.stderr, "server refused %d numbers in one %s (%s); trying %d\n", len(chunk), what, fail.message, batch)
			continue
		}
		if err != nil {
			return err
		}
		start += len(chunk)
	}
	return nil
}

// submitOne creates one job. The Idempotency-Key makes a retry after a
// lost answer return the same job instead of creating another.
func (s *submission) submitOne(ctx context.Context, numbers []string) (*clientJob, error) {
	req := struct {
		Numbers    []string `json:"numbers"`
		WebhookURL string   `json:"webhook_url,omitempty"`
	}{numbers, s.opts.webhook}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	return s.createJob(ctx, "/v3/bulk_restore", nil, body, numbers)
}

// createJob posts a request that creates one job (a submit, a retry) and
// reads the answer; numbers are the job's, when the client knows them.
func (s *submission) createJob(ctx context.Context, path string, query url.Values, body []byte, numbers []string) (*clientJob, error) {
	header := http.Header{"Idempotency-Key": {uuid.NewString()}}
	reply, err := s.api.do(ctx, http.MethodPost, path, query, body, header)
	if err != nil {
		return nil, err
	}
	if reply.status != http.StatusOK && reply.status != http.StatusAccepted {
		return nil, reply.failure()
	}
	job := &clientJob{numbers: numbers, sync: reply.status == http.StatusOK}
	if err := reply.decode(&job.summary); err != nil {
		return nil, err
	}
	if job.summary.JobUUID == "" {
		return nil, fmt.Errorf("server answered %d without a job_uuid", reply.status)
	}
	if job.sync && job.summary.WebhookError != nil {
		fmt.Fprintf(s.stderr, "job %s: webhook failed: %s (the server keeps retrying)\n", job.summary.JobUUID, *job.summary.WebhookError)
	}
	return job, nil
}

// announce prints a new job: its UUID alone on standard output, or a line
// on standard error when results take standard output.
func (s *submission) announce(j *clientJob) {
	if !s.resultsToStdout() {
		fmt.Fprintln(s.stdout, j.summary.JobUUID)
		return
	}
	state := "queued"
	if j.sync {
		state = fmt.Sprintf("done: %d succeeded, %d failed", j.summary.SuccessCount, j.summary.FailureCount)
	}
	fmt.Fprintf(s.stderr, "job %s: %d number(s), %s\n", j.summary.JobUUID, len(j.numbers), state)
}

// waitAll polls every unfinished job, with limit=0, until all are
// finished or -wait-timeout passes, showing progress on the way.
func (s *submission) waitAll(ctx context.Context) error {
	var waiting []*clientJob
	total := 0
	for _, j := range s.jobs {
		if !j.summary.settled() {
			waiting = append(waiting, j)
			total += j.summary.TotalNumbers
		}
	}
	if len(waiting) == 0 {
		return nil
	}
	prog := newProgress(s.opts.progress, s.stderr)
	defer prog.finish()
	deadline := time.Now().Add(s.opts.waitTimeout)
	for {
		done, open, err := s.poll(ctx, waiting)
		if err != nil {
			return err
		}
		prog.update(done, total, serverETA(waiting), time.Now())
		if open == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d job(s) still unfinished after -wait-timeout %s; check them later with bulkrestore status", open, s.opts.waitTimeout)
		}
		if !sleepUntil(ctx, nil, time.Now().Add(s.opts.poll)) {
			return fmt.Errorf("stopped waiting (%w); the jobs go on on the server", ctx.Err())
		}
	}
}

// poll refreshes the summary of every job not yet settled and returns how
// many numbers have an outcome and how many jobs are still open.
func (s *submission) poll(ctx context.Context, jobs []*clientJob) (done, open int, err error) {
	for _, j := range jobs {
		if !j.summary.settled() {
			sum, err := s.api.jobStatus(ctx, j.summary.JobUUID, 0, 0)
			if ctx.Err() != nil {
				return 0, 0, fmt.Errorf("stopped waiting (%w); the jobs go on on the server", ctx.Err())
			}
			if err != nil {
				return 0, 0, fmt.Errorf("job %s: %w", j.summary.JobUUID, err)
			}
			j.summary = sum
		}
		done += j.summary.processed()
		if !j.summary.settled() {
			open++
		}
	}
	return done, open, nil
}

// resultTally counts results by outcome.
type resultTally struct {
	succeeded, failed, cancelled, pending, other int
}

// add counts one result.
func (t *resultTally) add(status numberStatus) {
	switch status {
	case numberSuccess:
		t.succeeded++
	case numberFailed:
		t.failed++
	case numberCancelled:
		t.cancelled++
	case numberPending, numberProcessing:
		t.pending++
	default:
		t.other++
	}
}

// addSummary counts a job from its summary alone.
func (t *resultTally) addSummary(j *clientJob) {
	s := j.summary
	t.succeeded += s.SuccessCount
	t.failed += s.FailureCount
	t.cancelled += s.CancelledCount
	t.pending += max(0, s.TotalNumbers-s.processed())
}

// String says what the tally holds, e.g. "9 succeeded, 1 failed".
func (t resultTally) String() string {
	parts := []string{fmt.Sprintf("%d succeeded", t.succeeded)}
	if t.failed > 0 || t.pending == 0 {
		parts = append(parts, fmt.Sprintf("%d failed", t.failed))
	}
	if t.cancelled > 0 {
		parts = append(parts, fmt.Sprintf("%d cancelled", t.cancelled))
	}
	if t.pending > 0 {
		parts = append(parts, fmt.Sprintf("%d queued, not finished yet", t.pending))
	}
	if t.other > 0 {
		parts = append(parts, fmt.Sprintf("%d in an unknown state", t.other))
	}
	return strings.Join(parts, ", ")
}

// writeResults writes one row per number, job by job in input order: the
// results of finished jobs, fetched page by page, and "pending" rows for
// jobs not waited for (their current state, read from the server, for a
// job whose numbers the client does not know: a retry's).
func (s *submission) writeResults(ctx context.Context, tally *resultTally) error {
	out, err := openOutput(s.opts.out, s.stdout)
	if err != nil {
		return err
	}
	defer out.abort()
	w := newResultWriter(out.w, s.opts.format)
	for _, j := range s.jobs {
		if !j.summary.settled() && j.numbers != nil {
			for _, n := range j.numbers {
				tally.add(numberPending)
				if err := w.write(clientResult{Number: n, Status: numberPending, JobUUID: j.summary.JobUUID}); err != nil {
					return err
				}
			}
			continue
		}
		err := s.api.eachResult(ctx, j.summary, func(r clientResult) error {
			tally.add(r.Status)
			return w.write(r)
		})
		if err != nil {
			return fmt.Errorf("job %s: %w", j.summary.JobUUID, err)
		}
	}
	if err := w.close(); err != nil {
		return err
	}
	return out.commit()
}
