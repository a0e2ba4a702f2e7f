package main

import (
	"context"
	"errors"

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

// classifyStoreError classifies a database error by SQLite's result code,
// never by its message. A stopped writer or an ended wait counts as
// transient: the work is not wrong, and the next try (or start) does it.
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
	return storePermanent
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failing.
func isUniqueViolation(err error) bool {
	code := sqliteCode(err)
	return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// isForeignKeyViolation reports whether err is a FOREIGN KEY constraint
// failing: the row referred to (a user, a job) is gone.
func isForeignKeyViolation(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
