package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// hashKey is the stored form of an API key. Keys are 128+ random bits, so a
// plain SHA-256 is enough and costs microseconds to verify.
func hashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// randomToken returns n random bytes in the given encoding.
func randomToken(n int, encode func([]byte) string) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return encode(b)
}

// newAPIKey returns a fresh 192-bit API key.
func newAPIKey() string { return randomToken(24, hex.EncodeToString) }

// newWebhookSecret returns a fresh Standard Webhooks secret.
func newWebhookSecret() string {
	return "whsec_" + randomToken(32, base64.StdEncoding.EncodeToString)
}

// User is an API account.
type User struct {
	ID            int64
	Name          string
	WebhookSecret string
	CreatedAt     time.Time
}

// errUserExists is returned when adding a user whose name is taken.
var errUserExists = errors.New("user already exists")

// createUser stores a user with the given key (hashed) and secret.
func (s *Store) createUser(ctx context.Context, name, key, secret string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(s.q("INSERT INTO users (name, key_hash, webhook_secret, created_at) VALUES (?, ?, ?, ?)"),
			name, hashKey(key), secret, ms(s.now()))
		return err
	})
	if isUniqueViolation(err) {
		return errUserExists
	}
	return err
}

// listUsers returns every user, by name.
func (s *Store) listUsers(ctx context.Context) ([]User, error) {
	rows, err := s.r.QueryContext(ctx, s.q("SELECT id, name, webhook_secret, created_at FROM users ORDER BY name"))
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var users []User
	for rows.Next() {
		var u User
		var created sql.NullInt64
		if err := rows.Scan(&u.ID, &u.Name, &u.WebhookSecret, &created); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		u.CreatedAt = fromMs(created)
		users = append(users, u)
	}
	return users, rows.Err()
}

// purgePace is how a user's deletion spreads its work: how many numbers
// (of jobs or of inventory) a step removes, each step a write of its own,
// and how long it waits after each.
type purgePace struct {
	step  int
	pause time.Duration
}

// Inside a server the steps go through the writer, which shares its
// commits fairly with every other write: steps of about 15 ms, no pause.
// The CLI writes on a connection of its own, beside a server whose writer
// waits for the lock in SQLite's busy handler, asleep up to 100 ms at a
// time; steps back to back would keep it out for the whole deletion (it
// gave up after its 10 s), so each step is followed by a pause longer than
// that sleep, and the steps are larger to make up for it.
var (
	serverPurgePace = purgePace{step: 5000}
	cliPurgePace    = purgePace{step: 25000, pause: 110 * time.Millisecond}
)

// deleteUser removes a user with its jobs, their results and its
// inventory, and returns the user's id; errNotFound if there is none.
// A first write locks the user out and stops its work: its key stops
// working, its unfinished jobs become cancelled and no webhook of its jobs
// is sent any more; stop, when set, is called inside that write with the
// jobs it stopped (the server stops them in its workers' registry there,
// and tells the other instances), and its error fails the write.
// Then the rows go in steps, as pace says, the user row last. A deletion
// cut short (the process stopped) leaves the user locked out; deleting it
// again finishes the work.
func (s *Store) deleteUser(ctx context.Context, name string, stop func(tx *sql.Tx, jobIDs []int64) error, pace purgePace) (int64, error) {
	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		var stopped []int64
		var err error
		id, stopped, err = s.lockOutUser(tx, name, s.now())
		if err == nil && stop != nil {
			err = stop(tx, stopped)
		}
		return err
	})
	if errors.Is(err, errNotFound) {
		return 0, err
	}
	for done := false; err == nil && !done; {
		err = s.write(ctx, func(tx *sql.Tx) error {
			// A request that passed authentication just before the lockout
			// may have queued a job since: stop it too.
			stopped, err := s.stopUserJobs(tx, id, s.now())
			if err == nil && stop != nil {
				err = stop(tx, stopped)
			}
			if err == nil {
				done, err = s.purgeUserStep(tx, id, max(pace.step, 1))
			}
			return err
		})
		if err == nil && !done && pace.pause > 0 && !sleepUntil(ctx, nil, time.Now().Add(pace.pause)) {
			err = ctx.Err()
		}
	}
	if err != nil {
		return 0, fmt.Errorf("delete user: %w", err)
	}
	return id, nil
}

