package main

import (
	"context"
	"fmt"
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
		if wait, _ := p.next(n, records[n-1].Outcome); !sleepUntil(ctx, nil, time.Now().Add(wait)) {
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
		if wait, _ := p.next(len(records), o); !sleepUntil(ctx, nil, time.Now().Add(wait)) {
			return records
		}
	}
}

// describeStatus is the default failure text for an HTTP status.
func describeStatus(code int) string {
	return fmt.Sprintf("Error: 'HTTP %d'", code)
}
