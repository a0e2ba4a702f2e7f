package main

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"time"
)

// inventoryBackend restores numbers from the users' own inventory, kept in
// the same SQLite file. It only reads; the change of state from released to
// active is made by the writer in the transaction that records the outcome
// (Outcome.Activate), so the result and the inventory can never disagree.
type inventoryBackend struct {
	db     *sql.DB // read pool
	window time.Duration
	now    func() time.Time
	log    *slog.Logger
}

// Inventory result messages, as the contract words them.
const (
	msgRestored        = "Number restored"
	msgAlreadyActive   = "Number already active"
	msgNotFound        = "Error: 'number not found'"
	msgWindowExpired   = "Error: 'restore window expired'"
	msgNoLongerAvail   = "Error: 'number is no longer available'"
	inventoryLookupSQL = `SELECT state, released_at, requires_identity_update, needs_registration
		FROM inventory WHERE user_id = ? AND number = ?`
)

// Restore implements Restorer with the table of the contract's section 3.
func (b *inventoryBackend) Restore(ctx context.Context, userID int64, number string) Outcome {
	var state string
	var releasedAt int64
	var riu, nr bool
	err := b.db.QueryRowContext(ctx, inventoryLookupSQL, userID, number).Scan(&state, &releasedAt, &riu, &nr)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Outcome{StatusCode: 404, Message: msgNotFound}
	case err != nil:
		b.log.Error("inventory lookup failed", "number", number, "err", err)
		return internalFailure()
	}
	flags := Outcome{Success: true, StatusCode: 200, RequiresIdentityUpdate: riu, NeedsRegistration: nr}
	switch state {
	case "active":
		flags.Message = msgAlreadyActive
		return flags
	case "released":
		if b.now().Sub(time.UnixMilli(releasedAt)) > b.window {
			return Outcome{StatusCode: 410, Message: msgWindowExpired}
		}
		flags.Message = msgRestored
		flags.Activate = true
		return flags
	case "unavailable":
		return Outcome{StatusCode: 409, Message: msgNoLongerAvail}
	default:
		b.log.Error("inventory row has unknown state", "number", number, "state", state)
		return internalFailure()
	}
}

// activateInventory marks a released number active; the writer calls it in
// the transaction that records a successful restore.
func activateInventory(tx *sql.Tx, userID int64, number string) error {
	_, err := tx.Exec("UPDATE inventory SET state = 'active' WHERE user_id = ? AND number = ? AND state = 'released'", userID, number)
	return err
}
