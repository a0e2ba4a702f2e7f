package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/google/uuid"
)

// statusOptions are the flags of `bulkrestore status`, parsed.
type statusOptions struct {
	conn    connFlags
	raw     bool
	results bool
	failed  bool
	out     string
	format  string
}

// runStatus is `bulkrestore status`: one job's summary and, when asked,
// its numbers' results.
func runStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o statusOptions
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	o.conn.register(fs)
	fs.BoolVar(&o.raw, "json", false, "print the server's JSON summary as it is (its results left out)")
	fs.BoolVar(&o.results, "results", false, "also print every number's result, as a table")
	fs.BoolVar(&o.failed, "failed", false, "only the failed numbers' results (implies -results)")
	registerOutputFlags(fs, &o.out, &o.format)
	api, rest, err := o.conn.parse(fs, args, getenv, stderr, o.check)
	if err != nil {
		return err
	}
	s, err := api.jobStatus(ctx, rest[0], 0, 0)
	if err != nil {
		return serverTrouble(err)
	}
	switch {
	case o.out == "-": // the results have standard output to themselves
	case o.raw:
		if _, err := stdout.Write(s.Raw); err != nil {
			return err
		}
	default:
		printSummary(stdout, s)
	}
	if !o.results && !o.failed && o.out == "" {
		return nil
	}
	return serverTrouble(o.writeResults(ctx, api, s, stdout, stderr))
}

// check validates the status flags other than the connection's.
func (o *statusOptions) check(rest []string) error {
	if len(rest) != 1 {
		return fmt.Errorf("%w: status takes one JOB_UUID, got %d arguments", errUsage, len(rest))
	}
	if _, err := uuid.Parse(rest[0]); err != nil || len(rest[0]) != 36 {
		return fmt.Errorf("%w: %q is not a job_uuid", errUsage, rest[0])
	}
	switch {
	case o.format != "" && o.out == "":
		return fmt.Errorf("%w: -format is the format of -o FILE; give -o too", errUsage)
	case o.raw && (o.out == "-" || (o.out == "" && (o.results || o.failed))):
		return fmt.Errorf("%w: -json prints the summary alone; write the results with -o FILE, or -o - without -json", errUsage)
	}
	var err error
	o.format, err = resultFormat(o.out, o.format)
	return err
}

// writeResults writes the job's results, or its failed ones (filtered by
// the server): as CSV, the server's own CSV streamed to -o; as JSON or a
// table (without -o, after the summary), page by page.
func (o *statusOptions) writeResults(ctx context.Context, api *apiClient, s jobReply, stdout, stderr io.Writer) error {
	out, err := openOutput(o.out, stdout)
	if err != nil {
		return err
	}
	defer out.abort()
	statuses := ""
	if o.failed {
		statuses = string(numberFailed)
	}
	var count int
	switch {
	case o.out != "" && o.format == "csv":
		rows := &csvRowCounter{w: out.w}
		if err := api.downloadResultsCSV(ctx, s.JobUUID, statuses, rows); err != nil {
			return fmt.Errorf("job %s: %w", s.JobUUID, err)
		}
		count = rows.records()
	default:
		format := o.format
		if o.out == "" {
			format = "table"
			fmt.Fprintln(stdout)
		}
		w := newResultWriter(out.w, format)
		if err := api.eachResultIn(ctx, s, statuses, w.write); err != nil {
			return fmt.Errorf("job %s: %w", s.JobUUID, err)
		}
		if err := w.close(); err != nil {
			return err
		}
		count = w.count
	}
	if err := out.commit(); err != nil {
		return err
	}
	if out.file != nil {
		fmt.Fprintf(stderr, "wrote %d result(s) to %s\n", count, o.out)
	}
	return nil
}

// printSummary writes a job summary for people, one "name  value" a line.
func printSummary(w io.Writer, s jobReply) {
	or := func(p *string, none string) string {
		if p == nil || *p == "" {
			return none
		}
		return *p
	}
	counts := fmt.Sprintf("%d: %d succeeded, %d failed", s.TotalNumbers, s.SuccessCount, s.FailureCount)
	if s.CancelledCount > 0 {
		counts += fmt.Sprintf(", %d cancelled", s.CancelledCount)
	}
	if left := s.TotalNumbers - s.processed(); left > 0 {
		counts += fmt.Sprintf(", %d to go", left)
	}
	webhook := "none"
	if s.WebhookURL != nil {
		switch {
		case s.WebhookDeliveredAt != nil:
			webhook = "delivered at " + *s.WebhookDeliveredAt
		case s.WebhookError != nil:
			webhook = fmt.Sprintf("not delivered after %d attempt(s): %s", s.WebhookAttempts, *s.WebhookError)
		default:
			webhook = fmt.Sprintf("not delivered yet (%d attempt(s))", s.WebhookAttempts)
		}
	}
	rows := [][2]string{
		{"job_uuid", s.JobUUID}, {"status", string(s.Status)}, {"numbers", counts},
		{"created_at", or(s.CreatedAt, "-")}, {"started_at", or(s.StartedAt, "-")}, {"completed_at", or(s.CompletedAt, "-")},
		{"webhook_url", or(s.WebhookURL, "-")}, {"webhook", webhook},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%-13s %s\n", r[0], r[1])
	}
}
