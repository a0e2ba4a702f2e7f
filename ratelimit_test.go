package main

import (
	"strconv"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestLimiterSetStaysWithinItsBound(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	newSet := func() *limiterSet {
		s := newLimiterSet(rate.Limit(1), 2)
		s.maxKeys = 100
		return s
	}
	t.Run("a flood of keys whose buckets never refill keeps the set at its bound", func(t *testing.T) {
		s := newSet()
		for i := range 1000 {
			key := "10.0." + strconv.Itoa(i)
			for range 2 {
				s.take(key, now) // drained: no bucket is full again at now
			}
			if n := s.size(); n > s.maxKeys {
				t.Fatalf("after %d keys the set holds %d buckets, want at most %d", i+1, n, s.maxKeys)
			}
		}
	})
	t.Run("a key in use keeps its drained bucket while others come and go", func(t *testing.T) {
		s := newSet()
		s.take("busy", now)
		s.take("busy", now)
		for i := range 1000 {
			s.take("other-"+strconv.Itoa(i), now)
			if _, blocked := s.exhausted("busy", now); !blocked {
				t.Fatalf("after %d other keys the busy key has tokens again: its bucket was forgotten", i+1)
			}
		}
	})
	t.Run("the least recently used key is the one forgotten", func(t *testing.T) {
		s := newSet()
		for i := range s.maxKeys {
			key := "k" + strconv.Itoa(i)
			s.take(key, now)
			s.take(key, now)
		}
		s.take("new", now) // one past the bound: k0, used first, goes
		if _, blocked := s.exhausted("k1", now); !blocked {
			t.Fatal("k1 was forgotten, want k0 (the least recently used) to go first")
		}
		if _, blocked := s.exhausted("k0", now); blocked {
			t.Fatal("k0 is still drained, want it forgotten (a fresh, full bucket)")
		}
	})
}

// BenchmarkLimiterSetTake measures one take on the request path: the same
// few keys (users), and a flood of new keys past the bound (addresses
// failing authentication).
func BenchmarkLimiterSetTake(b *testing.B) {
	now := time.Now()
	b.Run("a few keys", func(b *testing.B) {
		s := newLimiterSet(rate.Limit(1e9), 1<<30)
		for i := 0; i < b.N; i++ {
			s.take("user-"+strconv.Itoa(i&7), now)
		}
	})
	b.Run("new keys past the bound", func(b *testing.B) {
		s := newLimiterSet(rate.Limit(1), 1)
		for i := 0; i < b.N; i++ {
			s.take("addr-"+strconv.Itoa(i), now)
		}
	})
}
