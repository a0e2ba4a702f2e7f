package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// errWriterClosed is returned by writer.do once the writer has stopped.
var errWriterClosed = errors.New("database writer stopped")

// writer is the one goroutine that writes to the database while the server
// runs. Every write is a function run inside a transaction; the writes that
// queue up while a commit is under way are run together in the next
// transaction (group commit), each inside its own savepoint so that one
// failing write does not undo the others. One disk sync then covers many
// acknowledged writes, and no two writers ever race for the lock.
type writer struct {
	db       *sql.DB
	ops      chan *writeOp // unbuffered: a send succeeds only when run takes it
	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	maxBatch int
	log      *slog.Logger
	// observe, when set, is told how long each commit took and how many
	// writes it carried.
	observe func(d time.Duration, n int)
	// onStoreError, when set, is told the class of every database error a
	// write met (not the errors a write returns for its own reasons).
	onStoreError func(storeErrorClass)
	// failing holds the last transient database error while writes fail
	// for now (a full disk, say), nil once a commit succeeds again.
	failing atomic.Pointer[string]

	// direct, when set (PostgreSQL), runs each write in a transaction of
	// its own on the caller's goroutine, through it: the database takes
	// writers side by side and shares a disk flush between the commits
	// that wait for one, which is what the group commit does for SQLite.
	direct func(ctx context.Context, fn func(tx *sql.Tx) error) error
	// directStatement, when set (PostgreSQL), runs a write that is one
	// statement outside any transaction: the database commits it by itself,
	// without the round trips of BEGIN and COMMIT (see doStatement).
	directStatement func(ctx context.Context, fn func(ctx context.Context, db *sql.DB) error) error
	directMu        sync.RWMutex // held for reading by each direct write, for writing by stop
	closed          bool
}

// writeOp is one queued write and the channel its result goes back on.
type writeOp struct {
	fn   func(tx *sql.Tx) error
	done chan error
	// alone marks a large write (a big job's numbers): it commits in a
	// transaction of its own, without a savepoint, because the write
	// connection keeps savepoint journals in memory (temp_store) and a
	// savepoint's journal holds every page the write changes.
	alone bool
}

// newWriter starts the writer goroutine on db, which must be the store's
// single write connection.
func newWriter(db *sql.DB, log *slog.Logger) *writer {
	w := &writer{
		db:       db,
		ops:      make(chan *writeOp),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		maxBatch: 256,
		log:      log,
	}
	go w.run()
	return w
}

// newStoreWriter starts the writer of a server's store: SQLite's
// group-commit writer on its one write connection, or PostgreSQL's direct
// writes.
func newStoreWriter(s *Store, log *slog.Logger) *writer {
	if s.pg != nil {
		return newDirectWriter(s.pgWriteTx, s.pgWriteStatement, log)
	}
	return newWriter(s.w, log)
}

// newDirectWriter starts a writer that runs each write in a transaction of
// its own through txFn, and each single statement through stmtFn
// (PostgreSQL's, which run a write that lost a deadlock again).
func newDirectWriter(txFn func(ctx context.Context, fn func(tx *sql.Tx) error) error,
	stmtFn func(ctx context.Context, fn func(ctx context.Context, db *sql.DB) error) error, log *slog.Logger) *writer {
	w := &writer{direct: txFn, directStatement: stmtFn, quit: make(chan struct{}), done: make(chan struct{}), log: log}
	close(w.done)
	return w
}

// do runs fn in a write transaction and returns once that transaction has
// committed (or failed). fn may be run together with other writes, so it must
// touch only what it owns, and it must not keep tx.
func (w *writer) do(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return w.submit(ctx, &writeOp{fn: fn, done: make(chan error, 1)})
}

// doAlone is do for a large write, committed in a transaction of its own.
func (w *writer) doAlone(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return w.submit(ctx, &writeOp{fn: fn, done: make(chan error, 1), alone: true})
}

