package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// turnGate lets at most a fixed number of callers run at once and hands
// the turns out in arrival order.
//
// PostgreSQL's store runs the short statements of the request path through
// one (Store.turns): authentication, inventory lookups (the queue workers'
// too, so that background lookups queue in the same line) and the
// synchronous write. Without it, 32 clients on 2 cores kept some 16 backends and as
// many goroutines runnable at once, and the operating system's scheduler,
// not arrival order, decided who went next: a 0.02 ms key lookup took 2.9
// ms at the median and the synchronous p99 ran at 2.3 times its p50. In
// turns of pgPoolSize/2 the same load ran at the same rate with a p99 a
// quarter lower (BENCHMARKS.md). SQLite's store has none: its writer
// commits many writes at once and wants them all.
//
// A turn is an optimisation, never a lock: a caller that has waited
// patience goes ahead without one, and a turn held for patience lapses
// (its holder runs on, no longer counted), so that statements stuck behind
// a row lock (an inventory import's, say) cannot hold the others back.
type turnGate struct {
	mu       sync.Mutex
	free     int             // turns nobody holds
	queue    []chan struct{} // the waiting callers, first come first
	patience time.Duration

	// skipped counts the callers that went ahead without a turn, and
	// lapsed the turns let go while their holder ran on (the metrics).
	skipped, lapsed atomic.Int64
}

// pgTurnPatience is how long a statement of PostgreSQL's request path
// waits for its turn before it goes ahead anyway, and how long it holds
// one before the turn lapses; under the heaviest synchronous load of the
// bench a turn came within a few milliseconds.
const pgTurnPatience = 100 * time.Millisecond

// newTurnGate returns a gate of n turns whose callers wait at most
// patience, and hold a turn at most patience.
func newTurnGate(n int, patience time.Duration) *turnGate {
	return &turnGate{free: n, patience: patience}
}

// take waits for a turn and returns the function that hands it back (once,
// however often it is called). It returns at once on the nil gate, without
// a turn once patience has run out (give is then a no-op), and with ctx's
// error if ctx ends first.
func (g *turnGate) take(ctx context.Context) (give func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	g.mu.Lock()
	if g.free > 0 {
		g.free--
		g.mu.Unlock()
		return g.held(), nil
	}
	turn := make(chan struct{})
	g.queue = append(g.queue, turn)
	g.mu.Unlock()
	timer := time.NewTimer(g.patience)
	defer timer.Stop()
	select {
	case <-turn:
		return g.held(), nil
	case <-timer.C:
		if g.leave(turn) {
			g.skipped.Add(1)
			return func() {}, nil
		}
		return g.held(), nil // the turn came as patience ran out
	case <-ctx.Done():
		if !g.leave(turn) {
			g.give()
		}
		return nil, ctx.Err()
	}
}

// held starts a turn just taken: it lapses after patience, and the
// function returned hands it back at most once, before or after that.
func (g *turnGate) held() (give func()) {
	var once sync.Once
	lapse := time.AfterFunc(g.patience, func() {
		once.Do(func() {
			g.lapsed.Add(1)
			g.give()
		})
	})
	return func() {
		lapse.Stop()
		once.Do(g.give)
	}
}

// waiting is how many callers wait for a turn now.
func (g *turnGate) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// leave takes a waiting caller's turn channel out of the queue, and says
// false if it was handed a turn already.
func (g *turnGate) leave(turn chan struct{}) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := slices.Index(g.queue, turn)
	if i < 0 {
		return false
	}
	g.queue = slices.Delete(g.queue, i, i+1)
	return true
}

// give hands a turn to the longest waiting caller, or back to the gate.
func (g *turnGate) give() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) == 0 {
		g.free++
		return
	}
	close(g.queue[0])
	g.queue = slices.Delete(g.queue, 0, 1)
}
