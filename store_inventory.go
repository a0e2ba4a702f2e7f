package main

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// InventoryRow is one number of a user's inventory.
type InventoryRow struct {
	Number                 string
	State                  string
	ReleasedAt             time.Time
	RequiresIdentityUpdate bool
	NeedsRegistration      bool
}

// upsertInventorySQL inserts or replaces one inventory row.
const upsertInventorySQL = `INSERT INTO inventory
	(user_id, number, state, released_at, requires_identity_update, needs_registration)
	VALUES (?, ?, ?, ?, ?, ?)
	ON CONFLICT (user_id, number) DO UPDATE SET state = excluded.state,
	released_at = excluded.released_at,
	requires_identity_update = excluded.requires_identity_update,
	needs_registration = excluded.needs_registration`

// importInventory writes rows for a user in one transaction. With
// onlyMissing, existing rows are left as they are (used by -dev seeding).
func (s *Store) importInventory(ctx context.Context, userID int64, rows []InventoryRow, onlyMissing bool) error {
	query := upsertInventorySQL
	if onlyMissing {
		query = `INSERT OR IGNORE INTO inventory
			(user_id, number, state, released_at, requires_identity_update, needs_registration)
			VALUES (?, ?, ?, ?, ?, ?)`
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.Prepare(query)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range rows {
			if _, err := stmt.Exec(userID, r.Number, r.State, ms(r.ReleasedAt),
				boolInt(r.RequiresIdentityUpdate), boolInt(r.NeedsRegistration)); err != nil {
				return fmt.Errorf("%s: %w", r.Number, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import inventory: %w", err)
	}
	return nil
}
