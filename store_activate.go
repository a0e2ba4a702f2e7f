package main

import (
	"database/sql"
	"fmt"
)

// Activations: a restore of a released number reads its inventory row and
// decides "Number restored" (see inventoryBackend); the row is made active
// in the write that records the result. Two restores of one number under
// way at once both read it released, so the write says which one restored
// it: each activation returns the rows it changed, and a result whose row
// it did not change is decided again by the row as it is now
// (lostActivation), almost always "Number already active".

// activateManySQL activates a user's numbers given as a JSON array and
// returns those it activated.
const activateManySQL = `UPDATE inventory SET state = 'active'
	WHERE user_id = ?1 AND state = 'released' AND number IN (SELECT value FROM json_each(?2))
	RETURNING number`

// The index scan takes the array's numbers in their order (btree sorts an
// = ANY array), so two writes lock a user's rows in one order. Under READ
// COMMITTED a row another transaction is activating is waited for and then
// checked again: once that one commits, it is no longer released here.
var _ = pgText(activateManySQL, `UPDATE inventory SET state = 'active' WHERE user_id = $1 AND state = 'released'
	AND number = ANY(ARRAY(SELECT json_array_elements_text($2::json)))
	RETURNING number`)

// Statements that rewrite a result whose activation was lost, by the
// outcome lostActivation gave it (rare: only a race writes them).
const (
	// redecidedNumberSQL: ?6 job, ?7 position.
	redecidedNumberSQL = `UPDATE job_numbers SET status = ?1, message = ?2, status_code = ?3,
		requires_identity_update = ?4, needs_registration = ?5 WHERE job_id = ?6 AND position = ?7`
	// redecidedAttemptSQL: the attempt row of a number tried more than once.
	redecidedAttemptSQL = `UPDATE attempts SET status_code = ?1, message = ?2 WHERE job_id = ?3 AND position = ?4 AND attempt = ?5`
)

// activation is a result that restored a number from released: its row is
// made active in the write that records it.
type activation struct {
	user, job         int64
	position, attempt int
	number            string
	recorded          Outcome // as counted when its result was written
}

// lostActivationResult is an activation that did not happen, with the
// outcome its number has instead.
type lostActivationResult struct {
	activation
	outcome Outcome
}

// activate makes the activations' rows active, a statement per user, and
// returns those it could not, each decided again by its row as it is now.
// Of several activations of one number (two jobs of a user restoring it in
// one batch), the first restores it and the others find it active.
func (s *Store) activate(tx *sql.Tx, acts []activation) ([]lostActivationResult, error) {
	var byUser ordered[int64, activation]
	for _, a := range acts {
		byUser.add(a.user, a)
	}
	var lost []lostActivationResult
	for _, user := range byUser.order {
		userActs := byUser.m[user]
		numbers := make([]string, len(userActs))
		for i, a := range userActs {
			numbers[i] = a.number
		}
		won, err := s.activateNumbers(tx, user, numbers)
		if err != nil {
			return nil, err
		}
		var userLost []activation
		for _, a := range userActs {
			if won[a.number] {
				delete(won, a.number) // the first activation of a number takes it
				continue
			}
			userLost = append(userLost, a)
		}
		if len(userLost) == 0 {
			continue
		}
		decided, err := s.redecide(tx, user, userLost)
		if err != nil {
			return nil, err
		}
		lost = append(lost, decided...)
	}
	return lost, nil
}

// activateNumbers runs activateManySQL for one user's numbers and returns
// the numbers it activated.
func (s *Store) activateNumbers(tx *sql.Tx, user int64, numbers []string) (map[string]bool, error) {
	rows, err := s.wq.queryTx(tx, activateManySQL, user, jsonList(numbers))
	if err != nil {
		return nil, fmt.Errorf("activate inventory: %w", err)
	}
	defer rows.Close()
	won := make(map[string]bool, len(numbers))
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("activate inventory: %w", err)
		}
		won[n] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("activate inventory: %w", err)
	}
	return won, nil
}

// redecide reads the rows of one user's lost activations, inside tx, and
// decides each again by its row (lostActivation).
func (s *Store) redecide(tx *sql.Tx, user int64, lost []activation) ([]lostActivationResult, error) {
	numbers := make([]string, len(lost))
	for i, a := range lost {
		numbers[i] = a.number
	}
	rows, err := tx.Query(s.q(inventoryRecordsSQL), user, jsonList(numbers))
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	records, err := scanInventoryRecords(rows, len(numbers))
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	out := make([]lostActivationResult, len(lost))
	for i, a := range lost {
		row, found := records[a.number]
		out[i] = lostActivationResult{activation: a, outcome: lostActivation(row, found)}
	}
	return out, nil
}

// rewriteLost writes the outcomes of lost activations over the results the
// recorder has just written for them ("Number restored"), attempt rows
// included.
func (s *Store) rewriteLost(tx *sql.Tx, lost []lostActivationResult) error {
	for _, l := range lost {
		o := l.outcome
		if _, err := tx.Exec(s.q(redecidedNumberSQL), o.status(), o.Message, o.StatusCode,
			boolInt(o.RequiresIdentityUpdate), boolInt(o.NeedsRegistration), l.job, l.position); err != nil {
			return fmt.Errorf("record results: %w", err)
		}
		if l.attempt > 1 {
			if _, err := tx.Exec(s.q(redecidedAttemptSQL), o.StatusCode, o.Message, l.job, l.position, l.attempt); err != nil {
				return fmt.Errorf("record attempts: %w", err)
			}
		}
	}
	return nil
}
