package main

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// pgQueue is the queue engine of a PostgreSQL database that several
// instances share (see queueEngine).
type pgQueue struct{ s *Store }

// pgMe is this instance's id in a statement: each connection carries it
// (see openPGStore).
const pgMe = "current_setting('bulkrestore.instance')"

// pgClaimPairs is the numbers h of the [job, position] pairs of the JSON
// array $1, each found through the primary key: the planner drives the
// join from the array, whatever it knows of job_numbers. (jsonb: the
// pair is parsed once, not once for each ->>.)
const pgClaimPairs = `jsonb_array_elements($1::jsonb) AS e
	JOIN job_numbers AS h ON h.job_id = (e->>0)::bigint AND h.position = (e->>1)::int`

// The statements of PostgreSQL's claims.
const (
	// claimNumbersSQL claims up to $3 pending numbers of job $1 past
	// position $2 that no live lease holds, for $4 ms: rows another
	// instance is claiming right now are skipped, never waited for. Numbers
	// waiting for a retry are claimed too, and kept until due (the
	// dispatcher's retry queue), as SQLite's dispatcher does. The rows
	// locked are updated where they are (ctid: a row this statement locked
	// cannot move), without a second walk of the primary key. The ctids go
	// as one array, which PostgreSQL reads as a TID scan whatever the size
	// of the table; joined to the locked rows instead, a table of some
	// 100,000 rows was read whole into a hash for every claim (37 ms for
	// 4,096 numbers against 14, measured with EXPLAIN ANALYZE).
	claimNumbersSQL = `UPDATE job_numbers SET claimed_by = ` + pgMe + `, lease_until = bulkrestore_now_ms() + $4
		WHERE ctid = ANY(ARRAY(SELECT ctid FROM job_numbers
			WHERE job_id = $1 AND position > $2 AND status = 'pending'
			AND (lease_until IS NULL OR lease_until < bulkrestore_now_ms())
			ORDER BY position LIMIT $3 FOR UPDATE SKIP LOCKED))
		RETURNING position, number, attempts, next_attempt_at`
	// renewClaimsSQL extends, to $2 ms from now, the leases of the
	// [job, position] pairs of the JSON array $1 that this instance still
	// holds; a row locked right now (its result being recorded) is passed
	// over, never waited for.
	renewClaimsSQL = `UPDATE job_numbers AS n SET lease_until = bulkrestore_now_ms() + $2
		FROM (SELECT h.job_id, h.position FROM ` + pgClaimPairs + `
			WHERE h.status = 'pending' AND h.claimed_by = ` + pgMe + ` FOR UPDATE OF h SKIP LOCKED) AS l
		WHERE n.job_id = l.job_id AND n.position = l.position`
	// releaseClaimsSQL gives back this instance's claims on the numbers of
	// unfinished jobs.
	releaseClaimsSQL = `UPDATE job_numbers SET claimed_by = NULL, lease_until = NULL
		WHERE job_id IN (SELECT id FROM jobs WHERE status IN ('pending', 'processing')
			OR (status = 'cancelled' AND total > success_count + failure_count + cancelled_count))
		AND status = 'pending' AND claimed_by = ` + pgMe
	// claimWebhooksSQL takes up to $2 deliveries due at $1 by moving them
	// $3 ms into the future: no other instance finds them due until then,
	// and if this one dies meanwhile, they fall due again. Recording the
	// attempt sets their real next time.
	claimWebhooksSQL = `UPDATE jobs SET webhook_next_at = $1 + $3 WHERE id IN
		(SELECT id FROM jobs WHERE webhook_state = 'pending' AND webhook_next_at <= $1
			ORDER BY webhook_next_at LIMIT $2 FOR UPDATE SKIP LOCKED)
		RETURNING id`
	nextWebhookSQL = "SELECT min(webhook_next_at) FROM jobs WHERE webhook_state = 'pending' AND webhook_next_at > $1"
)

