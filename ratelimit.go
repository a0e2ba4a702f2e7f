package main

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Failed-authentication limits per client address: a burst of tries, then
// one a second. Keys are 192 random bits, so this is not what keeps them
// safe; it keeps a scanner from turning the server into a password oracle
// and from burning CPU and database reads.
const (
	authFailureRate  = rate.Limit(1)
	authFailureBurst = 30
)

// limiterSet hands out one token bucket per key and forgets buckets that
// have refilled, so a flood of distinct keys cannot grow it without bound.
type limiterSet struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	buckets map[string]*rate.Limiter
	maxKeys int
}

// newLimiterSet builds a set of buckets of the given rate and burst.
func newLimiterSet(limit rate.Limit, burst int) *limiterSet {
	return &limiterSet{limit: limit, burst: burst, buckets: map[string]*rate.Limiter{}, maxKeys: 10000}
}

// get returns key's bucket, creating it full.
func (s *limiterSet) get(key string, now time.Time) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.buckets[key]; ok {
		return l
	}
	if len(s.buckets) >= s.maxKeys {
		for k, l := range s.buckets {
			if l.TokensAt(now) >= float64(s.burst) {
				delete(s.buckets, k) // full again: forgetting it changes nothing
			}
		}
	}
	l := rate.NewLimiter(s.limit, s.burst)
	s.buckets[key] = l
	return l
}

// exhausted reports whether key has no token left, and if so how long
// until it has one.
func (s *limiterSet) exhausted(key string, now time.Time) (time.Duration, bool) {
	tokens := s.get(key, now).TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) / float64(s.limit) * float64(time.Second)), true
}

// take spends one of key's tokens; false (and the wait) when there is none.
func (s *limiterSet) take(key string, now time.Time) (time.Duration, bool) {
	l := s.get(key, now)
	if l.AllowN(now, 1) {
		return 0, true
	}
	tokens := l.TokensAt(now)
	return time.Duration((1 - tokens) / float64(s.limit) * float64(time.Second)), false
}

// clientIP is the address the request came from (the proxy's, behind one).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// tooManyRequests answers 429 with a Retry-After in whole seconds.
func (a *app) tooManyRequests(w http.ResponseWriter, r *http.Request, wait time.Duration, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Max(1, math.Ceil(wait.Seconds())))))
	writeError(w, r, a.log, newAPIError(codeRateLimited, msg))
}
