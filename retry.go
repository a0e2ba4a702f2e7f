package main

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

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

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// retryAfterSeconds is a Retry-After header value: whole seconds, rounded
// up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int(math.Max(1, math.Ceil(d.Seconds()))))
}

// sleepUntil waits until `until` (forever when it is zero), a nudge on
// wake (nil: none) or the end of ctx, whichever comes first, and reports
// whether it waited until `until`. It is the one way the service waits:
// background loops are woken when there is work, never poll on a fixed
// interval, and every wait ends with its context.
func sleepUntil(ctx context.Context, wake <-chan struct{}, until time.Time) bool {
	var timer <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(max(0, time.Until(until)))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-timer:
		return true
	case <-wake:
	case <-ctx.Done():
	}
	return false
}
