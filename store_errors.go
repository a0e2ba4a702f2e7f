package main

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// storeErrorClass says what a failed database write means for the work
// that tried it.
type storeErrorClass int

// The classes of classifyStoreError.
const (
	// storeOK: no error.
	storeOK storeErrorClass = iota
	// storeTransient: the database cannot take the write now (busy, full
	// disk, I/O error, out of memory); the same write may succeed later.
	storeTransient
	// storePermanent: this write can never succeed as it is (a constraint,
	// a corrupt page, a statement error); trying it again only repeats it.
	storePermanent
)

// String names the class for logs and metric labels.
func (c storeErrorClass) String() string {
	switch c {
	case storeOK:
		return "ok"
	case storeTransient:
		return "transient"
	default:
		return "permanent"
	}
}

// transientSQLiteCodes are the primary result codes of a database that
// may take the same write later.
var transientSQLiteCodes = map[int]bool{
	sqlite3.SQLITE_BUSY:     true,
	sqlite3.SQLITE_LOCKED:   true,
	sqlite3.SQLITE_NOMEM:    true,
	sqlite3.SQLITE_IOERR:    true,
	sqlite3.SQLITE_FULL:     true,
	sqlite3.SQLITE_CANTOPEN: true,
	sqlite3.SQLITE_PROTOCOL: true,
}

// sqliteCode returns the extended result code of the SQLite error in
// err's chain, or 0 when there is none.
func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// classifyStoreError classifies a database error by SQLite's result code
// or PostgreSQL's SQLSTATE, never by its message. A stopped writer or an
// ended wait counts as transient: the work is not wrong, and the next try
// (or start) does it. So does a connection to PostgreSQL that failed or
// broke: the pool opens a new one for the next try.
func classifyStoreError(err error) storeErrorClass {
	switch {
	case err == nil:
		return storeOK
	case errors.Is(err, errWriterClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return storeTransient
	}
	if code := sqliteCode(err); code != 0 && transientSQLiteCodes[code&0xff] {
		return storeTransient
	}
	if code := pgCode(err); code != "" && transientPGCode(code) || pgConnectionLost(err) {
		return storeTransient
	}
	return storePermanent
}

// pgCode returns the SQLSTATE of the PostgreSQL error in err's chain, or ""
// when there is none.
func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// transientPGCode reports whether a SQLSTATE means the database may take
// the same work later: a connection exception (class 08), a serialization
// failure or deadlock (40001, 40P01), insufficient resources (class 53: a
// full disk, too many connections), or a server shutting down or
// restarting (57P01 to 57P03).
func transientPGCode(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"):
		return true
	}
	switch code {
	case "40001", "40P01", "57P01", "57P02", "57P03":
		return true
	}
	return false
}

// isPGConflict reports whether err is a transaction that lost a deadlock
// or a serialization conflict: running it again may well succeed.
func isPGConflict(err error) bool {
	code := pgCode(err)
	return code == "40001" || code == "40P01"
}

// pgConnectionLost reports whether err is a connection to PostgreSQL that
// could not be made or broke (the server down or restarting), which has no
// SQLSTATE.
func pgConnectionLost(err error) bool {
	var connect *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connect) || errors.As(err, &netErr) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// isDatabaseError reports whether err came from the database (SQLite or
// PostgreSQL) rather than from a write's own reasons (not found, a limit).
func isDatabaseError(err error) bool {
	return sqliteCode(err) != 0 || pgCode(err) != "" || (err != nil && pgConnectionLost(err))
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failing.
func isUniqueViolation(err error) bool {
	code := sqliteCode(err)
	return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || pgCode(err) == "23505"
}

// isForeignKeyViolation reports whether err is a FOREIGN KEY constraint
// failing: the row referred to (a user, a job) is gone.
func isForeignKeyViolation(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY || pgCode(err) == "23503"
}
