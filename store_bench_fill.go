package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// benchFill is the shape of a database the bench builds directly, without
// the API, to measure the service on a file that has grown: users, each
// with a pool of numbers of its own in its inventory, and finished jobs of
// those numbers.
type benchFill struct {
	Users    int // fill1 ... fillN, each with the API key benchFillKey(i)
	Jobs     int // finished jobs, spread over the users
	Numbers  int // recorded numbers (job_numbers rows) in all the jobs
	Distinct int // distinct numbers in all the pools: Numbers/Distinct is how often a number repeats
}

// benchFilled is a database built to a benchFill, and what a scenario
// needs to use it.
type benchFilled struct {
	shape    benchFill
	dir, db  string
	poolSize int           // numbers in each user's pool
	lastJob  string        // the job_uuid of the last job inserted
	took     time.Duration // how long the fill took
}

// The fill's fixed choices.
const (
	benchFillFirstNumber = 16000000000 // the pools' numbers are 11 digits from here
	benchFillForeign     = 0.05        // share of jobs whose numbers come from another user's pool
	benchFillRowsPerStmt = 20000       // rows a statement inserts
)

// benchFillKey is the API key of fill user i (from 1).
func benchFillKey(i int) string { return "bench-fill-key-" + strconv.Itoa(i) }

// benchFillUser is the name of fill user i (from 1).
func benchFillUser(i int) string { return "fill" + strconv.Itoa(i) }

// poolNumber is number i of user u's pool (u from 1).
func (f *benchFilled) poolNumber(u, i int) string { return strconv.FormatInt(f.poolValue(u, i), 10) }

// poolValue is number i of user u's pool, as an integer.
func (f *benchFilled) poolValue(u, i int) int64 {
	return benchFillFirstNumber + int64((u-1)*f.poolSize+i)
}

// The fill's statements: each inserts many rows from one JSON array.
const (
	// fillJobsSQL: [id, uuid, user_id, total, success, failure, at] per job.
	fillJobsSQL = `INSERT INTO jobs (id, uuid, user_id, status, total, success_count, failure_count,
		created_at, started_at, completed_at, webhook_state)
		SELECT value->>0, value->>1, value->>2, 'completed', value->>3, value->>4, value->>5,
		value->>6, value->>6, value->>6 + 1000, 'none' FROM json_each(?1)`
	// fillNumbersSQL: [job_id, position, number, outcome, at] per number;
	// outcome 0 is a success, 1 to 3 failures of the inventory backend.
	// Each field is read out of the JSON once (the rows are materialized).
	fillNumbersSQL = `WITH r AS MATERIALIZED (SELECT value->>0 AS job, value->>1 AS pos, value->>2 AS number,
		value->>3 AS outcome, value->>4 AS at FROM json_each(?1))
		INSERT INTO job_numbers (job_id, position, number, status, message, status_code, attempts, started_at, completed_at)
		SELECT job, pos, number, CASE outcome WHEN 0 THEN 'success' ELSE 'failed' END,
		CASE outcome WHEN 0 THEN 'Number restored' WHEN 1 THEN 'Error: ''number not found'''
			WHEN 2 THEN 'Error: ''number is no longer available''' ELSE 'Error: ''restore window expired''' END,
		CASE outcome WHEN 0 THEN 200 WHEN 1 THEN 404 WHEN 2 THEN 409 ELSE 410 END, 1, at, at + 1000 FROM r`
	// fillInventorySQL: user ?1's pool, ?2 to ?3, active since ?4.
	fillInventorySQL = `WITH RECURSIVE pool(n) AS (SELECT ?2 UNION ALL SELECT n + 1 FROM pool WHERE n < ?3)
		INSERT INTO inventory (user_id, number, state, released_at, requires_identity_update, needs_registration)
		SELECT ?1, CAST(n AS TEXT), 'active', ?4, n % 7 = 3, n % 11 = 3 FROM pool`
)

