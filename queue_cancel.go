package main

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cancelAckWait bounds how long a cancellation waits for the other
// instances holding numbers of the job to cancel those they have not
// started (see store_pg_cancel.go); past it, the reply counts what is
// known, and the others' workers skip the rest when they next check the
// job (liveCheckAge).
const cancelAckWait = 2 * time.Second

// unconnectedHolderWait is how long a cancellation waits, at least, when
// an instance holding numbers of the job is not connected to hear of it.
// A dead one will never answer; a live one whose listening connection is
// down (PostgreSQL restarting, say) still restores, and its workers find
// the cancellation by their own check of the job (liveCheckAge, 100 ms)
// and record the numbers they skip as cancelled: this leaves time for
// that, without the whole cancelAckWait for an answer that cannot come.
const unconnectedHolderWait = 300 * time.Millisecond

// cancelAcks are the cancellations this process waits on other instances
// for: per job, the channels of the requests waiting (a cancel and a
// deletion, or a cancel sent twice, may wait at once), each told the id of
// every instance that has cancelled what it held.
type cancelAcks struct {
	mu      sync.Mutex
	waiting map[int64]map[chan string]bool
}

// expect starts listening for the answers about job, for one request.
func (c *cancelAcks) expect(job int64) chan string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting == nil {
		c.waiting = map[int64]map[chan string]bool{}
	}
	if c.waiting[job] == nil {
		c.waiting[job] = map[chan string]bool{}
	}
	ch := make(chan string, 64)
	c.waiting[job][ch] = true
	return ch
}

// forget stops listening for the answers about job on ch.
func (c *cancelAcks) forget(job int64, ch chan string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.waiting[job], ch)
	if len(c.waiting[job]) == 0 {
		delete(c.waiting, job)
	}
}

// deliver hands an answer ("job instance") to whoever waits for it.
func (c *cancelAcks) deliver(payload string) {
	job, instance, ok := strings.Cut(payload, " ")
	id, err := strconv.ParseInt(job, 10, 64)
	if !ok || err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.waiting[id] {
		select {
		case ch <- instance:
		default: // more answers than instances
		}
	}
}

// await waits until every instance of from has answered on acks, ctx ends
// or the deadline passes, and returns those that did not answer.
func (c *cancelAcks) await(ctx context.Context, acks <-chan string, from []string, deadline time.Time) []string {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	missing := slices.Clone(from)
	for len(missing) > 0 {
		select {
		case id := <-acks:
			missing = slices.DeleteFunc(missing, func(m string) bool { return m == id })
		case <-timer.C:
			return missing
		case <-ctx.Done():
			return missing
		}
	}
	return nil
}

// awaitHolders waits for a cancelled job's holders: for the connected
// ones to answer on acks, until deadline at most, and, if some are not
// connected, until quiet too (but never past deadline). It returns the
// connected holders that did not answer.
func (c *cancelAcks) awaitHolders(ctx context.Context, acks <-chan string, h cancelHolders, quiet, deadline time.Time) []string {
	late := c.await(ctx, acks, h.connected, deadline)
	if h.unconnected > 0 {
		if quiet.After(deadline) {
			quiet = deadline
		}
		sleepUntil(ctx, nil, quiet)
	}
	return late
}

// cancelledElsewhere is told (payload: "job holder…") that another
// instance cancelled a job: no worker of this process starts a number of it
// any more, and, if this process is among the holders named, the numbers it
// holds and has not started are cancelled now, in a write that answers the
// canceller. A notification without a job (sent after the listener
// reconnects) changes nothing: the workers find cancelled jobs when they
// check them.
func (p *pool) cancelledElsewhere(ctx context.Context, payload string) {
	job, holders, _ := strings.Cut(payload, " ")
	jobID, err := strconv.ParseInt(job, 10, 64)
	if err != nil {
		return
	}
	p.registry.stop(jobID, stopCancelled) // at once, before the write waits for a connection
	if !slices.Contains(strings.Fields(holders), p.store.instance()) {
		return
	}
	err = p.recorder.writer.do(ctx, func(tx *sql.Tx) error {
		started := p.registry.stop(jobID, stopCancelled) // the snapshot, taken inside the write
		return p.store.cancelHeld(tx, jobID, started, time.Now())
	})
	if err != nil && ctx.Err() == nil {
		p.log.Warn("cancel the held numbers of a job cancelled by another instance; the workers skip them when they next check it",
			"job_id", jobID, "err", err)
	}
}
