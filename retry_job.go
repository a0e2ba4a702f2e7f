package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Retrying the failures of a job (POST /v3/bulk_restore_retry, and the
// console): a new job of the numbers whose final status is failed, in the
// job's order, linked both ways (retry_of, retried_by). The API and the
// console share this operation; it never speaks HTTP.

// msgNothingToRetry is the 409 of a retry of a job with no failed numbers
// (with status_code, none with those codes); the client reads it.
const msgNothingToRetry = "no failed numbers to retry"

// errStatusCodes refuses a status_code list that is not one.
var errStatusCodes = newAPIError(codeInvalid,
	"status_code must be HTTP status codes (100 to 599) separated by commas, like 500,503")

// parseStatusCodes reads the status_code narrowing of a retry: one or more
// values, each a comma-separated list of codes. The codes come back sorted,
// without repeats; none given is nil (every failure).
func parseStatusCodes(values []string) ([]int, error) {
	var codes []int
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			code, err := strconv.Atoi(strings.TrimSpace(item))
			if err != nil || code < 100 || code > 599 {
				return nil, errStatusCodes
			}
			codes = append(codes, code)
		}
	}
	slices.Sort(codes)
	return slices.Compact(codes), nil
}

// retryFailures makes the request that retries a finished job's failed
// numbers (only those that failed with one of codes, when given), in the
// job's order, as a job linked to it. webhookURL is the new job's
// webhook: nil for the job's own, empty for none.
func (a *app) retryFailures(ctx context.Context, job Job, codes []int, webhookURL *string) (bulkRequest, error) {
	req := bulkRequest{WebhookURL: job.WebhookURL, RetryOf: job.UUID}
	if webhookURL != nil {
		req.WebhookURL = *webhookURL
		if req.WebhookURL != "" {
			if err := checkWebhookURL(req.WebhookURL, a.cfg.allowPrivateWebhooks()); err != nil {
				return bulkRequest{}, newAPIError(codeInvalid, err.Error())
			}
		}
	}
	if !summarize(job).settled() {
		return bulkRequest{}, newAPIError(codeConflict, "job is "+string(job.Status)+
			" and not finished yet; retry its failures once every number has its result")
	}
	numbers, err := a.store.failedNumbers(ctx, job.ID, codes)
	if err != nil {
		return bulkRequest{}, err
	}
	if len(numbers) == 0 {
		return bulkRequest{}, newAPIError(codeConflict, msgNothingToRetry)
	}
	if len(numbers) > a.cfg.maxNumbers {
		return bulkRequest{}, newAPIError(codeTooLarge, fmt.Sprintf(
			"too many numbers: %d failed numbers to retry, at most %d per request (-max-numbers); narrow them with status_code",
			len(numbers), a.cfg.maxNumbers))
	}
	req.Numbers = packNumbers(numbers)
	return req, nil
}
