package main

import (
	"context"
	"fmt"
)

// backup writes a consistent copy of the live database to path.
func (s *Store) backup(ctx context.Context, path string) error {
	if _, err := s.w.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	return nil
}

// integrityCheck runs PRAGMA integrity_check and returns its findings;
// a healthy file gives ["ok"].
func (s *Store) integrityCheck(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return nil, fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, fmt.Errorf("integrity check: %w", err)
		}
		out = append(out, line)
	}
	return out, rows.Err()
}