// lockOutSQL takes a user's keys away and returns its id.
const lockOutSQL = `UPDATE users SET key_hash = X'', previous_key_hash = NULL, previous_key_until = NULL
		WHERE name = ? RETURNING id`

var _ = pgText(lockOutSQL, `UPDATE users SET key_hash = ''::bytea, previous_key_hash = NULL, previous_key_until = NULL
	WHERE name = $1 RETURNING id`)

// lockOutUser is the first write of a deletion: the user's key (and any
// previous one) stops working, no webhook of its finished jobs goes out any
// more, and its unfinished jobs are stopped; it returns the user's id and
// the jobs it stopped.
func (s *Store) lockOutUser(tx *sql.Tx, name string, now time.Time) (int64, []int64, error) {
	var id int64
	err := tx.QueryRow(s.q(lockOutSQL), name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, errNotFound
	}
	if err != nil {
		return 0, nil, err
	}
	if _, err := tx.Exec(s.q(`UPDATE jobs SET webhook_state = 'none', webhook_next_at = NULL
		WHERE user_id = ? AND webhook_state = 'pending'`), id); err != nil {
		return 0, nil, err
	}
	stopped, err := s.stopUserJobs(tx, id, now)
	return id, stopped, err
}

// stopUserJobsSQL cancels a user's unfinished jobs; PostgreSQL locks them in id
// order first, as every write of several jobs does.
const stopUserJobsSQL = `UPDATE jobs SET status = 'cancelled', completed_at = ?, webhook_state = CASE
		WHEN webhook_state IN ('waiting', 'pending') THEN 'none' ELSE webhook_state END, webhook_next_at = NULL
		WHERE user_id = ? AND status IN ('pending', 'processing') RETURNING id`

var _ = pgText(stopUserJobsSQL, `UPDATE jobs SET status = 'cancelled', completed_at = $1, webhook_state = CASE
	WHEN webhook_state IN ('waiting', 'pending') THEN 'none' ELSE webhook_state END, webhook_next_at = NULL
	WHERE id IN (SELECT id FROM jobs WHERE user_id = $2 AND status IN ('pending', 'processing') ORDER BY id FOR UPDATE)
	AND status IN ('pending', 'processing') RETURNING id`)

// stopUserJobs cancels a user's unfinished jobs, with no webhook to come,
// and returns them. Workers of any process learn of it when they next check
// a job (within liveCheckAge), and restore nothing more of it.
func (s *Store) stopUserJobs(tx *sql.Tx, userID int64, now time.Time) ([]int64, error) {
	rows, err := tx.Query(s.q(stopUserJobsSQL), ms(now), userID)
	if err != nil {
		return nil, fmt.Errorf("stop jobs: %w", err)
	}
	return scanColumn[int64](rows)
}

// purgeInventorySQL deletes the first ?2 numbers of user ?1's inventory.
const purgeInventorySQL = `DELETE FROM inventory WHERE user_id = ?1 AND number <= (SELECT max(number) FROM
		(SELECT number FROM inventory WHERE user_id = ?1 ORDER BY number LIMIT ?2))`

var _ = pgText(purgeInventorySQL, `DELETE FROM inventory WHERE user_id = $1 AND number <= (SELECT max(number) FROM
	(SELECT number FROM inventory WHERE user_id = $1 ORDER BY number LIMIT $2) AS page)`)

// purgeUserStep deletes about budget numbers of a user: its jobs first,
// each job in one statement when it fits in what is left of the budget,
// else a chunk of its numbers (as the retention janitor does); then its
// inventory; and once nothing is left, the user row. It reports whether
// the user is gone.
func (s *Store) purgeUserStep(tx *sql.Tx, userID int64, budget int) (bool, error) {
	for budget > 0 {
		var jobID int64
		var total int
		err := tx.QueryRow(s.q("SELECT id, total FROM jobs WHERE user_id = ? ORDER BY id LIMIT 1"), userID).Scan(&jobID, &total)
		if errors.Is(err, sql.ErrNoRows) {
			break
		}
		if err != nil {
			return false, err
		}
		if total > budget {
			_, err := s.deleteJobChunk(tx, jobID, budget)
			return false, err
		}
		if _, err := tx.Exec(s.q("DELETE FROM jobs WHERE id = ?"), jobID); err != nil {
			return false, err
		}
		budget -= max(total, 1)
	}
	if budget <= 0 {
		return false, nil
	}
	n, err := execCount(tx, s.q(purgeInventorySQL), userID, budget)
	if err != nil || n == budget {
		return false, err
	}
	_, err = tx.Exec(s.q("DELETE FROM users WHERE id = ?"), userID)
	return err == nil, err
}

