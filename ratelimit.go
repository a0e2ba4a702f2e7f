package main

import (
	"container/list"
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

// limiterSet hands out one token bucket per key, and holds at most maxKeys
// of them: past that, the least recently used bucket is forgotten, so a
// flood of distinct keys (addresses failing authentication) cannot grow it
// without bound. A forgotten key starts again with a full bucket.
type limiterSet struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	buckets map[string]*list.Element // of *keyedLimiter, in order
	order   *list.List               // most recently used first
	maxKeys int
}

// keyedLimiter is a bucket and its key, an element of limiterSet.order.
type keyedLimiter struct {
	key string
	l   *rate.Limiter
}

// newLimiterSet builds a set of buckets of the given rate and burst.
func newLimiterSet(limit rate.Limit, burst int) *limiterSet {
	return &limiterSet{limit: limit, burst: burst, buckets: map[string]*list.Element{}, order: list.New(), maxKeys: 10000}
}

// get returns key's bucket, creating it full, and marks it most recently
// used; O(1).
func (s *limiterSet) get(key string) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.buckets[key]; ok {
		s.order.MoveToFront(e)
		return e.Value.(*keyedLimiter).l
	}
	if s.order.Len() >= s.maxKeys {
		oldest := s.order.Back()
		s.order.Remove(oldest)
		delete(s.buckets, oldest.Value.(*keyedLimiter).key)
	}
	l := rate.NewLimiter(s.limit, s.burst)
	s.buckets[key] = s.order.PushFront(&keyedLimiter{key: key, l: l})
	return l
}

// exhausted reports whether key has no token left, and if so how long
// until it has one.
func (s *limiterSet) exhausted(key string, now time.Time) (time.Duration, bool) {
	tokens := s.get(key).TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) / float64(s.limit) * float64(time.Second)), true
}

// take spends one of key's tokens; false (and the wait) when there is none.
func (s *limiterSet) take(key string, now time.Time) (time.Duration, bool) {
	l := s.get(key)
	if l.AllowN(now, 1) {
		return 0, true
	}
	tokens := l.TokensAt(now)
	return time.Duration((1 - tokens) / float64(s.limit) * float64(time.Second)), false
}

// size is the number of buckets held.
func (s *limiterSet) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buckets)
}
