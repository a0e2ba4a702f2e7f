package main

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"sync"
	"time"

	_ "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed schema.sql
var schemaV1 string

//go:embed schema_v2.sql
var schemaV2 string

// migrations lists the schema steps in order; migration i brings the file to
// PRAGMA user_version i+1. A release that changes the schema appends here.
var migrations = []string{schemaV1, schemaV2}

// errNotFound is returned by lookups of a row that does not exist (or that
// belongs to another user, which callers must not be able to tell apart).
var errNotFound = errors.New("not found")

// Store owns the SQLite file: one single-connection pool for every write,
// taken in turn by the group-commit writer and the admin commands, and a
// read pool for everything else.
type Store struct {
	w  *sql.DB // the only write connection
	r  *sql.DB // read-only pool
	wq *stmtCache
	rq *stmtCache
	d  *dialect // the SQL text of the database underneath
	pg *pgState // PostgreSQL's; nil for SQLite
	// turns orders the request path's short statements on PostgreSQL (see
	// turnGate); nil, which admits everyone at once, for SQLite.
	turns *turnGate
	// eng is how the queue and the outbox claim work in this database.
	eng queueEngine
	now func() time.Time
	// ckpt, when set, checkpoints the log in the background; then the write
	// connection does not (see openServerStore).
	ckpt *checkpointer
	// write runs fn in a write transaction: writeTx for the admin
	// commands, the server's group-commit writer while a server runs, so
	// that the admin API and the CLI share every write.
	write func(ctx context.Context, fn func(tx *sql.Tx) error) error
}

// adminBusyWait bounds how long an admin command waits for the write lock
// beside a running server.
const adminBusyWait = time.Minute

// writeTx runs fn in a write transaction of its own, for the admin
// commands, which may run beside a server whose writer is rarely idle.
// BEGIN IMMEDIATE is tried again every 50µs instead of through SQLite's
// busy handler, whose waits grow to 100ms: beside a writer that commits
// back to back, the lock is free only for microseconds between commits, and
// that handler was measured to wait up to 9 seconds for such a moment,
// where trying this often gets in within milliseconds.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeout.Milliseconds()))
	deadline := time.Now().Add(adminBusyWait)
	for {
		tx, err := conn.BeginTx(ctx, nil)
		if err == nil {
			defer tx.Rollback()
			if err := fn(tx); err != nil {
				return err
			}
			return tx.Commit()
		}
		if sqliteCode(err)&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) || !sleepUntil(ctx, nil, time.Now().Add(50*time.Microsecond)) {
			return err
		}
	}
}

// busyTimeout is how long a connection waits for a lock SQLite's way.
const busyTimeout = 10 * time.Second

// dsn builds a modernc SQLite DSN with the pragmas every connection needs.
func dsn(path string, extra ...string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	for i := 0; i+1 < len(extra); i += 2 {
		q.Add(extra[i], extra[i+1])
	}
	return "file:" + path + "?" + q.Encode()
}

// openStore opens the database that db names, a PostgreSQL URL or a
// SQLite file (created if needed, mode 0600), and brings its schema up to
// date.
func openStore(db string) (*Store, error) {
	if isPostgresURL(db) {
		return openPGStore(context.Background(), db, defaultLease)
	}
	return openStoreWith(db)
}

// openStoreWith is openStore with more DSN parameters for the write
// connection (name, value, name, value...).
func openStoreWith(path string, writerExtra ...string) (*Store, error) {
	if err := ensureDBFile(path); err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", dsn(path, append([]string{"_txlock", "immediate"}, writerExtra...)...))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, d: sqliteDialect, now: time.Now}
	s.eng = sqliteQueue{s}
	s.write = s.writeTx
	var mode string
	if err := w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if mode != "wal" {
		w.Close()
		return nil, fmt.Errorf("open %s: journal_mode is %q, want wal", path, mode)
	}
	if err := s.migrate(); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn(path, "_pragma", "query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	n := max(4, 2*runtime.NumCPU())
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s.r = r
	s.rq = newStmtCache(r, s.d)
	if s.wq, err = newFixedStmtCache(w, s.d, writeStatements...); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the checkpointer, if any, and closes the pools.
func (s *Store) Close() error {
	var ckptErr error
	if s.ckpt != nil {
		s.ckpt.stop()
		ckptErr = s.ckpt.db.Close()
	}
	if s.wq != nil {
		s.wq.close()
	}
	s.rq.close()
	if s.pg != nil {
		return s.w.Close() // one pool reads and writes
	}
	return errors.Join(s.r.Close(), s.w.Close(), ckptErr)
}

// defaultLease is -lease's default: how long a PostgreSQL claim holds
// without renewal.
const defaultLease = 30 * time.Second

// openServerStore opens the store for the server: as openStore, plus, for
// SQLite, the background checkpointer, with automatic checkpoints of the
// write connection turned off so that commits never wait for one, and the
// write connection's savepoint journals kept in memory (on disk, each group
// commit's savepoints wrote a temporary file: 14% of a synchronous run's
// CPU; see writeOp.alone for the writes too large for that). The claims of
// a PostgreSQL server hold for lease.
func openServerStore(path string, lease time.Duration, log *slog.Logger) (*Store, error) {
	if isPostgresURL(path) {
		return openPGStore(context.Background(), path, lease)
	}
	s, err := openStoreWith(path, "_pragma", "wal_autocheckpoint(0)", "_pragma", "temp_store(MEMORY)")
	if err != nil {
		return nil, err
	}
	c, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	c.SetMaxOpenConns(1)
	s.ckpt = newCheckpointer(c, log)
	return s, nil
}

// migrate applies the migrations the file has not seen, each in a transaction
// together with the version record. Foreign keys are off while they run, as
// rebuilding a table requires (dropping the old one must not cascade), and
// checked before each commit.
func (s *Store) migrate() error {
	var version int
	if err := s.w.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this binary knows (%d)", version, len(migrations))
	}
	if version == len(migrations) {
		return nil
	}
	// The write pool has one connection, so the pragma reaches the
	// connection the migrations run on (it is a no-op inside a transaction).
	if _, err := s.w.Exec("PRAGMA foreign_keys = OFF"); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer s.w.Exec("PRAGMA foreign_keys = ON")
	for v := version; v < len(migrations); v++ {
		if err := s.migrateTo(v+1, migrations[v]); err != nil {
			return fmt.Errorf("migrate to %d: %w", v+1, err)
		}
	}
	return nil
}

// migrateTo runs one migration and records its version, in one
// transaction that commits only if every foreign key still holds.
func (s *Store) migrateTo(version int, script string) error {
	tx, err := s.w.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(script); err != nil {
		return err
	}
	rows, err := tx.Query("PRAGMA foreign_key_check")
	if err != nil {
		return err
	}
	broken := rows.Next()
	rows.Close()
	if broken {
		return errors.New("foreign key check failed")
	}
	if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", version)); err != nil {
		return err
	}
	return tx.Commit()
}

