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

// cancelAcks are the cancellations this process waits on other instances
// for: per job, a channel told the id of each instance that has cancelled
// what it held.
type cancelAcks struct {
	mu      sync.Mutex
	waiting map[int64]chan string
}

// expect starts listening for the answers about job; forget stops.
func (c *cancelAcks) expect(job int64) <-chan string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting == nil {
		c.waiting = map[int64]chan string{}
	}
	ch := make(chan string, 64)
	c.waiting[job] = ch
	return ch
}

// forget stops listening for the answers about job.
func (c *cancelAcks) forget(job int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.waiting, job)
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
	select {
	case c.waiting[id] <- instance:
	default: // nobody waits (a nil channel), or more answers than instances
	}
}

// await waits until every instance of from has answered on acks, ctx ends
// or within passes, and returns those that did not answer.
func (c *cancelAcks) await(ctx context.Context, acks <-chan string, from []string, within time.Duration) []string {
	timer := time.NewTimer(within)
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

// cancelledElsewhere is told (payload: the job's id) that another instance
// cancelled a job: no worker starts a number of it any more, and the
// numbers this process holds and has not started are cancelled now, in a
// transaction that answers the canceller. A notification without a job
// (sent after the listener reconnects) changes nothing: the workers find
// cancelled jobs when they check them.
func (p *pool) cancelledElsewhere(ctx context.Context, payload string) {
	jobID, err := strconv.ParseInt(payload, 10, 64)
	if err != nil {
		return
	}
	err = p.recorder.writer.do(ctx, func(tx *sql.Tx) error {
		started := p.registry.stop(jobID, stopCancelled)
		return p.store.cancelHeld(tx, jobID, started, time.Now())
	})
	if err != nil && ctx.Err() == nil {
		p.log.Warn("cancel the held numbers of a job cancelled by another instance; the workers skip them when they next check it",
			"job_id", jobID, "err", err)
	}
}
