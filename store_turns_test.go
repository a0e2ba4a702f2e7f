package main

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// state is the gate's free turns and waiting callers.
func (g *turnGate) state() (free, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.free, len(g.queue)
}

// waitForGate polls g until it has free turns and waiting callers, or
// fails t after five seconds.
func waitForGate(t *testing.T, g *turnGate, free, waiting int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f, w := g.state()
		if f == free && w == waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gate: %d free, %d waiting; want %d and %d", f, w, free, waiting)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTurnGateHandsTurnsOutInArrivalOrder(t *testing.T) {
	g := newTurnGate(1, time.Hour)
	giveFirst, err := g.take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const waiters = 5
	order := make(chan int, waiters)
	gives := make(chan func(), waiters)
	for i := range waiters {
		go func() {
			give, err := g.take(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			gives <- give
		}()
		waitForGate(t, g, 0, i+1) // i+1 queued before the next arrives
	}
	giveFirst()
	for want := range waiters {
		select {
		case got := <-order:
			if got != want {
				t.Fatalf("turn %d went to caller %d", want, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("turn %d never came", want)
		}
		(<-gives)()
	}
	waitForGate(t, g, 1, 0)
}

func TestTurnGateAdmitsItsSizeAtOnce(t *testing.T) {
	g := newTurnGate(3, time.Hour)
	var gives []func()
	for range 3 {
		give, err := g.take(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		gives = append(gives, give)
	}
	waitForGate(t, g, 0, 0)
	for _, give := range gives {
		give()
	}
	waitForGate(t, g, 3, 0)
}

func TestTurnGateWaiterWhoseContextEndsLeavesTheQueue(t *testing.T) {
	g := newTurnGate(1, time.Hour)
	give, err := g.take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := g.take(ctx)
		done <- err
	}()
	waitForGate(t, g, 0, 1)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("take after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled waiter kept waiting")
	}
	waitForGate(t, g, 0, 0)
	give()
	waitForGate(t, g, 1, 0) // the turn was not handed to the one who left
}

func TestTurnGateImpatientCallerGoesAhead(t *testing.T) {
	g := newTurnGate(1, 20*time.Millisecond)
	give, err := g.take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan func(), 1)
	go func() {
		giveLate, err := g.take(context.Background())
		if err != nil {
			t.Error(err)
		}
		done <- giveLate
	}()
	select {
	case giveLate := <-done: // without a turn, or with the one that lapsed
		giveLate()
	case <-time.After(5 * time.Second):
		t.Fatal("a caller past its patience kept waiting")
	}
	give()
	waitForGate(t, g, 1, 0)
}

func TestTurnGateTurnHeldPastPatienceLapses(t *testing.T) {
	g := newTurnGate(1, 20*time.Millisecond)
	give, err := g.take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitForGate(t, g, 1, 0) // its holder never gave it back
	give()                  // late: hands back nothing more
	give()
	waitForGate(t, g, 1, 0)
}

// TestTurnGateCountsWhoWentAheadAndWhatLapsed: a turn whose holder never
// gives it back lapses to the first of two waiters, who keeps it too; the
// second goes ahead without one when its patience runs out. The waiters
// come half a patience after the holder, so that each timer has that much
// margin over the one it races (the holder's lapse before the first
// waiter's patience, the second's patience before the first's lapse).
func TestTurnGateCountsWhoWentAheadAndWhatLapsed(t *testing.T) {
	const patience = 200 * time.Millisecond
	g := newTurnGate(1, patience)
	if _, err := g.take(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-time.After(patience / 2) // the spacing itself, not a wait for an event
	came := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := g.take(context.Background())
			came <- err
		}()
		waitForGate(t, g, 0, i+1) // the first waiter queues before the second
	}
	for range 2 {
		select {
		case err := <-came:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a waiter never came through")
		}
	}
	if n := g.skipped.Load(); n != 1 {
		t.Fatalf("%d callers went ahead without a turn, want 1", n)
	}
	waitForGate(t, g, 1, 0) // the second turn lapses too
	if n := g.lapsed.Load(); n != 2 {
		t.Fatalf("%d turns lapsed, want 2", n)
	}
}

// TestTurnGateCountsEveryTurnUnderChurn: many callers taking turns at once,
// some cancelled while they wait, some past their patience, some handing
// back twice; at the end every turn is free and nobody waits.
func TestTurnGateCountsEveryTurnUnderChurn(t *testing.T) {
	const turns, callers, rounds = 3, 16, 200
	g := newTurnGate(turns, 2*time.Millisecond)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for r := range rounds {
				ctx, cancel := context.WithCancel(context.Background())
				switch (c + r) % 4 {
				case 0:
					cancel() // already gone
				case 1:
					go cancel() // gone while it waits, maybe
				}
				give, err := g.take(ctx)
				if err == nil {
					runtime.Gosched()
					give()
					if r%3 == 0 {
						give()
					}
				}
				cancel()
			}
		})
	}
	wg.Wait()
	waitForGate(t, g, turns, 0)
}

func TestNilTurnGateAdmitsAtOnce(t *testing.T) {
	var g *turnGate
	give, err := g.take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	give()
}
