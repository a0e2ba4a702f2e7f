package main

import (
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A cancellation across PostgreSQL's instances. The instance that takes the
// request cancels, in one transaction, every pending number that none of
// its own workers has started and no other instance holds under a live
// lease (cancelJobNumbers), and, if other instances hold some, tells every
// instance on pgCancelChannel (announceCancel). Each instance, told, stops
// the job's work in its registry and cancels the numbers it holds that its
// workers have not started, in a transaction of its own that answers on
// pgCancelDoneChannel (cancelHeld). The first instance waits a bounded
// time for the answers of those that held numbers, so that its reply
// counts as cancelled every number no worker anywhere has started, as one
// instance's does, and no restore of the job begins after it. The
// instances not named stop the job in their registry and write nothing.

// The statements of a cancellation across instances.
const (
	// othersHoldingSQL lists the other instances holding pending numbers
	// of job $1 under a live lease (restoring them, or about to) that are
	// connected now: each holds the shared advisory lock ($2, hashtext of
	// its id) on its listening connection. An instance killed keeps its
	// leases until they lapse (-lease), but its lock goes with its
	// connection, so a cancellation does not wait for an answer that
	// cannot come. (Two ids of one hash make a dead instance look alive:
	// a wait of cancelAckWait, as before.)
	othersHoldingSQL = `SELECT h.claimed_by FROM (SELECT DISTINCT claimed_by FROM job_numbers
			WHERE job_id = $1 AND status = 'pending' AND claimed_by <> ` + pgMe + ` AND ` + pgProcessing + `) AS h
		WHERE hashtext(h.claimed_by)::oid IN
			(SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = $2::oid AND objsubid = 2 AND granted)`
	// cancelHeldSQL cancels the pending numbers of job $3 this instance
	// holds, but for those at the positions of the JSON array $4 (started).
	cancelHeldSQL = `UPDATE job_numbers SET status = 'cancelled', message = $1, status_code = NULL,
		completed_at = $2, claimed_by = NULL, lease_until = NULL
		WHERE job_id = $3 AND status = 'pending' AND claimed_by = ` + pgMe + `
		AND position <> ALL(ARRAY(SELECT json_array_elements_text($4::json)::int))`
)

// announceCancel, in the transaction that cancels a job, returns the other
// instances that still hold numbers of it and, if there are any, tells
// every instance (at commit) that the job is cancelled, naming those
// (payload "job holder…"; ids have no spaces). Nil on SQLite.
func (s *Store) announceCancel(tx *sql.Tx, jobID int64) ([]string, error) {
	if s.pg == nil {
		return nil, nil
	}
	rows, err := tx.Query(othersHoldingSQL, jobID, pgLiveLockSpace)
	if err != nil {
		return nil, fmt.Errorf("cancel: other instances' numbers: %w", err)
	}
	others, err := scanColumn[string](rows)
	if err != nil || len(others) == 0 {
		return nil, err
	}
	payload := strconv.FormatInt(jobID, 10) + " " + strings.Join(others, " ")
	_, err = tx.Exec("SELECT pg_notify($1, $2)", pgCancelChannel, payload)
	return others, err
}

// instance is this process's id among the instances of a PostgreSQL
// database; empty on SQLite.
func (s *Store) instance() string {
	if s.pg == nil {
		return ""
	}
	return s.pg.instance
}

// cancelHeld cancels the numbers of a job another instance cancelled that
// this one holds and whose restore has not started, settles the job, and
// answers on pgCancelDoneChannel (at commit) with "job instance". A job
// gone meanwhile (its user deleted) is answered all the same; one not
// cancelled (which no notification names) is left alone.
func (s *Store) cancelHeld(tx *sql.Tx, jobID int64, started []int, now time.Time) error {
	var status jobStatus
	err := tx.QueryRow(s.q(cancelStatusSQL), jobID).Scan(&status) // the job row first, as every cancellation
	switch {
	case errors.Is(err, sql.ErrNoRows), err == nil && status != jobCancelled:
	case err != nil:
		return fmt.Errorf("cancel held numbers: %w", err)
	default:
		n, err := execCount(tx, cancelHeldSQL, msgCancelled, ms(now), jobID, jsonList(append([]int{}, started...)))
		if err != nil {
			return fmt.Errorf("cancel held numbers: %w", err)
		}
		if n > 0 {
			if err := s.settleCancelled(tx, jobID, jobSettlement{cancelled: n, now: now, webhookDue: now}); err != nil {
				return err
			}
		}
	}
	_, err = tx.Exec("SELECT pg_notify($1, $2)", pgCancelDoneChannel, fmt.Sprintf("%d %s", jobID, s.pg.instance))
	return err
}
