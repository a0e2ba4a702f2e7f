package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// The synchronous path's write: a job whose numbers all have their outcome,
// stored whole and final (PostgreSQL's one statement is in
// store_pg_jobs.go).

// insertCompletedNumbersSQL inserts a group of numbers with the same
// outcome; ?2 is a JSON array of [position, number] pairs. It is kept
// prepared (see writeStatements).
const insertCompletedNumbersSQL = `INSERT INTO job_numbers (job_id, position, number, status, message, status_code,
	requires_identity_update, needs_registration, attempts, started_at, completed_at)
	SELECT ?1, value->>0, value->>1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 FROM json_each(?2)`

// completedNumber is a number restored in full before its job was stored
// (the synchronous path): every attempt, the last one final.
type completedNumber struct {
	Number   string
	Attempts []attemptRecord
}

// outcome is the number's final outcome.
func (c completedNumber) outcome() Outcome { return c.Attempts[len(c.Attempts)-1].Outcome }

// storedAttempts are the attempts stored as attempt rows: none for a
// number restored at its first try, whose own row records that try (see
// number_attempts), else every one.
func (c completedNumber) storedAttempts() []attemptRecord {
	if len(c.Attempts) == 1 {
		return nil
	}
	return c.Attempts
}

// setCompletedTotals sets a synchronous job's counts and times from its
// numbers: their successes and failures, the first attempt's start, the
// last one's end.
func (j *Job) setCompletedTotals(numbers []completedNumber) {
	var success, failure int
	var first, last time.Time
	for pos, n := range numbers {
		if n.outcome().Success {
			success++
		} else {
			failure++
		}
		if started := n.Attempts[0].Started; pos == 0 || started.Before(first) {
			first = started
		}
		last = maxTime(last, n.Attempts[len(n.Attempts)-1].Finished)
	}
	j.SuccessCount, j.FailureCount, j.StartedAt, j.CompletedAt = success, failure, first, last
}

// completedActivations are the activations of a synchronous job's numbers
// restored from released.
func completedActivations(user int64, numbers []completedNumber) []activation {
	var acts []activation
	for pos, n := range numbers {
		if o := n.outcome(); o.Activate {
			acts = append(acts, activation{user: user, position: pos, attempt: len(n.Attempts), number: n.Number, recorded: o})
		}
	}
	return acts
}

// settleLostActivations gives each number of a lost activation its new
// outcome, in place of its last attempt's.
func settleLostActivations(numbers []completedNumber, lost []lostActivationResult) {
	for _, l := range lost {
		attempts := numbers[l.position].Attempts
		attempts[len(attempts)-1].Outcome = l.outcome
	}
}

// storeCompletedJob stores, through w, a job whose numbers all have their
// outcome (the synchronous path): the job, its numbers, every attempt, the
// inventory changes, its link to the job it retries and to the
// Idempotency-Key it answers (when idemKey is set). The job goes in
// completed, as the settle rule would leave it; its webhook, if any, falls
// due at webhookDue, so that the caller makes the first attempt before the
// sender does.
//
// A number whose activation was lost (another restore made it active
// first, or its row changed meanwhile) is stored with the outcome its row
// gives now, and that outcome is written into numbers, for the caller's
// reply, as are the job's counts into j.
func (s *Store) storeCompletedJob(ctx context.Context, w *writer, j *Job, numbers []completedNumber, webhookDue time.Time, idemKey string) error {
	j.Status, j.Total = jobCompleted, len(numbers)
	j.WebhookState = webhookNone
	if j.WebhookURL != "" {
		j.WebhookState = webhookPending
	} else {
		webhookDue = time.Time{}
	}
	if s.pg != nil {
		return w.doStatement(ctx, func(ctx context.Context, db *sql.DB) error {
			return s.insertCompletedJobPG(ctx, db, j, numbers, webhookDue, idemKey)
		})
	}
	return w.do(ctx, func(tx *sql.Tx) error {
		if err := s.insertCompletedJob(tx, j, numbers, webhookDue); err != nil {
			return err
		}
		if j.RetryOf != "" {
			if err := s.linkRetry(tx, j.ID, j.RetryOf); err != nil {
				return err
			}
		}
		if idemKey != "" {
			return s.linkIdempotencyKey(tx, j.UserID, idemKey, j.ID)
		}
		return nil
	})
}

