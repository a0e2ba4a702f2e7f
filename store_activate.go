package main

import (
	"cmp"
	"database/sql"
	"fmt"
	"slices"
)

// Activations: a restore of a released number reads its inventory row and
// decides "Number restored" (see inventoryBackend); the row is made active
// in the write that records the result. Two restores of one number under
// way at once both read it released, so the write says which one restored
// it: each activation finds out which rows it did not change, and a result
// whose row it did not change is decided again by the row as it is now
// (lostActivation), almost always "Number already active".

// activateManySQL activates a user's numbers given as a JSON array. On
// SQLite it runs inside savepointActivationSQL: if it changes fewer rows
// than it was given numbers (rare: some are not released any more), the
// savepoint is rolled back and activateReturningSQL says which it changes.
// Returning every row it changes cost the recorder 12% of its time.
const (
	activateManySQL = `UPDATE inventory SET state = 'active'
		WHERE user_id = ?1 AND state = 'released' AND number IN (SELECT value FROM json_each(?2))`
	activateReturningSQL   = activateManySQL + ` RETURNING number`
	savepointActivationSQL = `SAVEPOINT activation`
	releaseActivationSQL   = `RELEASE activation`
	rollbackActivationSQL  = `ROLLBACK TO activation`
)

// activateLostPGSQL is activateManySQL on PostgreSQL, returning the numbers
// it did not activate (mostly none). The index scan takes the array's
// numbers in their order (btree sorts an = ANY array), so two writes lock a
// user's rows in one order. Under READ COMMITTED a row another transaction
// is activating is waited for and then checked again: once that one
// commits, it is no longer released here.
const activateLostPGSQL = `WITH activated AS (
		UPDATE inventory SET state = 'active' WHERE user_id = $1 AND state = 'released'
		AND number = ANY(ARRAY(SELECT json_array_elements_text($2::json)))
		RETURNING number)
	SELECT n FROM json_array_elements_text($2::json) AS n WHERE n NOT IN (SELECT number FROM activated)`

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
// made active in the write that records it. The recorder fills position in
// only for an activation lost (see settleActivations).
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
	var lost []lostActivationResult
	users := activationUsers(acts)
	for _, user := range users {
		mine := acts
		if len(users) > 1 {
			mine = nil
			for _, a := range acts {
				if a.user == user {
					mine = append(mine, a)
				}
			}
		}
		first := make(map[string]bool, len(mine)) // number -> its first activation is not lost
		distinct := make([]string, 0, len(mine))
		for _, a := range mine {
			if _, seen := first[a.number]; !seen {
				first[a.number] = true
				distinct = append(distinct, a.number)
			}
		}
		notActivated, err := s.activateNumbers(tx, user, distinct)
		if err != nil {
			return nil, err
		}
		if len(notActivated) == 0 && len(distinct) == len(mine) {
			continue
		}
		for _, n := range notActivated {
			first[n] = false
		}
		var userLost []activation
		for _, a := range mine {
			if first[a.number] {
				first[a.number] = false // any later activation of it finds it active
				continue
			}
			userLost = append(userLost, a)
		}
		decided, err := s.redecide(tx, user, userLost)
		if err != nil {
			return nil, err
		}
		lost = append(lost, decided...)
	}
	return lost, nil
}

// activationUsers lists the users of acts, in the order they first come.
func activationUsers(acts []activation) []int64 {
	var users []int64
	for _, a := range acts {
		if !slices.Contains(users, a.user) {
			users = append(users, a.user)
		}
	}
	return users
}

// activateNumbers activates a user's numbers (each once in numbers) and
// returns those it did not.
func (s *Store) activateNumbers(tx *sql.Tx, user int64, numbers []string) ([]string, error) {
	list := jsonList(numbers)
	if s.pg != nil {
		lost, err := queryStrings(tx, activateLostPGSQL, user, list)
		if err != nil {
			return nil, fmt.Errorf("activate inventory: %w", err)
		}
		return lost, nil
	}
	if _, err := s.wq.exec(tx, savepointActivationSQL); err != nil {
		return nil, fmt.Errorf("activate inventory: %w", err)
	}
	res, err := s.wq.exec(tx, activateManySQL, user, list)
	var changed int64
	if err == nil {
		changed, err = res.RowsAffected()
	}
	if err == nil && changed == int64(len(numbers)) {
		_, err = s.wq.exec(tx, releaseActivationSQL)
		return nil, err
	}
	if _, rbErr := tx.Exec(rollbackActivationSQL); rbErr != nil {
		return nil, fmt.Errorf("activate inventory: %w (after %v)", rbErr, err)
	}
	if _, relErr := s.wq.exec(tx, releaseActivationSQL); relErr != nil || err != nil {
		return nil, fmt.Errorf("activate inventory: %w", cmp.Or(err, relErr))
	}
	activated, err := queryStrings(tx, activateReturningSQL, user, list)
	if err != nil {
		return nil, fmt.Errorf("activate inventory: %w", err)
	}
	won := make(map[string]bool, len(activated))
	for _, n := range activated {
		won[n] = true
	}
	return slices.DeleteFunc(slices.Clone(numbers), func(n string) bool { return won[n] }), nil
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

// queryStrings runs a query of one text column inside tx and returns its
// values.
func queryStrings(tx *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.Query(query, args...)
	if err != nil {
		return nil, err
	}
	return scanColumn[string](rows)
}
