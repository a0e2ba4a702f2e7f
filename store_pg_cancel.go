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
	// of job $1 under a live lease (restoring them, or about to), each
	// with whether it is connected now: whether it holds, on its listening
	// connection, the shared advisory lock ($2, hashtext of its id) of
	// this database. An instance killed keeps its leases until they lapse
	// (-lease), but its lock goes with its connection. (Two ids of one
	// hash make a dead instance look connected: a wait of cancelAckWait.)
	othersHoldingSQL = `SELECT h.claimed_by, hashtext(h.claimed_by)::oid IN
			(SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = $2::oid AND objsubid = 2 AND granted
				AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))
		FROM (SELECT DISTINCT claimed_by FROM job_numbers
			WHERE job_id = $1 AND status = 'pending' AND ` + pgOthersProcessing + `) AS h`
	// cancelHeldSQL cancels the pending numbers of job $3 this instance
	// holds, but for those at the positions of the JSON array $4 (started).
	cancelHeldSQL = `UPDATE job_numbers SET status = 'cancelled', message = $1, status_code = NULL,
		completed_at = $2, claimed_by = NULL, lease_until = NULL
		WHERE job_id = $3 AND status = 'pending' AND claimed_by = ` + pgMe + `
		AND position <> ALL(ARRAY(SELECT json_array_elements_text($4::json)::int))`
)

// cancelHolders are the other instances holding numbers of a job being
// cancelled: those connected now, by id, which are told and answer, and
// how many are not (killed, or with their listening connection down),
// which cannot be told.
type cancelHolders struct {
	connected   []string
	unconnected int
}

// any reports whether another instance holds numbers of the job.
func (h cancelHolders) any() bool { return len(h.connected) > 0 || h.unconnected > 0 }

// announceCancel, in the transaction that cancels a job, returns the other
// instances that still hold numbers of it and, if some of them are
// connected, tells every instance (at commit) that the job is cancelled,
// naming those (payload "job holder…"; ids have no spaces). None on
// SQLite.
func (s *Store) announceCancel(tx *sql.Tx, jobID int64) (cancelHolders, error) {
	var h cancelHolders
	if s.pg == nil {
		return h, nil
	}
	rows, err := tx.Query(othersHoldingSQL, jobID, pgLiveLockSpace)
	if err != nil {
		return h, fmt.Errorf("cancel: other instances' numbers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var connected bool
		if err := rows.Scan(&id, &connected); err != nil {
			return h, err
		}
		if connected {
			h.connected = append(h.connected, id)
		} else {
			h.unconnected++
		}
	}
	if err := rows.Err(); err != nil || len(h.connected) == 0 {
		return h, err
	}
	payload := strconv.FormatInt(jobID, 10) + " " + strings.Join(h.connected, " ")
	_, err = tx.Exec("SELECT pg_notify($1, $2)", pgCancelChannel, payload)
	return h, err
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
