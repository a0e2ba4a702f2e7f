package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// rawSQLiteRate measures batched primary-key updates on a fresh file with
// the service's pragmas: a STRICT table of rows rows, updated perTx to a
// transaction. It returns updates a second.
func rawSQLiteRate(ctx context.Context, rows, perTx int) (float64, error) {
	dir, err := os.MkdirTemp("", "bulkrestore-bench-raw-*")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", dsn(filepath.Join(dir, "raw.db"), "_txlock", "immediate"))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE raw_rows (id INTEGER PRIMARY KEY, status TEXT NOT NULL,
		attempts INTEGER NOT NULL, completed_at INTEGER) STRICT`); err != nil {
		return 0, err
	}
	batch := func(first, last int, query string, args func(id int) []any) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		stmt, err := tx.PrepareContext(ctx, query)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for id := first; id <= last; id++ {
			if _, err := stmt.ExecContext(ctx, args(id)...); err != nil {
				return err
			}
		}
		return tx.Commit()
	}
	if err := batch(1, rows, "INSERT INTO raw_rows (id, status, attempts) VALUES (?, 'pending', 0)",
		func(id int) []any { return []any{id} }); err != nil {
		return 0, fmt.Errorf("raw sqlite: fill: %w", err)
	}
	now := ms(time.Now())
	start := time.Now()
	for first := 1; first <= rows; first += perTx {
		if err := batch(first, min(first+perTx-1, rows),
			"UPDATE raw_rows SET status = 'success', attempts = attempts + 1, completed_at = ? WHERE id = ?",
			func(id int) []any { return []any{now, id} }); err != nil {
			return 0, fmt.Errorf("raw sqlite: update: %w", err)
		}
	}
	return float64(rows) / time.Since(start).Seconds(), nil
}