// submit hands op to the writer and waits for its fate.
func (w *writer) submit(ctx context.Context, op *writeOp) error {
	if w.direct != nil {
		return w.doDirect(ctx, op.fn)
	}
	select {
	case w.ops <- op:
	case <-w.quit:
		return errWriterClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once taken, the write runs whatever happens to ctx: wait for its fate.
	return <-op.done
}

// doDirect runs fn in a transaction of its own, once it has begun
// whatever happens to ctx (as a queued write does), and notes what the
// database said.
func (w *writer) doDirect(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return w.runDirect(ctx, func(ctx context.Context) error {
		return w.direct(ctx, func(tx *sql.Tx) error { return runGuarded(tx, fn) })
	})
}

// doStatement runs fn, a write of one statement on db, outside any
// transaction; only a direct writer (PostgreSQL's) has it. The statement
// is atomic by itself, and run again whole if it lost a deadlock: fn must
// run exactly one statement, or neither holds.
func (w *writer) doStatement(ctx context.Context, fn func(ctx context.Context, db *sql.DB) error) error {
	if w.directStatement == nil {
		return errors.New("a write outside a transaction needs PostgreSQL's writer")
	}
	return w.runDirect(ctx, func(ctx context.Context) error {
		return w.directStatement(ctx, func(ctx context.Context, db *sql.DB) error {
			return runGuarded(db, func(db *sql.DB) error { return fn(ctx, db) })
		})
	})
}

// runDirect runs a direct write, unless the writer has stopped, whatever
// happens to ctx once it has begun, and notes its health and time.
func (w *writer) runDirect(ctx context.Context, run func(ctx context.Context) error) error {
	w.directMu.RLock()
	defer w.directMu.RUnlock()
	if w.closed {
		return errWriterClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	err := run(context.WithoutCancel(ctx))
	if isDatabaseError(err) {
		w.noteHealth(err, nil)
	} else {
		w.noteHealth(nil, []error{err})
	}
	if w.observe != nil {
		w.observe(time.Since(start), 1)
	}
	return err
}

// stop ends the writer after the writes already taken have committed.
// Writes offered afterwards fail with errWriterClosed.
func (w *writer) stop() {
	w.stopOnce.Do(func() { close(w.quit) })
	<-w.done
	w.directMu.Lock()
	w.closed = true
	w.directMu.Unlock()
}

// run takes writes off the channel and commits them in groups.
func (w *writer) run() {
	defer close(w.done)
	var next *writeOp // a write taken while gathering that must go alone
	for {
		first := next
		next = nil
		if first == nil {
			select {
			case first = <-w.ops:
			case <-w.quit:
				return
			}
		}
		batch := []*writeOp{first}
	gather:
		for !first.alone && len(batch) < w.maxBatch {
			select {
			case op := <-w.ops:
				if op.alone {
					next = op
					break gather
				}
				batch = append(batch, op)
			default:
				break gather
			}
		}
		w.commit(batch)
	}
}

// commit runs one group of writes in a single transaction.
func (w *writer) commit(batch []*writeOp) {
	start := time.Now()
	results := make([]error, len(batch))
	err := func() error {
		tx, err := w.db.BeginTx(context.Background(), nil)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer tx.Rollback()
		for i, op := range batch {
			if op.alone { // the only write of its batch: its failure undoes the transaction
				if results[i] = runGuarded(tx, op.fn); results[i] != nil {
					return nil
				}
				continue
			}
			results[i] = runInSavepoint(tx, op.fn)
			if errors.Is(results[i], errSavepoint) {
				return results[i]
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	}()
	if err != nil {
		w.log.Error("database write failed", "err", err, "writes", len(batch))
	}
	w.noteHealth(err, results)
	if w.observe != nil {
		w.observe(time.Since(start), len(batch))
	}
	for i, op := range batch {
		if err != nil {
			op.done <- err
		} else {
			op.done <- results[i]
		}
	}
}

// noteHealth records what a group commit says of the database: a transient
// failure (of the commit, or of any write in it) marks the writer failing
// until a later commit goes through whole.
func (w *writer) noteHealth(commitErr error, results []error) {
	transient := ""
	for _, err := range append([]error{commitErr}, results...) {
		if !isDatabaseError(err) && !errors.Is(err, errSavepoint) {
			continue // no error, or the write's own (not found, a limit...)
		}
		class := classifyStoreError(err)
		if class == storeTransient && transient == "" {
			transient = err.Error()
		}
		if w.onStoreError != nil {
			w.onStoreError(class)
		}
	}
	if transient != "" {
		w.failing.Store(&transient)
	} else if commitErr == nil {
		w.failing.Store(nil)
	}
}

// healthy returns nil while writes go through, else the last transient
// error that made them fail.
func (w *writer) healthy() error {
	if msg := w.failing.Load(); msg != nil {
		return errors.New(*msg)
	}
	return nil
}

// errSavepoint marks a failure of the savepoint machinery itself, after which
// the transaction cannot go on.
var errSavepoint = errors.New("savepoint")

// runInSavepoint runs fn so that its failure (or panic) undoes only its own
// changes.
func runInSavepoint(tx *sql.Tx, fn func(*sql.Tx) error) (err error) {
	if _, err := tx.Exec("SAVEPOINT op"); err != nil {
		return fmt.Errorf("%w: %w", errSavepoint, err)
	}
	defer func() {
		if err != nil {
			if _, rbErr := tx.Exec("ROLLBACK TO op"); rbErr != nil {
				err = fmt.Errorf("%w: %w (after %w)", errSavepoint, rbErr, err)
				return
			}
		}
		if _, relErr := tx.Exec("RELEASE op"); relErr != nil && err == nil {
			err = fmt.Errorf("%w: %w", errSavepoint, relErr)
		}
	}()
	return runGuarded(tx, fn)
}

// runGuarded runs fn, turning a panic into its error.
func runGuarded[T any](on T, fn func(T) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write panicked: %v", p)
		}
	}()
	return fn(on)
}
