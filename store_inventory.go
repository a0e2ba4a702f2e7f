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

// inventoryRecord is what a restore reads of one inventory row.
type inventoryRecord struct {
	state      string
	releasedAt int64
	riu, nr    bool
}

// inventoryRecords reads a user's rows for the numbers, in one query.
func (s *Store) inventoryRecords(ctx context.Context, userID int64, numbers []string) (map[string]inventoryRecord, error) {
	stmt, err := s.rq.get(`SELECT number, state, released_at, requires_identity_update, needs_registration
		FROM inventory WHERE user_id = ? AND number IN (SELECT value FROM json_each(?))`)
	if err != nil {
		return nil, err
	}
	rows, err := stmt.QueryContext(ctx, userID, jsonList(numbers))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := make(map[string]inventoryRecord, len(numbers))
	for rows.Next() {
		var n string
		var r inventoryRecord
		if err := rows.Scan(&n, &r.state, &r.releasedAt, &r.riu, &r.nr); err != nil {
			return nil, err
		}
		found[n] = r
	}
	return found, rows.Err()
}
