package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// copyTable is a table that `bulkrestore migrate` copies: its columns, the
// first key columns of which are its primary key, which the copy pages
// through (SQLite compares row values, so a page starts after the last key
// of the one before).
type copyTable struct {
	name    string
	columns []string
	keys    int // the first keys columns are the primary key
}

// copyTables are the tables of schema version 2, parents before children:
// every row a table refers to is there before it.
var copyTables = []copyTable{
	{"users", []string{"id", "name", "key_hash", "webhook_secret", "previous_secret", "previous_until", "created_at",
		"previous_key_hash", "previous_key_until"}, 1},
	{"inventory", []string{"user_id", "number", "state", "released_at", "requires_identity_update", "needs_registration"}, 2},
	{"jobs", []string{"id", "uuid", "user_id", "status", "total", "success_count", "failure_count", "cancelled_count",
		"webhook_url", "created_at", "started_at", "completed_at", "webhook_state", "webhook_attempts", "webhook_next_at",
		"webhook_delivered_at", "webhook_error", "retry_of"}, 1},
	{"job_numbers", []string{"job_id", "position", "number", "status", "message", "status_code", "requires_identity_update",
		"needs_registration", "attempts", "next_attempt_at", "started_at", "completed_at"}, 2},
	{"attempts", []string{"job_id", "position", "attempt", "started_at", "finished_at", "status_code", "message"}, 3},
	{"webhook_attempts", []string{"job_id", "attempt", "at", "http_status", "error", "duration_ms"}, 2},
	{"idempotency_keys", []string{"user_id", "key", "body_hash", "job_id", "http_status", "response", "created_at"}, 2},
	{"sessions", []string{"id_hash", "user_id", "admin", "csrf_token", "admin_proof", "created_at", "last_seen_at",
		"expires_at"}, 1},
}

// copyBatch is how many rows one statement copies: one page of the source,
// one transaction of the target. A page is all the copy holds in memory.
const copyBatch = 1000

// copyCount is what the copy did with one table: of the rows read, those
// it inserted and those it brought up to date (a resumed copy finding
// them changed in the file since the first run).
type copyCount struct {
	table                   string
	read, inserted, updated int64
}

// errTargetHoldsData is the refusal to copy into a database that holds
// data, unless the copy is resumed.
var errTargetHoldsData = errors.New("the PostgreSQL database already holds users, jobs or inventory")

