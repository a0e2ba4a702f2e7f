package main

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"strings"
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

// inventoryBatch is how many rows one execution of the import's statement
// writes. The cost of writing a row one execution at a time is
// database/sql's, per execution, more than SQLite's: 50 rows of 6 values
// bound in one statement measured two to three times as fast for 1,000,000
// rows (and faster than a JSON array through json_each, which SQLite must
// parse).
const inventoryBatch = 50

// insertInventorySQL inserts rows inventory rows in one statement: updating
// the numbers the user has already, or, with onlyMissing, leaving them.
func (s *Store) insertInventorySQL(rows int, onlyMissing bool) string {
	verb, conflict := "INSERT", `
	ON CONFLICT (user_id, number) DO UPDATE SET state = excluded.state, released_at = excluded.released_at,
	requires_identity_update = excluded.requires_identity_update, needs_registration = excluded.needs_registration`
	switch {
	case onlyMissing && s.d.pg:
		conflict = " ON CONFLICT (user_id, number) DO NOTHING"
	case onlyMissing:
		verb, conflict = "INSERT OR IGNORE", ""
	}
	return verb + ` INTO inventory (user_id, number, state, released_at, requires_identity_update, needs_registration)
	VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?), ", rows), ", ") + conflict
}

// importInventory writes rows for a user in one transaction. With
// onlyMissing, existing rows are left as they are (used by -dev seeding).
func (s *Store) importInventory(ctx context.Context, userID int64, rows []InventoryRow, onlyMissing bool) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := s.writeInventory(tx, userID, func(yield func(InventoryRow, error) bool) {
			for _, r := range rows {
				if !yield(r, nil) {
					return
				}
			}
		}, onlyMissing)
		return err
	})
	if err != nil {
		return fmt.Errorf("import inventory: %w", err)
	}
	return nil
}

// writeInventory writes a user's rows inside tx as rows yields them,
// inventoryBatch rows an execution of a prepared statement, so that no
// more than a batch is ever held; it returns how many it wrote. An error
// rows yields stops it. With onlyMissing, numbers the user has already are
// left as they are.
func (s *Store) writeInventory(tx *sql.Tx, userID int64, rows iter.Seq2[InventoryRow, error], onlyMissing bool) (int, error) {
	one, err := tx.Prepare(s.q(s.insertInventorySQL(1, onlyMissing)))
	if err != nil {
		return 0, err
	}
	defer one.Close()
	batch, err := tx.Prepare(s.q(s.insertInventorySQL(inventoryBatch, onlyMissing)))
	if err != nil {
		return 0, err
	}
	defer batch.Close()
	const columns = 6
	args := make([]any, 0, columns*inventoryBatch)
	n := 0
	for r, err := range rows {
		if err != nil {
			return n, err
		}
		args = append(args, userID, r.Number, r.State, ms(r.ReleasedAt), boolInt(r.RequiresIdentityUpdate), boolInt(r.NeedsRegistration))
		if len(args) == cap(args) {
			if _, err := batch.Exec(args...); err != nil {
				return n, fmt.Errorf("write inventory: %w", err)
			}
			n, args = n+inventoryBatch, args[:0]
		}
	}
	for ; len(args) > 0; args = args[columns:] {
		if _, err := one.Exec(args[:columns]...); err != nil {
			return n, fmt.Errorf("write inventory: %w", err)
		}
		n++
	}
	return n, nil
}

// inventoryPage is how many numbers deleteInventoryExcept reads at a time.
const inventoryPage = 1000

// deleteInventorySQL deletes user ?1's numbers of the JSON array ?2.
const deleteInventorySQL = "DELETE FROM inventory WHERE user_id = ? AND number IN (SELECT value FROM json_each(?))"

var _ = pgText(deleteInventorySQL, `DELETE FROM inventory WHERE user_id = $1 AND number = ANY(ARRAY(SELECT json_array_elements_text($2::json)))`)

// deleteInventoryExcept deletes, inside tx, the user's numbers that keep
// refuses, reading them a page at a time in number order; it returns how
// many it deleted.
func (s *Store) deleteInventoryExcept(tx *sql.Tx, userID int64, keep func(number string) bool) (int, error) {
	deleted := 0
	for after := ""; ; {
		rows, err := tx.Query(s.q("SELECT number FROM inventory WHERE user_id = ? AND number > ? ORDER BY number LIMIT ?"),
			userID, after, inventoryPage)
		if err != nil {
			return deleted, err
		}
		var page, gone []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return deleted, err
			}
			page = append(page, n)
			if !keep(n) {
				gone = append(gone, n)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(page) == 0 {
			return deleted, err
		}
		after = page[len(page)-1]
		if len(gone) > 0 {
			n, err := execCount(tx, s.q(deleteInventorySQL),
				userID, jsonList(gone))
			deleted += n
			if err != nil {
				return deleted, err
			}
		}
	}
}

// eachInventory yields a user's inventory in number order, one row at a
// time from the read pool.
func (s *Store) eachInventory(ctx context.Context, userID int64) iter.Seq2[InventoryRow, error] {
	return func(yield func(InventoryRow, error) bool) {
		rows, err := s.r.QueryContext(ctx, s.q(`SELECT number, state, released_at, requires_identity_update, needs_registration
			FROM inventory WHERE user_id = ? ORDER BY number`), userID)
		if err != nil {
			yield(InventoryRow{}, fmt.Errorf("read inventory: %w", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var r InventoryRow
			var released sql.NullInt64
			if err := rows.Scan(&r.Number, &r.State, &released, &r.RequiresIdentityUpdate, &r.NeedsRegistration); err != nil {
				yield(r, fmt.Errorf("read inventory: %w", err))
				return
			}
			r.ReleasedAt = fromMs(released)
			if !yield(r, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(InventoryRow{}, fmt.Errorf("read inventory: %w", err))
		}
	}
}

// inventoryRecord is what a restore reads of one inventory row.
type inventoryRecord struct {
	state      string
	releasedAt int64
	riu, nr    bool
}

// inventoryRecordsSQL reads user ?1's rows of the numbers of the JSON array ?2.
const inventoryRecordsSQL = `SELECT number, state, released_at, requires_identity_update, needs_registration
		FROM inventory WHERE user_id = ? AND number IN (SELECT value FROM json_each(?))`

var _ = pgText(inventoryRecordsSQL, `SELECT number, state, released_at, requires_identity_update, needs_registration
	FROM inventory WHERE user_id = $1 AND number = ANY(ARRAY(SELECT json_array_elements_text($2::json)))`)

// inventoryRecords reads a user's rows for the numbers, in one query, in
// its turn (see turnGate).
func (s *Store) inventoryRecords(ctx context.Context, userID int64, numbers []string) (map[string]inventoryRecord, error) {
	stmt, err := s.rq.get(inventoryRecordsSQL)
	if err != nil {
		return nil, err
	}
	give, err := s.turns.take(ctx)
	if err != nil {
		return nil, err
	}
	defer give()
	rows, err := stmt.QueryContext(ctx, userID, jsonList(numbers))
	if err != nil {
		return nil, err
	}
	return scanInventoryRecords(rows, len(numbers))
}

// scanInventoryRecords reads the rows of inventoryRecordsSQL, by number,
// and closes them.
func scanInventoryRecords(rows *sql.Rows, size int) (map[string]inventoryRecord, error) {
	defer rows.Close()
	found := make(map[string]inventoryRecord, size)
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
