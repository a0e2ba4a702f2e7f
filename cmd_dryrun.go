package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// dryRunReply is what the client reads of a dry run's answer.
type dryRunReply struct {
	TotalNumbers int            `json:"total_numbers"`
	Results      []clientResult `json:"results"`
}

// dryRun is `submit -dry-run`: it sends the numbers as dry runs, in
// batches as submit would (halved on a 413), and writes what restoring
// each would give now: a table on standard output, or -o. Nothing is
// created. It exits 1 when some number would fail.
func (s *submission) dryRun(ctx context.Context) error {
	out, err := openOutput(s.opts.out, s.stdout)
	if err != nil {
		return err
	}
	defer out.abort()
	format := s.opts.format
	if s.opts.out == "" {
		format = "table"
	}
	w := newResultWriter(out.w, format)
	var succeed, fail, unknown int
	err = s.eachBatch("request", func(chunk []string) error {
		reply, err := s.dryRunOne(ctx, chunk)
		if err != nil {
			return err
		}
		for _, r := range reply.Results {
			switch r.Status {
			case numberSuccess:
				succeed++
			case numberFailed:
				fail++
			default:
				unknown++
			}
			if err := w.write(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := w.close(); err != nil {
		return err
	}
	if err := out.commit(); err != nil {
		return err
	}
	fmt.Fprintf(s.stderr, "dry run of %d number(s): %d would succeed, %d would fail, %d unknown (not checked); nothing was changed\n",
		len(s.numbers), succeed, fail, unknown)
	if fail > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d number(s) would not be restored", fail, len(s.numbers))}
	}
	return nil
}

// dryRunOne sends one batch as a dry run. It needs no Idempotency-Key: a
// dry run changes nothing, so a retry of it is always safe.
func (s *submission) dryRunOne(ctx context.Context, numbers []string) (dryRunReply, error) {
	body, err := json.Marshal(struct {
		Numbers    []string `json:"numbers"`
		WebhookURL string   `json:"webhook_url,omitempty"`
		DryRun     bool     `json:"dry_run"`
	}{numbers, s.opts.webhook, true})
	if err != nil {
		return dryRunReply{}, err
	}
	reply, err := s.api.do(ctx, http.MethodPost, "/v3/bulk_restore", nil, body, nil)
	if err != nil {
		return dryRunReply{}, err
	}
	if reply.status != http.StatusOK {
		return dryRunReply{}, reply.failure()
	}
	var out dryRunReply
	if err := reply.decode(&out); err != nil {
		return dryRunReply{}, err
	}
	if len(out.Results) != len(numbers) {
		return dryRunReply{}, fmt.Errorf("server answered a dry run of %d numbers with %d results", len(numbers), len(out.Results))
	}
	return out, nil
}