// fillBenchDB builds a database of shape f in a new temporary folder, with
// the real schema, and returns it; remove deletes it. It writes through
// the store's one connection in large transactions with synchronous off
// (a bench file need not survive a crash), and a job's numbers are a run
// of its user's pool, so that numbers repeat across jobs.
func fillBenchDB(ctx context.Context, f benchFill, seed uint64) (*benchFilled, error) {
	if f.Users < 1 || f.Jobs < 1 || f.Numbers < f.Jobs || f.Distinct < f.Users {
		return nil, fmt.Errorf("bench fill: impossible shape %+v", f)
	}
	dir, err := os.MkdirTemp("", "bulkrestore-bench-fill-*")
	if err != nil {
		return nil, err
	}
	out := &benchFilled{shape: f, dir: dir, db: filepath.Join(dir, "fill.db"), poolSize: f.Distinct / f.Users}
	start := time.Now()
	if err := out.fill(ctx, seed); err != nil {
		out.remove()
		return nil, fmt.Errorf("bench fill: %w", err)
	}
	out.took = time.Since(start)
	return out, nil
}

// remove deletes the database.
func (f *benchFilled) remove() { os.RemoveAll(f.dir) }

// fill writes the users, their pools and the jobs.
func (f *benchFilled) fill(ctx context.Context, seed uint64) error {
	store, err := openStoreWith(f.db, "_pragma", "synchronous(OFF)", "_pragma", "foreign_keys(OFF)",
		"_pragma", "cache_size(-262144)")
	if err != nil {
		return err
	}
	defer store.Close()
	now := time.Now()
	released := ms(now.Add(-48 * time.Hour))
	for u := 1; u <= f.shape.Users; u++ {
		if err := store.createUser(ctx, benchFillUser(u), benchFillKey(u), newWebhookSecret()); err != nil {
			return err
		}
		first, last := f.poolValue(u, 0), f.poolValue(u, f.poolSize-1)
		err := store.writeTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(fillInventorySQL, u, first, last, released)
			return err
		})
		if err != nil {
			return fmt.Errorf("inventory: %w", err)
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ids := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1})
	w := &fillWriter{db: store.w, ctx: ctx}
	defer w.rollback()
	// Jobs are spread over the last 25 days, oldest first (inside the
	// default retention of 30 days, so that a server on the file has nothing
	// to delete while the bench measures it); a job's numbers
	// were all recorded a second after it was created.
	span := int64(25 * 24 * time.Hour / time.Millisecond)
	left := f.shape.Numbers
	var outcomes []byte
	for j := 1; j <= f.shape.Jobs; j++ {
		jobsLeft := f.shape.Jobs - j + 1
		size := left
		if jobsLeft > 1 { // sizes spread as an exponential around the mean left, at least one each
			mean := float64(left) / float64(jobsLeft)
			size = min(max(1, int(1+rng.ExpFloat64()*(mean-1))), left-(jobsLeft-1), f.poolSize)
		}
		if size > f.poolSize {
			return fmt.Errorf("a job of %d numbers from a pool of %d: give more distinct numbers", size, f.poolSize)
		}
		left -= size
		owner := 1 + rng.IntN(f.shape.Users)
		pool := owner
		if rng.Float64() < benchFillForeign {
			pool = 1 + rng.IntN(f.shape.Users)
		}
		id, err := uuid.NewRandomFromReader(ids)
		if err != nil {
			return err
		}
		at := ms(now) - span + span*int64(j)/int64(f.shape.Jobs)
		// 90% restored; 6% not found, 3% unavailable, 1% expired.
		outcomes, success := outcomes[:0], 0
		for range size {
			var o byte
			switch r := rng.IntN(100); {
			case r >= 99:
				o = 3
			case r >= 96:
				o = 2
			case r >= 90:
				o = 1
			default:
				success++
			}
			outcomes = append(outcomes, o)
		}
		w.job(j, id.String(), owner, size, success, at)
		from := rng.IntN(f.poolSize)
		for p, o := range outcomes {
			if err := w.number(j, p, f.poolNumber(pool, (from+p)%f.poolSize), o, at); err != nil {
				return err
			}
		}
		f.lastJob = id.String()
	}
	return w.commit()
}