// ping reports whether the database answers a query.
func (s *Store) ping(ctx context.Context) error {
	var one int
	return s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// ms converts a time to the stored form: milliseconds since the epoch.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMs converts a stored timestamp back; a NULL becomes the zero time.
func fromMs(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// boolInt stores a flag as 0/1.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// stmtCache keeps statements prepared on one database handle, so that the
// hot queries are parsed once and not on every call (parsing a statement
// costs more than running it, with modernc SQLite).
type stmtCache struct {
	db *sql.DB
	d  *dialect // statements are given in SQLite's dialect and prepared in db's
	mu sync.Mutex
	m  map[string]*sql.Stmt
	// fixed: only the statements prepared up front are served. The write
	// handle has one connection, held by the transaction that would ask for
	// a new statement, so preparing one then would wait for ever.
	fixed bool
}

// writeStatements are the statements the write connection keeps prepared.
// Besides the job inserts, they are the recorder's statements and the
// settle rule: preparing settleJobSQL alone once took a quarter of the
// writer's time.
var writeStatements = []string{insertJobSQL, insertQueuedNumbersSQL, insertCompletedNumbersSQL,
	insertAttemptGroupSQL, activateManySQL, savepointActivationSQL, releaseActivationSQL, settleJobSQL, liveJobsSQL, finalGroupSQL}

// newStmtCache builds a cache for db that prepares statements as they are
// first asked for.
func newStmtCache(db *sql.DB, d *dialect) *stmtCache {
	return &stmtCache{db: db, d: d, m: map[string]*sql.Stmt{}}
}

// newFixedStmtCache builds a cache for db that prepares queries now and
// serves only those.
func newFixedStmtCache(db *sql.DB, d *dialect, queries ...string) (*stmtCache, error) {
	c := &stmtCache{db: db, d: d, m: map[string]*sql.Stmt{}}
	for _, q := range queries {
		if _, err := c.get(q); err != nil {
			c.close()
			return nil, fmt.Errorf("prepare: %w", err)
		}
	}
	c.fixed = true
	return c, nil
}

// get returns the prepared statement for query, preparing it once.
func (c *stmtCache) get(query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[query]; ok {
		return s, nil
	}
	if c.fixed {
		return nil, fmt.Errorf("statement not prepared up front: %.60s", query)
	}
	s, err := c.db.Prepare(c.d.q(query))
	if err != nil {
		return nil, err
	}
	c.m[query] = s
	return s, nil
}

// exec runs a cached statement inside tx. On PostgreSQL the statement
// runs as it is: pgx prepares and caches it on the transaction's
// connection, where preparing it on the pool would take a second
// connection while the transaction holds one (with every connection held by
// a transaction, each would wait for ever).
func (c *stmtCache) exec(tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if c.d.pg {
		return tx.Exec(c.d.q(query), args...)
	}
	s, err := c.get(query)
	if err != nil {
		return nil, err
	}
	return tx.Stmt(s).Exec(args...)
}

// queryTx runs a cached query inside tx, as exec does.
func (c *stmtCache) queryTx(tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if c.d.pg {
		return tx.Query(c.d.q(query), args...)
	}
	s, err := c.get(query)
	if err != nil {
		return nil, err
	}
	return tx.Stmt(s).Query(args...)
}

// queryRowTx runs a cached single-row query inside tx, as exec does.
func (c *stmtCache) queryRowTx(tx *sql.Tx, query string, args ...any) *sql.Row {
	if !c.d.pg { // (never get on PostgreSQL: see exec)
		if s, err := c.get(query); err == nil {
			return tx.Stmt(s).QueryRow(args...)
		}
	}
	// Should the statement not be cached, the caller meets any error
	// where it scans, as with QueryRow.
	return tx.QueryRow(c.d.q(query), args...)
}

// queryRow runs a cached single-row query outside any transaction.
func (c *stmtCache) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := c.get(query)
	if err != nil {
		// Let the caller meet the error where it scans, as with QueryRow.
		return c.db.QueryRowContext(ctx, c.d.q(query), args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// close releases every statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.m {
		s.Close()
	}
}