// copyInto copies every row of this SQLite store into the PostgreSQL store
// to, keeping ids and uuids, a page at a time, each page in a transaction
// of its own. A row the target has already (by primary key) is brought up
// to date where it differs, so a copy cut short is resumed by running it
// again with resume, even if a server ran on the file in between; a row
// the file no longer has (a user deleted meanwhile, a job past retention)
// cannot be told from the target's own, so then the resumed copy fails and
// says so. Without resume, a target that holds any data is refused. The
// sequences of the ids are then set past every id the SQLite file ever
// handed out, so that none is handed out again. done is told each table's
// count as it finishes.
func (s *Store) copyInto(ctx context.Context, to *Store, resume bool, done func(copyCount)) error {
	if s.pg != nil || to.pg == nil {
		return errors.New("copy: from a SQLite file into PostgreSQL only")
	}
	var holds bool
	if err := to.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM jobs)
		OR EXISTS (SELECT 1 FROM inventory)`).Scan(&holds); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	if holds && !resume {
		return errTargetHoldsData
	}
	if holds {
		if err := s.sameUsers(ctx, to); err != nil {
			return err
		}
	}
	for _, t := range copyTables {
		n, err := s.copyTable(ctx, to, t)
		if err != nil {
			return fmt.Errorf("copy %s: %w", t.name, err)
		}
		done(n)
	}
	if holds {
		if err := s.nothingBeyond(ctx, to); err != nil {
			return err
		}
	}
	for _, table := range []string{"users", "jobs"} {
		if err := s.carrySequence(ctx, to, table); err != nil {
			return fmt.Errorf("copy: id sequence of %s: %w", table, err)
		}
	}
	return nil
}

// sameUsers checks, before resuming, that every user of the target is the
// SQLite file's user of the same id: the target holds an earlier copy of
// this file, not another deployment's data.
func (s *Store) sameUsers(ctx context.Context, to *Store) error {
	rows, err := to.r.QueryContext(ctx, "SELECT id, name FROM users")
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name, here string
		if err := rows.Scan(&id, &name); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		err := s.r.QueryRowContext(ctx, "SELECT name FROM users WHERE id = ?", id).Scan(&here)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%w: user %d %q (deleted from the file since the first run, or another deployment's)", errNotThisFile, id, name)
		case err != nil:
			return fmt.Errorf("copy: %w", err)
		case here != name:
			return fmt.Errorf("%w: user %d is %q there and %q in the file (another deployment's data)", errNotThisFile, id, name, here)
		}
	}
	return rows.Err()
}

// errNotThisFile is the refusal of a resumed copy whose target holds rows
// the SQLite file does not have: deleted from the file since the first
// run, written there by a server, or another deployment's.
var errNotThisFile = errors.New("the PostgreSQL database holds rows this file does not have")

// expiring are the tables whose rows the janitor deletes once they expire
// (idempotency keys after their day, console sessions): a resumed copy
// after a server ran on the file a while finds rows of theirs gone, and
// the target's janitor drops them in turn.
var expiring = map[string]bool{"idempotency_keys": true, "sessions": true}

// nothingBeyond checks, after a resumed copy, that the target holds no row
// the file lacks: every row of the file is there (it was just copied), so
// equal counts mean equal tables. The expiring tables are not checked.
func (s *Store) nothingBeyond(ctx context.Context, to *Store) error {
	for _, t := range copyTables {
		if expiring[t.name] {
			continue
		}
		var here, there int64
		if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM "+t.name).Scan(&here); err != nil {
			return fmt.Errorf("copy: count %s: %w", t.name, err)
		}
		if err := to.r.QueryRowContext(ctx, "SELECT count(*) FROM "+t.name).Scan(&there); err != nil {
			return fmt.Errorf("copy: count %s: %w", t.name, err)
		}
		switch {
		case there > here:
			return fmt.Errorf("%w: %s has %d rows there and %d in the file (deleted from the file since the first run, or written there by a server)",
				errNotThisFile, t.name, there, here)
		case there < here: // the file is locked throughout: a row the copy missed
			return fmt.Errorf("copy: %s has %d rows there and %d in the file after the copy", t.name, there, here)
		}
	}
	return nil
}

// copyTable copies one table a page at a time.
func (s *Store) copyTable(ctx context.Context, to *Store, t copyTable) (copyCount, error) {
	count := copyCount{table: t.name}
	cols := strings.Join(t.columns, ", ")
	keys := strings.Join(t.columns[:t.keys], ", ")
	first := "SELECT " + cols + " FROM " + t.name + " ORDER BY " + keys + " LIMIT ?"
	next := "SELECT " + cols + " FROM " + t.name + " WHERE (" + keys + ") > (" +
		strings.TrimSuffix(strings.Repeat("?, ", t.keys), ", ") + ") ORDER BY " + keys + " LIMIT ?"
	var last []any
	for {
		query, args := first, []any{copyBatch}
		if last != nil {
			query, args = next, append(last, copyBatch)
		}
		page, err := s.readPage(ctx, query, args, len(t.columns))
		if err != nil {
			return count, err
		}
		if len(page) == 0 {
			return count, nil
		}
		inserted, updated, err := to.upsertPage(ctx, t, page)
		if err != nil {
			return count, err
		}
		count.read += int64(len(page))
		count.inserted += inserted
		count.updated += updated
		last = append([]any(nil), page[len(page)-1][:t.keys]...)
	}
}

// readPage reads one page of rows of width columns.
func (s *Store) readPage(ctx context.Context, query string, args []any, width int) ([][]any, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var page [][]any
	for rows.Next() {
		row := make([]any, width)
		ptrs := make([]any, width)
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		page = append(page, row)
	}
	return page, rows.Err()
}

// upsertPage writes a page of rows into PostgreSQL in one statement:
// those it lacks are inserted, those that differ are updated, the others
// are left alone. It returns how many it inserted and updated (xmax is 0
// on a row version just inserted).
func (s *Store) upsertPage(ctx context.Context, t copyTable, page [][]any) (inserted, updated int64, err error) {
	var b strings.Builder
	b.WriteString("INSERT INTO " + t.name + " AS t (" + strings.Join(t.columns, ", ") + ") VALUES ")
	args := make([]any, 0, len(page)*len(t.columns))
	for i, row := range page {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j, v := range row {
			if j > 0 {
				b.WriteString(", ")
			}
			args = append(args, v)
			b.WriteString("$" + strconv.Itoa(len(args)))
		}
		b.WriteByte(')')
	}
	values := t.columns[t.keys:]
	set, mine, theirs := make([]string, len(values)), make([]string, len(values)), make([]string, len(values))
	for i, c := range values {
		set[i], mine[i], theirs[i] = c+" = EXCLUDED."+c, "t."+c, "EXCLUDED."+c
	}
	b.WriteString(" ON CONFLICT (" + strings.Join(t.columns[:t.keys], ", ") + ") DO UPDATE SET " + strings.Join(set, ", ") +
		" WHERE (" + strings.Join(mine, ", ") + ") IS DISTINCT FROM (" + strings.Join(theirs, ", ") + ")" +
		" RETURNING xmax = 0")
	rows, err := s.w.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var fresh bool
		if err := rows.Scan(&fresh); err != nil {
			return 0, 0, err
		}
		if fresh {
			inserted++
		} else {
			updated++
		}
	}
	return inserted, updated, rows.Err()
}

// carrySequence sets the PostgreSQL sequence of table's ids past the
// largest id the SQLite file handed out (AUTOINCREMENT remembers those of
// deleted rows too), and past any id the table holds.
func (s *Store) carrySequence(ctx context.Context, to *Store, table string) error {
	var seq sql.NullInt64
	err := s.r.QueryRowContext(ctx, "SELECT seq FROM sqlite_sequence WHERE name = ?", table).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	_, err = to.w.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence($1, 'id'),
		greatest($2::bigint, (SELECT coalesce(max(id), 0) FROM `+table+`), 1))`, table, seq.Int64)
	return err
}