// fillWriter gathers the fill's rows as JSON arrays and inserts them a
// statement's worth at a time, jobs before the numbers that refer to
// them, in transactions of many statements.
type fillWriter struct {
	db             *sql.DB
	ctx            context.Context
	tx             *sql.Tx
	jobs, numbers  []byte // JSON arrays being built, without their closing ]
	nJobs, nNumber int    // rows in them
	inTx           int    // rows inserted by the open transaction
}

// job adds a job row: [id, uuid, user, total, success, failure, at].
func (w *fillWriter) job(id int, uuid string, user, total, success int, at int64) {
	w.jobs = appendJSONRow(w.jobs, w.nJobs, func(b []byte) []byte {
		b = strconv.AppendInt(append(b, '['), int64(id), 10)
		b = strconv.AppendQuote(append(b, ','), uuid)
		for _, v := range []int64{int64(user), int64(total), int64(success), int64(total - success), at} {
			b = strconv.AppendInt(append(b, ','), v, 10)
		}
		return append(b, ']')
	})
	w.nJobs++
}

// number adds a number row, [job, position, number, outcome, at], and
// inserts what has gathered once it makes a statement's worth.
func (w *fillWriter) number(job, pos int, number string, outcome byte, at int64) error {
	w.numbers = appendJSONRow(w.numbers, w.nNumber, func(b []byte) []byte {
		b = strconv.AppendInt(append(b, '['), int64(job), 10)
		b = strconv.AppendInt(append(b, ','), int64(pos), 10)
		b = strconv.AppendQuote(append(b, ','), number)
		b = strconv.AppendInt(append(b, ','), int64(outcome), 10)
		b = strconv.AppendInt(append(b, ','), at, 10)
		return append(b, ']')
	})
	w.nNumber++
	if w.nNumber >= benchFillRowsPerStmt {
		return w.flush()
	}
	return nil
}

// appendJSONRow appends a row to a JSON array of n rows so far.
func appendJSONRow(b []byte, n int, row func([]byte) []byte) []byte {
	if n == 0 {
		b = append(b[:0], '[')
	} else {
		b = append(b, ',')
	}
	return row(b)
}

// flush inserts what has gathered, and commits every million rows or so.
func (w *fillWriter) flush() error {
	if w.tx == nil {
		tx, err := w.db.BeginTx(w.ctx, nil)
		if err != nil {
			return err
		}
		w.tx = tx
	}
	if w.nJobs > 0 {
		if _, err := w.tx.ExecContext(w.ctx, fillJobsSQL, string(append(w.jobs, ']'))); err != nil {
			return fmt.Errorf("jobs: %w", err)
		}
	}
	if w.nNumber > 0 {
		if _, err := w.tx.ExecContext(w.ctx, fillNumbersSQL, string(append(w.numbers, ']'))); err != nil {
			return fmt.Errorf("numbers: %w", err)
		}
	}
	w.inTx += w.nJobs + w.nNumber
	w.nJobs, w.nNumber = 0, 0
	if w.inTx >= 1_000_000 {
		return w.commit()
	}
	return nil
}

// commit inserts what is left and commits.
func (w *fillWriter) commit() error {
	if w.nJobs > 0 || w.nNumber > 0 {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if w.tx == nil {
		return nil
	}
	err := w.tx.Commit()
	w.tx, w.inTx = nil, 0
	return err
}

// rollback drops a transaction left open by a failure.
func (w *fillWriter) rollback() {
	if w.tx != nil {
		w.tx.Rollback()
	}
}