// rotateKeySQL gives user ?4 the key hash ?3, keeping the old one until ?2
// when the overlap ?1 (ms) is positive.
const rotateKeySQL = `UPDATE users SET previous_key_hash = CASE WHEN ?1 > 0 THEN key_hash END,
			previous_key_until = CASE WHEN ?1 > 0 THEN ?2 END, key_hash = ?3 WHERE name = ?4`

var _ = pgText(rotateKeySQL, `UPDATE users SET previous_key_hash = CASE WHEN $1::bigint > 0 THEN key_hash END,
	previous_key_until = CASE WHEN $1::bigint > 0 THEN $2::bigint END, key_hash = $3 WHERE name = $4`)

// rotateKey gives a user a new API key; the old one keeps working for
// overlap (not at all when it is 0), so that clients can switch over. A
// key rotated out earlier stops working at once.
func (s *Store) rotateKey(ctx context.Context, name, key string, overlap time.Duration) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		n, err := execCount(tx, s.q(rotateKeySQL),
			overlap.Milliseconds(), ms(s.now().Add(overlap)), hashKey(key), name)
		if err == nil && n == 0 {
			return errNotFound
		}
		return err
	})
	if err != nil && !errors.Is(err, errNotFound) {
		return fmt.Errorf("rotate key: %w", err)
	}
	return err
}

// rotateSecret gives a user a new webhook secret; the old one keeps signing
// alongside it for overlap, so receivers can switch without losing messages.
func (s *Store) rotateSecret(ctx context.Context, name, secret string, overlap time.Duration) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		n, err := execCount(tx, s.q(`UPDATE users SET previous_secret = webhook_secret, previous_until = ?,
			webhook_secret = ? WHERE name = ?`), ms(s.now().Add(overlap)), secret, name)
		if err == nil && n == 0 {
			return errNotFound
		}
		return err
	})
	if err != nil && !errors.Is(err, errNotFound) {
		return fmt.Errorf("rotate secret: %w", err)
	}
	return err
}

// authenticate returns the user whose name and key match, or errNotFound.
// The key is compared with the current key and with the previous one
// (still valid for a while after a rotation) every time, in constant time,
// against zeros where there is none: how long it takes says nothing about
// which key matched, or whether the user has a previous one.
func (s *Store) authenticate(ctx context.Context, name, key string) (User, error) {
	var u User
	var hash, previous []byte
	var previousUntil sql.NullInt64
	err := func() error {
		give, err := s.turns.take(ctx)
		if err != nil {
			return err
		}
		defer give()
		return s.rq.queryRow(ctx, `SELECT id, name, key_hash, webhook_secret, previous_key_hash, previous_key_until
			FROM users WHERE name = ?`, name).Scan(&u.ID, &u.Name, &hash, &u.WebhookSecret, &previous, &previousUntil)
	}()
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	// An unknown name is compared with zeros too, so it costs what a wrong
	// key costs.
	zeros := make([]byte, sha256.Size)
	live := len(previous) == sha256.Size && previousUntil.Valid && previousUntil.Int64 > ms(s.now())
	if !live {
		previous = zeros
	}
	if err != nil {
		hash = zeros
	}
	given := hashKey(key)
	current := subtle.ConstantTimeCompare(given, hash)
	old := subtle.ConstantTimeCompare(given, previous) & boolInt(live)
	if err != nil || current|old != 1 {
		return User{}, errNotFound
	}
	return u, nil
}

// userByName looks a user up for the admin commands.
func (s *Store) userByName(ctx context.Context, name string) (User, error) {
	var u User
	err := s.r.QueryRowContext(ctx, s.q("SELECT id, name, webhook_secret FROM users WHERE name = ?"), name).
		Scan(&u.ID, &u.Name, &u.WebhookSecret)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, errNotFound
	}
	return u, err
}
