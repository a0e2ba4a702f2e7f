package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// runRetry is `bulkrestore retry`: a new job of a finished job's failed
// numbers, then what submit does after sending: with -wait, progress and
// every result; -o writes the results.
func runRetry(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o submitOptions
	var codeList string
	fs := flag.NewFlagSet("retry", flag.ContinueOnError)
	o.conn.register(fs)
	fs.StringVar(&codeList, "status-code", "", "retry only the numbers that failed with these HTTP status codes, comma-separated (500,503)")
	fs.StringVar(&o.webhook, "webhook", "", "webhook_url of the new job (default: the original job's; -webhook '' for none)")
	fs.BoolVar(&o.wait, "wait", false, "wait for the new job, show progress and write every result")
	registerOutputFlags(fs, &o.out, &o.format)
	fs.DurationVar(&o.poll, "poll", time.Second, "how often -wait asks for progress")
	fs.DurationVar(&o.waitTimeout, "wait-timeout", 24*time.Hour, "how long -wait waits at most")
	fs.StringVar(&o.progress, "progress", "auto", "progress display of -wait: auto, bar, plain or none")
	var codes []int
	check := func(rest []string) error {
		if len(rest) != 1 {
			return fmt.Errorf("%w: retry takes one JOB_UUID, got %d arguments", errUsage, len(rest))
		}
		if _, err := uuid.Parse(rest[0]); err != nil || len(rest[0]) != 36 {
			return fmt.Errorf("%w: %q is not a job_uuid", errUsage, rest[0])
		}
		var err error
		if codeList != "" {
			if codes, err = parseStatusCodes([]string{codeList}); err != nil {
				return fmt.Errorf("%w: -status-code: %v", errUsage, err)
			}
		}
		return o.checkWaitAndOutput()
	}
	api, rest, err := o.conn.parse(fs, args, getenv, stderr, check)
	if err != nil {
		return err
	}
	webhookGiven := false
	fs.Visit(func(f *flag.Flag) { webhookGiven = webhookGiven || f.Name == "webhook" })
	s := &submission{opts: o, api: api, stdout: stdout, stderr: stderr}
	job, err := s.retryJob(ctx, rest[0], codes, webhookGiven)
	var refused *apiFailure
	if errors.As(err, &refused) && refused.status == http.StatusConflict && refused.message == msgNothingToRetry {
		fmt.Fprintf(stderr, "job %s has no failed numbers to retry\n", rest[0])
		return nil // nothing left to do is not a failure
	}
	if err != nil {
		return serverTrouble(err)
	}
	s.jobs = []*clientJob{job}
	s.announce(job)
	return serverTrouble(s.finish(ctx))
}

// retryJob asks the server for a job of the failures of jobUUID (only
// those with codes, when given), with -webhook as its webhook_url when
// given (empty: none).
func (s *submission) retryJob(ctx context.Context, jobUUID string, codes []int, webhookGiven bool) (*clientJob, error) {
	query := url.Values{"job_uuid": {jobUUID}}
	if len(codes) > 0 {
		list := make([]string, len(codes))
		for i, c := range codes {
			list[i] = strconv.Itoa(c)
		}
		query.Set("status_code", strings.Join(list, ","))
	}
	var body []byte
	if webhookGiven {
		var err error
		if body, err = json.Marshal(map[string]string{"webhook_url": s.opts.webhook}); err != nil {
			return nil, err
		}
	}
	return s.createJob(ctx, "/v3/bulk_restore_retry", query, body, nil)
}