// insertCompletedJob writes storeCompletedJob's job and its numbers in
// SQLite: the activations first, so that the numbers are written with
// their outcome, then a statement for each group of numbers or attempts
// that share an outcome.
func (s *Store) insertCompletedJob(tx *sql.Tx, j *Job, numbers []completedNumber, webhookDue time.Time) error {
	lost, err := s.activate(tx, completedActivations(j.UserID, numbers))
	if err != nil {
		return err
	}
	settleLostActivations(numbers, lost)
	j.setCompletedTotals(numbers)
	if err := s.insertJobRow(tx, j, webhookDue); err != nil {
		return err
	}
	g := groupCompleted(numbers)
	for _, k := range g.numbers.order {
		if _, err := s.wq.exec(tx, insertCompletedNumbersSQL, j.ID, jsonPairs(g.numbers.m[k]), k.status, k.message, k.code,
			boolInt(k.riu), boolInt(k.nr), k.attempts, k.started, k.finished); err != nil {
			return fmt.Errorf("insert numbers: %w", err)
		}
	}
	for _, k := range g.attempts.order {
		if _, err := s.wq.exec(tx, insertAttemptGroupSQL, j.ID, jsonList(g.attempts.m[k]), k.attempt, k.started, k.finished,
			k.code, k.message); err != nil {
			return fmt.Errorf("insert attempts: %w", err)
		}
	}
	return nil
}

// completedNumberKey is what a group of a synchronous job's numbers write,
// but for their position and number.
type completedNumberKey struct {
	status            numberStatus
	message           string
	code, attempts    int
	riu, nr           bool
	started, finished int64
}

// completedAttemptKey is what a group of attempts write, but for their
// position.
type completedAttemptKey struct {
	attempt, code     int
	message           string
	started, finished int64
}

// completedGroups is a synchronous job's numbers and attempts grouped so
// that one statement writes each group.
type completedGroups struct {
	numbers  ordered[completedNumberKey, [2]any] // [position, number]
	attempts ordered[completedAttemptKey, int]   // positions
}

// groupCompleted groups a synchronous job's numbers and attempts.
func groupCompleted(numbers []completedNumber) completedGroups {
	var g completedGroups
	for pos, n := range numbers {
		o := n.outcome()
		firstTry, lastTry := n.Attempts[0], n.Attempts[len(n.Attempts)-1]
		g.numbers.add(completedNumberKey{status: o.status(), message: o.Message, code: o.StatusCode, attempts: len(n.Attempts),
			riu: o.RequiresIdentityUpdate, nr: o.NeedsRegistration, started: ms(firstTry.Started), finished: ms(lastTry.Finished)},
			[2]any{pos, n.Number})
		for i, a := range n.storedAttempts() {
			g.attempts.add(completedAttemptKey{attempt: i + 1, code: a.Outcome.StatusCode, message: a.Outcome.Message,
				started: ms(a.Started), finished: ms(a.Finished)}, pos)
		}
	}
	return g
}

// ordered collects values under keys and remembers the keys in the order
// they first came: groups of rows that one statement writes each.
type ordered[K comparable, V any] struct {
	order []K
	m     map[K][]V
}

// add files v under k.
func (o *ordered[K, V]) add(k K, v V) {
	if o.m == nil {
		o.m = map[K][]V{}
	}
	if _, seen := o.m[k]; !seen {
		o.order = append(o.order, k)
	}
	o.m[k] = append(o.m[k], v)
}

// jsonPairs renders [position, number] pairs as a JSON array, for json_each.
func jsonPairs(pairs [][2]any) string {
	b, _ := json.Marshal(pairs) // ints and strings always marshal
	return string(b)
}

// maxTime returns the later of two times.
func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
