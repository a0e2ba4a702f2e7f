package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"time"
)

// Outcome is what one restore attempt of one number came to.
type Outcome struct {
	Success                bool
	Message                string
	StatusCode             int
	RequiresIdentityUpdate bool
	NeedsRegistration      bool
	// Transient marks a failure that another attempt may cure (timeouts,
	// network errors, 408/429/502/503/504 from upstream).
	Transient bool
	// RetryAfter is the delay the upstream asked for; zero when it did not.
	RetryAfter time.Duration
	// Activate asks the writer to mark the user's inventory row active in the
	// same transaction that records this outcome (inventory backend).
	Activate bool
}

// status is the per-number status of a final outcome.
func (o Outcome) status() numberStatus {
	if o.Success {
		return numberSuccess
	}
	return numberFailed
}

// Restorer restores one number of one user. Implementations must be safe for
// concurrent use and must return (not panic) on every failure they foresee.
type Restorer interface {
	Restore(ctx context.Context, userID int64, number string) Outcome
}

// batchRestorer is a Restorer that can restore many numbers of one user in
// one call (the inventory backend: one query instead of one per number).
type batchRestorer interface {
	Restorer
	RestoreBatch(ctx context.Context, userID int64, numbers []string) []Outcome
}

// safeRestoreBatch is safeRestore for a batch: a panic fails every number
// of the batch with an internal failure.
func safeRestoreBatch(ctx context.Context, r batchRestorer, userID int64, numbers []string, onPanic func(p any, stack []byte)) (out []Outcome) {
	defer func() {
		if p := recover(); p != nil {
			if onPanic != nil {
				onPanic(p, debug.Stack())
			}
			out = make([]Outcome, len(numbers))
			for i := range out {
				out[i] = internalFailure()
			}
		}
	}()
	return r.RestoreBatch(ctx, userID, numbers)
}

// internalFailure is the outcome of an unexpected error inside the service.
func internalFailure() Outcome {
	return Outcome{StatusCode: 500, Message: "Error: 'restore failed, please contact support'"}
}

// safeRestore calls r and turns a panic into an internal failure, so one bad
// number cannot take the process down.
func safeRestore(ctx context.Context, r Restorer, userID int64, number string, onPanic func(p any, stack []byte)) (o Outcome) {
	defer func() {
		if p := recover(); p != nil {
			if onPanic != nil {
				onPanic(p, debug.Stack())
			}
			o = internalFailure()
		}
	}()
	return r.Restore(ctx, userID, number)
}

// retryPolicy decides whether and when a transient failure is tried again.
type retryPolicy struct {
	maxAttempts int
	base        time.Duration
	max         time.Duration
}

// next returns the wait before attempt number done+1, and false when done
// attempts are all the policy allows or the outcome is final.
func (p retryPolicy) next(done int, o Outcome) (time.Duration, bool) {
	if !o.Transient || done >= p.maxAttempts {
		return 0, false
	}
	return max(backoff(p.base, p.max, done), min(o.RetryAfter, p.max)), true
}

// backoff is the capped exponential wait after the n-th failure (n from 1),
// with "equal jitter": half fixed, half random, so retries of many numbers
// that failed together spread out.
func backoff(base, ceiling time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < ceiling; i++ {
		if d > ceiling/2 {
			d = ceiling // doubling would pass the cap, or overflow
			break
		}
		d *= 2
	}
	d = min(d, ceiling)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half)
}

// attemptRecord is one try of one number.
type attemptRecord struct {
	Started  time.Time
	Finished time.Time
	Outcome  Outcome
}

// restoreWithRetries runs the attempts of one number in the caller's
// goroutine, waiting between them, after the attempts already made (none,
// or a first one made in a batch); the synchronous path uses it.
func restoreWithRetries(ctx context.Context, r Restorer, p retryPolicy, userID int64, number string, records []attemptRecord, onPanic func(any, []byte)) []attemptRecord {
	if n := len(records); n > 0 {
		if _, again := p.next(n, records[n-1].Outcome); !again {
			return records
		}
		// The wait after a batched first attempt is made below, like any other.
		if !waitRetry(ctx, p, n, records[n-1].Outcome) {
			return records
		}
	}
	for {
		start := time.Now()
		o := safeRestore(ctx, r, userID, number, onPanic)
		records = append(records, attemptRecord{Started: start, Finished: time.Now(), Outcome: o})
		if _, again := p.next(len(records), o); !again {
			return records
		}
		if !waitRetry(ctx, p, len(records), o) {
			return records
		}
	}
}

// waitRetry sleeps the policy's wait after attempt n; false if ctx ended.
func waitRetry(ctx context.Context, p retryPolicy, n int, o Outcome) bool {
	wait, _ := p.next(n, o)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// describeStatus is the default failure text for an HTTP status.
func describeStatus(code int) string {
	return fmt.Sprintf("Error: 'HTTP %d'", code)
}
