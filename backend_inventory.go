package main

import (
	"context"
	"log/slog"
	"time"
)

// inventoryBackend restores numbers from the users' own inventory, kept in
// the same SQLite file. It only reads; the change of state from released to
// active is made by the writer in the transaction that records the outcome
// (Outcome.Activate), so the result and the inventory can never disagree.
type inventoryBackend struct {
	store  *Store
	window time.Duration
	now    func() time.Time
	log    *slog.Logger
}

// Inventory result messages, as the contract words them.
const (
	msgRestored      = "Number restored"
	msgAlreadyActive = "Number already active"
	msgNotFound      = "Error: 'number not found'"
	msgWindowExpired = "Error: 'restore window expired'"
	msgNoLongerAvail = "Error: 'number is no longer available'"
)

// Restore implements Restorer with the table of the contract's section 3.
func (b *inventoryBackend) Restore(ctx context.Context, userID int64, number string) Outcome {
	return b.RestoreBatch(ctx, userID, []string{number})[0]
}

// RestoreBatch implements batchRestorer: one query for many numbers of one
// user, each decided by the same table.
func (b *inventoryBackend) RestoreBatch(ctx context.Context, userID int64, numbers []string) []Outcome {
	out, err := b.decideBatch(ctx, userID, numbers)
	if err != nil {
		b.log.Error("inventory lookup failed", "numbers", len(numbers), "err", err)
		out = make([]Outcome, len(numbers))
		for i := range out {
			out[i] = internalFailure()
		}
	}
	return out
}

// decideBatch reads the user's rows for the numbers in one query and
// decides each by the result table, changing nothing: what a restore does
// (the writer then applies Outcome.Activate) and what a dry run shows.
func (b *inventoryBackend) decideBatch(ctx context.Context, userID int64, numbers []string) ([]Outcome, error) {
	rows, err := b.store.inventoryRecords(ctx, userID, numbers)
	if err != nil {
		return nil, err
	}
	out := make([]Outcome, len(numbers))
	now := b.now()
	for i, n := range numbers {
		row, found := rows[n]
		out[i] = b.decide(n, row, found, now)
	}
	return out, nil
}

// decide applies the result table to one number's row.
func (b *inventoryBackend) decide(number string, row inventoryRecord, found bool, now time.Time) Outcome {
	if found && row.state == "released" {
		if now.Sub(time.UnixMilli(row.releasedAt)) > b.window {
			return Outcome{StatusCode: 410, Message: msgWindowExpired}
		}
		return Outcome{Success: true, StatusCode: 200, Message: msgRestored, Activate: true,
			RequiresIdentityUpdate: row.riu, NeedsRegistration: row.nr}
	}
	o, known := settledRowOutcome(row, found)
	if !known {
		b.log.Error("inventory row has unknown state", "number", number, "state", row.state)
	}
	return o
}

// settledRowOutcome is the result table for a row that no restore
// changes: none, active or unavailable. Any other row (released, or a
// state no restore knows) is not known here and answers an internal
// failure.
func settledRowOutcome(row inventoryRecord, found bool) (o Outcome, known bool) {
	switch {
	case !found:
		return Outcome{StatusCode: 404, Message: msgNotFound}, true
	case row.state == "active":
		return Outcome{Success: true, StatusCode: 200, Message: msgAlreadyActive,
			RequiresIdentityUpdate: row.riu, NeedsRegistration: row.nr}, true
	case row.state == "unavailable":
		return Outcome{StatusCode: 409, Message: msgNoLongerAvail}, true
	default:
		return internalFailure(), false
	}
}

// lostActivation decides again, by its row as it is now, a number whose
// restore read it released but could not make it active when the result
// was written: another restore made it active first (it answers Number
// already active), or an operator changed or removed the row meanwhile.
// A row released again by then answers an internal failure: this restore
// did not restore it, and trying again will.
func lostActivation(row inventoryRecord, found bool) Outcome {
	o, _ := settledRowOutcome(row, found)
	return o
}
