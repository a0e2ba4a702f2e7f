package main

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// A dry run (POST /v3/bulk_restore with dry_run) answers, for every number
// of a request that passed every check of a real one, the result a restore
// would give now, and changes nothing: no job, no inventory change, no
// upstream restore call, no webhook, no Idempotency-Key record.

// previewUnknown is the status of a number a dry run could not check: the
// upstream backend without -upstream-preview-url. It is a status of dry
// runs only; no job's number ever has it.
const previewUnknown numberStatus = "unknown"

// msgNotChecked is the message of a number a dry run could not check.
const msgNotChecked = "Not checked: no upstream preview configured"

// dryRunJSON is the answer to a dry run.
type dryRunJSON struct {
	DryRun       bool              `json:"dry_run"` // always true: tells this body from a job's
	TotalNumbers int               `json:"total_numbers"`
	SuccessCount int               `json:"success_count"`
	FailureCount int               `json:"failure_count"`
	UnknownCount int               `json:"unknown_count"`
	Results      []finalResultJSON `json:"results"`
}

// previewer tells what restoring numbers of a user would give now, in
// their order, without changing anything.
type previewer interface {
	preview(ctx context.Context, userID int64, numbers []string) ([]NumberResult, error)
}

// newPreviewer is the previewer of the configured backend: the inventory
// table itself, the -upstream-preview-url, or nothing (every number
// unknown) for an upstream without one.
func newPreviewer(cfg serveConfig, store *Store, log *slog.Logger) previewer {
	switch {
	case cfg.backend == "upstream" && cfg.upstreamPreviewURL != "":
		b := newUpstreamBackend(cfg.upstreamPreviewURL, cfg.upstreamUser, cfg.upstreamPassword, cfg.restoreTimeout, userAgent())
		b.name = "upstream preview"
		return &upstreamPreview{backend: b, concurrency: cfg.workers}
	case cfg.backend == "upstream":
		return unknownPreview{}
	}
	return inventoryPreview{&inventoryBackend{store: store, window: cfg.restoreWindow, now: time.Now, log: log}}
}

// dryRun answers what restoring the numbers would give now.
func (a *app) dryRun(ctx context.Context, user User, numbers []string) (dryRunJSON, error) {
	found, err := a.preview.preview(ctx, user.ID, numbers)
	if err != nil {
		return dryRunJSON{}, err
	}
	out := dryRunJSON{DryRun: true, TotalNumbers: len(numbers), Results: make([]finalResultJSON, len(found))}
	for i, r := range found {
		switch r.Status {
		case numberSuccess:
			out.SuccessCount++
		case numberFailed:
			out.FailureCount++
		default:
			out.UnknownCount++
		}
		out.Results[i] = finalResult(r)
	}
	a.log.Info("dry run", "user", user.Name, "numbers", len(numbers),
		"would_succeed", out.SuccessCount, "would_fail", out.FailureCount, "unknown", out.UnknownCount)
	return out, nil
}

// previewResult is the result a restore's outcome would give a number.
func previewResult(number string, o Outcome) NumberResult {
	return NumberResult{Number: number, Status: o.status(), Message: o.Message, StatusCode: o.StatusCode,
		RequiresIdentityUpdate: o.RequiresIdentityUpdate, NeedsRegistration: o.NeedsRegistration}
}

// inventoryPreview decides every number by the inventory backend's own
// table, from one read of the user's rows.
type inventoryPreview struct{ backend *inventoryBackend }

// preview implements previewer.
func (p inventoryPreview) preview(ctx context.Context, userID int64, numbers []string) ([]NumberResult, error) {
	outcomes, err := p.backend.decideBatch(ctx, userID, numbers)
	if err != nil {
		return nil, err
	}
	out := make([]NumberResult, len(numbers))
	for i, n := range numbers {
		out[i] = previewResult(n, outcomes[i])
	}
	return out, nil
}

// upstreamPreview GETs the -upstream-preview-url for every number, at most
// concurrency at a time, and reads each answer as a restore's: one try
// each, within -restore-timeout (a timeout or a network error is the
// failure a restore would record, 504 or 502, naming the preview).
type upstreamPreview struct {
	backend     *upstreamBackend
	concurrency int
}

// preview implements previewer.
func (p *upstreamPreview) preview(ctx context.Context, _ int64, numbers []string) ([]NumberResult, error) {
	out := make([]NumberResult, len(numbers))
	slots := make(chan struct{}, max(1, p.concurrency))
	var wg sync.WaitGroup
	for i, n := range numbers {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			out[i] = previewResult(n, p.backend.Restore(ctx, 0, n))
		})
	}
	wg.Wait()
	return out, nil
}

// unknownPreview checks nothing: every number is unknown.
type unknownPreview struct{}

// preview implements previewer.
func (unknownPreview) preview(_ context.Context, _ int64, numbers []string) ([]NumberResult, error) {
	out := make([]NumberResult, len(numbers))
	for i, n := range numbers {
		out[i] = NumberResult{Number: n, Status: previewUnknown, Message: msgNotChecked}
	}
	return out, nil
}
