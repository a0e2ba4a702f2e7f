package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"
)

// singleJSON is the body of GET|POST /v3/restore/{number}.
type singleJSON struct {
	finalResultJSON
	JobUUID string `json:"job_uuid"`
}

// restoreOne is GET|POST /v3/restore/{number}: one number, recorded as a
// one-number job; the HTTP status is the result's status code. Under the
// upstream backend, an answer of the upstream that would read as the
// caller's own is mapped before it is recorded (see singleRestorer).
func (a *app) restoreOne(w http.ResponseWriter, r *http.Request) {
	number := mux.Vars(r)["number"]
	if !validNumber(number) {
		writeError(w, r, a.log, newAPIError(codeInvalid, "number must be 7 to 15 digits"))
		return
	}
	run, single := a, (*singleRestorer)(nil)
	if a.cfg.backend == "upstream" {
		// runSync restores through a.backend: a copy of the app with the
		// mapping backend keeps that one path for both endpoints.
		single = &singleRestorer{next: a.backend, policy: a.retry, upstream: upstreamHost(a.cfg.upstreamURL)}
		withMapping := *a
		withMapping.backend = single
		run = &withMapping
	}
	job, results, _, err := run.runSync(r.Context(), currentUser(r), bulkRequest{Numbers: packNumbers([]string{number})}, nil)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	res := results[0]
	status := http.StatusOK
	if res.Status != numberSuccess {
		status = res.StatusCode
		if status < 400 || status > 599 {
			status = http.StatusBadGateway // a failure must not read as success
		}
	}
	if status == http.StatusServiceUnavailable && single != nil {
		w.Header().Set("Retry-After", retryAfterSeconds(single.retryAfterWait()))
	}
	writeJSON(w, status, singleJSON{finalResultJSON: finalResult(res), JobUUID: job.UUID})
}

// singleRestorer wraps the backend for GET|POST /v3/restore/{number}, where
// the HTTP status of the answer is the result's status code. It passes
// every attempt through but the last, which it maps when the upstream's
// status would read as the caller's own: an authentication failure (401,
// 403, 407) becomes 502 naming the upstream, so that a client does not
// think its own key wrong, and a 429 still failing becomes 503 with a wait
// for Retry-After. Bulk jobs keep the upstream's code per number. It knows
// the last attempt by the retry policy the synchronous path follows.
type singleRestorer struct {
	next     Restorer
	policy   retryPolicy
	upstream string // the upstream's host, for the messages

	mu         sync.Mutex
	attempts   int
	retryAfter time.Duration // the wait to advise with a final 503
}

// Restore implements Restorer.
func (s *singleRestorer) Restore(ctx context.Context, userID int64, number string) Outcome {
	o := s.next.Restore(ctx, userID, number)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	if _, again := s.policy.next(s.attempts, o); again || o.Success {
		return o
	}
	wait := o.RetryAfter
	if wait <= 0 {
		wait = backoff(s.policy.base, s.policy.max, s.attempts) // the wait the next attempt would have had
	}
	switch o.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusProxyAuthRequired:
		return Outcome{StatusCode: http.StatusBadGateway,
			Message: fmt.Sprintf("Error: 'upstream %s refused our credentials (HTTP %d)'", s.upstream, o.StatusCode)}
	case http.StatusTooManyRequests:
		s.retryAfter = wait
		return Outcome{StatusCode: http.StatusServiceUnavailable, RetryAfter: wait,
			Message: fmt.Sprintf("Error: 'upstream %s is limiting our request rate (HTTP 429); retry later'", s.upstream)}
	case http.StatusServiceUnavailable:
		s.retryAfter = wait
	}
	return o
}

// retryAfterWait is the wait to advise with a final 503.
func (s *singleRestorer) retryAfterWait() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retryAfter
}