// takeNumbers claims numbers in the database under a lease. The claim
// walks the job's numbers in the primary key's order from the cursor and
// stops at n: the planner is told so (no bitmap scan, no sort), since
// without fresh statistics of a job just queued it would rather read and
// sort every number of the job (70 ms a claim for 100,000 numbers,
// measured, against a millisecond or two).
func (q pgQueue) takeNumbers(ctx context.Context, job activeJob, after, n int) ([]claim, error) {
	var got []claim
	err := q.s.txOnce(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off"); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, claimNumbersSQL, job.id, after, n, q.s.pg.lease.Milliseconds())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c := claim{JobID: job.id, UserID: job.userID}
			var due int64
			if err := rows.Scan(&c.Position, &c.Number, &c.Attempts, &due); err != nil {
				return err
			}
			if due > 0 {
				c.DueAt = time.UnixMilli(due)
			}
			got = append(got, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim numbers of job %d: %w", job.id, err)
	}
	slices.SortFunc(got, func(a, b claim) int { return cmp.Compare(a.Position, b.Position) })
	return got, nil
}

// claimPairs renders claims as a JSON array of [job, position] pairs.
func claimPairs(claims []claim) string {
	pairs := make([][2]any, len(claims))
	for i, c := range claims {
		pairs[i] = [2]any{c.JobID, c.Position}
	}
	return jsonPairs(pairs)
}

// renewClaims extends the leases of held in one statement.
func (q pgQueue) renewClaims(ctx context.Context, held []claim) error {
	if len(held) == 0 {
		return nil
	}
	if _, err := q.s.w.ExecContext(ctx, renewClaimsSQL, claimPairs(held), q.s.pg.lease.Milliseconds()); err != nil {
		return fmt.Errorf("renew leases: %w", err)
	}
	return nil
}

// releaseClaims gives back this instance's claims and wakes the others.
func (q pgQueue) releaseClaims(ctx context.Context) error {
	return q.s.pgWriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(releaseClaimsSQL); err != nil {
			return fmt.Errorf("release claims: %w", err)
		}
		return q.s.notify(tx, pgReleasedChannel)
	})
}

// takeWebhooks claims room due deliveries for hold; those under way are
// claimed already, so no longer due. Once begun, the claim runs to its end
// whatever happens to ctx, and what it claimed is returned even if reading
// the next due time fails: a claim committed and then lost (a server
// stopping between the two statements) would hold its delivery back from
// every instance for hold.
func (q pgQueue) takeWebhooks(ctx context.Context, now time.Time, room, _ int, hold time.Duration) ([]int64, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return nil, time.Time{}, err
	}
	claim, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownWriteGrace)
	defer cancel()
	rows, err := q.s.w.QueryContext(claim, claimWebhooksSQL, ms(now), room, hold.Milliseconds())
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("claim webhooks: %w", err)
	}
	ids, err := scanColumn[int64](rows)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("claim webhooks: %w", err)
	}
	var next sql.NullInt64
	if err := q.s.r.QueryRowContext(ctx, nextWebhookSQL, ms(now)).Scan(&next); err != nil {
		return ids, time.Time{}, fmt.Errorf("next due webhook: %w", err)
	}
	return ids, fromMs(next), nil
}

// giveBackWebhook undoes takeWebhooks' hold on one delivery, if it is
// still this process's, and wakes the other instances' senders.
func (q pgQueue) giveBackWebhook(ctx context.Context, jobID int64, heldUntil, now time.Time) error {
	return q.s.pgWriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`UPDATE jobs SET webhook_next_at = $3
			WHERE id = $1 AND webhook_state = 'pending' AND webhook_next_at = $2`,
			jobID, ms(heldUntil), ms(now)); err != nil {
			return fmt.Errorf("give back webhook: %w", err)
		}
		return q.s.notify(tx, pgWebhookChannel)
	})
}

// exclusively runs fn while holding an advisory lock on a connection of
// its own; another instance holding it means fn does not run now.
func (q pgQueue) exclusively(ctx context.Context, lock int64, fn func() error) (bool, error) {
	conn, err := q.s.w.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", lock).Scan(&got); err != nil || !got {
		return false, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lock)
	return true, fn()
}

// leaseRenewal is a quarter of the lease: a claim is renewed three times
// before it could run out, and numbers whose holder died are looked for as
// often.
func (q pgQueue) leaseRenewal() time.Duration { return q.s.pg.lease / 4 }
