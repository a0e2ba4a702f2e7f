package main

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

//go:embed schema_pg_v1.sql
var schemaPGV1 string

//go:embed schema_pg_v2.sql
var schemaPGV2 string

// migrationsPG are PostgreSQL's schema steps, one for each of SQLite's
// (migrations) with the same number: migration i brings the database to
// version i+1 in its schema_version table.
var migrationsPG = []string{schemaPGV1, schemaPGV2}

// isPostgresURL reports whether a -db value names a PostgreSQL database
// rather than a SQLite file.
func isPostgresURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// pgState is what a PostgreSQL store knows beyond its pool: where the
// database is (for the listener's own connection) and who this process is
// among the instances sharing it.
type pgState struct {
	config   *pgx.ConnConfig
	instance string        // this process's id, the claimed_by of its claims
	lease    time.Duration // how long a claim holds without renewal
}

// pgPoolSize bounds one process's connections: the reads and writes of the
// API, the claims of the dispatcher and the recorder's writes share them.
const pgPoolSize = 16

// Advisory lock keys (pg_advisory_lock takes a bigint): the schema
// migration, and the retention sweep (see queueEngine.exclusively).
// pgLiveLockSpace is the first of two int keys (a space of its own in
// pg_locks): the instances connected now, one lock each, the second key the
// hash of its id, held shared by its listening connection for as long as it
// lives (holdLiveLock; othersHoldingSQL reads them).
const (
	pgMigrationLock = 0x62756c6b7265_01 // "bulkre" 01
	retentionLock   = 0x62756c6b7265_02
	pgLiveLockSpace = 0x62726c76 // "brlv"
)

// openPGStore connects to the PostgreSQL database at url and brings its
// schema up to date. Claims made through it are held for lease.
func openPGStore(ctx context.Context, url string, lease time.Duration) (*Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", redactURLError(err))
	}
	instance := uuid.NewString()
	// Every connection says which instance it serves, so that a statement
	// can compare claimed_by with current_setting('bulkrestore.instance').
	cfg.RuntimeParams["application_name"] = "bulkrestore"
	cfg.RuntimeParams["bulkrestore.instance"] = instance
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(pgPoolSize)
	db.SetMaxIdleConns(pgPoolSize)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{w: db, r: db, d: pgDialect, now: time.Now,
		pg:    &pgState{config: cfg, instance: instance, lease: lease},
		turns: newTurnGate(pgPoolSize/2, pgTurnPatience)}
	s.write = s.pgWriteTx
	s.eng = pgQueue{s}
	if err := s.migratePG(ctx); err != nil {
		db.Close()
		return nil, err
	}
	s.rq = newStmtCache(db, pgDialect)
	s.wq = newStmtCache(db, pgDialect)
	return s, nil
}

// redactDB is a -db value fit for a log line: a PostgreSQL URL's
// password is replaced by xxxxx.
func redactDB(db string) string {
	if !isPostgresURL(db) {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "postgres://(unparsable URL not shown)"
	}
	return u.Redacted()
}

// spoolDir is where an inventory import keeps its copy of the CSV: the
// SQLite file's folder (which the service may write to, and which is not
// memory as /tmp may be), or the system's temporary folder beside a
// PostgreSQL database.
func spoolDir(db string) string {
	if isPostgresURL(db) {
		return os.TempDir()
	}
	return filepath.Dir(db)
}

// redactURLError keeps a database URL's password out of an error message:
// pgx quotes the string it could not parse.
func redactURLError(err error) error {
	return errors.New(strings.SplitN(err.Error(), ":", 2)[0] + ": cannot parse the URL (not shown: it may hold a password)")
}

// migratePG applies the migrations the database has not seen, each in a
// transaction together with its version, while holding an advisory lock:
// of several instances starting at once, one migrates and the others wait
// for it, then find nothing left to do.
func (s *Store) migratePG(ctx context.Context) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", pgMigrationLock); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", pgMigrationLock)
	if _, err := conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var version int
	if err := conn.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrationsPG) {
		return fmt.Errorf("database schema version %d is newer than this binary knows (%d)", version, len(migrationsPG))
	}
	for v := version; v < len(migrationsPG); v++ {
		err := inTxOn(ctx, conn, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrationsPG[v]); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM schema_version"); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO schema_version (version) VALUES ($1)", v+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate to %d: %w", v+1, err)
		}
	}
	return nil
}

// txBeginner is what begins a transaction: a pool (*sql.DB) or one of its
// connections (*sql.Conn).
type txBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// inTxOn runs fn in a transaction begun on db, and commits it.
func inTxOn(ctx context.Context, db txBeginner, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// pgWriteTries bounds how often a write that lost a deadlock or a
// serialization conflict is run again.
const pgWriteTries = 5

// pgWriteTx runs fn in a transaction of its own: the write path of a
// PostgreSQL store outside a server (and, through the writer, inside one).
// PostgreSQL lets writers run side by side, so there is no lock to wait
// for; a transaction that lost a deadlock or a serialization conflict to
// another (perhaps in another instance) is run again, a few times.
func (s *Store) pgWriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.pgRetryConflicts(ctx, func() error { return s.txOnce(ctx, fn) })
}

// pgWriteStatement runs fn, a write of a single statement on the pool, as
// pgWriteTx runs a transaction: PostgreSQL commits the statement by itself.
// Each try waits for its turn (the synchronous write is on the request
// path), and hands it back before any backoff.
func (s *Store) pgWriteStatement(ctx context.Context, fn func(ctx context.Context, db *sql.DB) error) error {
	return s.pgRetryConflicts(ctx, func() error {
		give, err := s.turns.take(ctx)
		if err != nil {
			return err
		}
		defer give()
		return fn(ctx, s.w)
	})
}

// pgRetryConflicts runs write, and again, a few times, while it loses a
// deadlock or a serialization conflict.
func (s *Store) pgRetryConflicts(ctx context.Context, write func() error) error {
	for try := 1; ; try++ {
		err := write()
		if !isPGConflict(err) || try == pgWriteTries {
			return err
		}
		if !sleepUntil(ctx, nil, time.Now().Add(backoff(time.Millisecond, 50*time.Millisecond, try))) {
			return err
		}
	}
}

// txOnce runs fn in one transaction on the write pool.
func (s *Store) txOnce(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return inTxOn(ctx, s.w, fn)
}

// notify wakes, when tx commits, the instances listening on channel
// (PostgreSQL's NOTIFY); SQLite has one server per file, which wakes
// itself.
func (s *Store) notify(tx *sql.Tx, channel string) error {
	if s.pg == nil {
		return nil
	}
	_, err := tx.Exec("SELECT pg_notify($1, '')", channel)
	return err
}
