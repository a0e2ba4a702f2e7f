package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"time"
)

// The operations of the admin API, which the CLI's user and numbers
// commands and the web console call too. Each takes plain values and
// returns what it did, or an *apiError (a *csvLineError for a bad CSV row)
// for the caller's mistakes, and never speaks HTTP. Their writes go through
// store.write: the server's group-commit writer inside a server, a
// transaction of its own in the CLI.

// adminOps runs the admin operations on one store.
type adminOps struct {
	store *Store
	now   func() time.Time
	// spoolDir is where an inventory import keeps its CSV between checking
	// it and writing it: the database's folder, which the service may write
	// to and which is not memory (as /tmp may be).
	spoolDir string
	// stopJobs, in a server, returns the function that stops jobs at
	// once, called inside the write that cancels them, and the one that
	// waits after for the other instances to confirm (see jobStopper).
	// Nil in the CLI: a running server's workers find out within
	// liveCheckAge.
	stopJobs func() (stop func(tx *sql.Tx, jobIDs []int64) error, confirmed func(ctx context.Context, err error))
	// pace spreads a user's deletion over steps (serverPurgePace or
	// cliPurgePace).
	pace purgePace
	// progress, in a server, is a job's progress for the job list; nil in
	// the CLI, which lists no jobs.
	progress func(Job) *JobProgress
}

// adminOps returns the admin operations of the running server.
func (a *app) adminOps() adminOps {
	return adminOps{store: a.store, now: a.now, spoolDir: spoolDir(a.cfg.db), pace: serverPurgePace,
		progress: a.progress.progress, stopJobs: a.jobStopper}
}

// jobStopper returns, for one deletion, the function that stops jobs
// inside its writes, in this process's registry and, on PostgreSQL, in
// every instance holding numbers of them (announceCancel), and the one
// that waits, once they are committed, for those instances to confirm
// (cancelAckWait at most, for all the jobs together), so that no restore
// of the user's begins anywhere once the deletion has answered. A
// deletion that failed waits for nothing: its announcements may not have
// been committed.
func (a *app) jobStopper() (stop func(tx *sql.Tx, jobIDs []int64) error, confirmed func(ctx context.Context, err error)) {
	type awaited struct {
		acks    chan string
		holders cancelHolders
	}
	waits := map[int64]awaited{}
	stop = func(tx *sql.Tx, ids []int64) error {
		for _, id := range ids {
			a.pool.registry.stop(id, stopGone)
			holders, err := a.store.announceCancel(tx, id)
			if err != nil {
				return err
			}
			if w, ok := waits[id]; ok { // a write run again
				a.pool.cancelAcks.forget(id, w.acks)
				delete(waits, id)
			}
			if holders.any() {
				waits[id] = awaited{a.pool.cancelAcks.expect(id), holders}
			}
		}
		return nil
	}
	confirmed = func(ctx context.Context, err error) {
		now := time.Now()
		quiet, deadline := now.Add(unconnectedHolderWait), now.Add(cancelAckWait)
		for id, w := range waits {
			if err != nil {
				a.pool.cancelAcks.forget(id, w.acks)
				continue
			}
			if late := a.pool.cancelAcks.awaitHolders(ctx, w.acks, w.holders, quiet, deadline); len(late) > 0 {
				a.log.Warn("instances holding numbers of a deleted user's job did not confirm in time; their workers drop them when they next check the job",
					"job_id", id, "instances", late)
			}
			a.pool.cancelAcks.forget(id, w.acks)
		}
	}
	return stop, confirmed
}

// userNamePattern is what a user name may be: it appears in logs and in
// Basic auth, so it is kept plain.
var userNamePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// badUserName is the refusal of a name userNamePattern does not match.
const badUserName = "user name must be 1 to 64 of A-Z a-z 0-9 . _ -"

// secretOverlap is how long a rotated-out webhook secret keeps signing.
const secretOverlap = 24 * time.Hour

// Rotated-out API keys keep working for defaultKeyOverlap unless the
// rotation says otherwise, and for at most maxKeyOverlap.
const (
	defaultKeyOverlap = 24 * time.Hour
	maxKeyOverlap     = 30 * 24 * time.Hour
)

// createdUserJSON is a new user: the answer of POST /admin/v1/users and the
// line `user add` prints, in the contract's field order. It is the only
// time the key is shown.
type createdUserJSON struct {
	Username      string `json:"username"`
	APIKey        string `json:"api_key"`
	WebhookSecret string `json:"webhook_secret"`
}

// adminUserJSON is one user of GET /admin/v1/users and of `user list`.
type adminUserJSON struct {
	Username         string  `json:"username"`
	CreatedAt        *string `json:"created_at"`
	Jobs             int     `json:"jobs"`
	ActiveJobs       int     `json:"active_jobs"`
	InventoryNumbers int     `json:"inventory_numbers"`
}

// inventoryImport is what an import did.
type inventoryImport struct {
	Imported int // rows of the file, each inserted or updated
	Deleted  int // numbers not in the file, deleted by a replacing import
}

// userNotFound is the answer about a name that names no user.
func userNotFound(name string) error {
	return newAPIError(codeNotFound, fmt.Sprintf("no user %q", name))
}

// user returns the named user, or userNotFound.
func (o adminOps) user(ctx context.Context, name string) (User, error) {
	u, err := o.store.userByName(ctx, name)
	if errors.Is(err, errNotFound) {
		return u, userNotFound(name)
	}
	return u, err
}

// createUser creates a user with a fresh key and webhook secret.
func (o adminOps) createUser(ctx context.Context, name string) (createdUserJSON, error) {
	if !userNamePattern.MatchString(name) {
		return createdUserJSON{}, newAPIError(codeInvalid, badUserName)
	}
	created := createdUserJSON{Username: name, APIKey: newAPIKey(), WebhookSecret: newWebhookSecret()}
	err := o.store.createUser(ctx, name, created.APIKey, created.WebhookSecret)
	if errors.Is(err, errUserExists) {
		return createdUserJSON{}, newAPIError(codeConflict, fmt.Sprintf("user %q already exists", name))
	}
	return created, err
}

// listUsers returns every user, by name, with its counts.
func (o adminOps) listUsers(ctx context.Context) ([]adminUserJSON, error) {
	users, err := o.store.listUserSummaries(ctx)
	out := make([]adminUserJSON, len(users))
	for i, u := range users {
		out[i] = adminUserJSON{Username: u.Name, CreatedAt: jsonTime(u.CreatedAt), Jobs: u.Jobs,
			ActiveJobs: u.ActiveJobs, InventoryNumbers: u.InventoryNumbers}
	}
	return out, err
}

// deleteUser deletes a user with its jobs, their results and its
// inventory. Its work stops at once, and the rows go in short steps
// through the writer. It runs to its end even if the caller goes away.
func (o adminOps) deleteUser(ctx context.Context, name string) error {
	ctx = context.WithoutCancel(ctx)
	var stop func(tx *sql.Tx, jobIDs []int64) error
	confirmed := func(context.Context, error) {}
	if o.stopJobs != nil {
		stop, confirmed = o.stopJobs()
	}
	_, err := o.store.deleteUser(ctx, name, stop, o.pace)
	confirmed(ctx, err)
	if errors.Is(err, errNotFound) {
		return userNotFound(name)
	}
	return err
}

// rotateKey gives a user a new API key and returns it; the old key keeps
// working for overlap (0 to maxKeyOverlap; 0 ends it at once).
func (o adminOps) rotateKey(ctx context.Context, name string, overlap time.Duration) (string, error) {
	if overlap < 0 || overlap > maxKeyOverlap {
		return "", newAPIError(codeInvalid, fmt.Sprintf("overlap must be from 0 to %s, such as 24h or 0", maxKeyOverlap))
	}
	key := newAPIKey()
	err := o.store.rotateKey(ctx, name, key, overlap)
	if errors.Is(err, errNotFound) {
		return "", userNotFound(name)
	}
	return key, err
}

// rotateSecret gives a user a new webhook secret and returns it; the old
// one signs too for secretOverlap.
func (o adminOps) rotateSecret(ctx context.Context, name string) (string, error) {
	secret := newWebhookSecret()
	err := o.store.rotateSecret(ctx, name, secret, secretOverlap)
	if errors.Is(err, errNotFound) {
		return "", userNotFound(name)
	}
	return secret, err
}

// importInventory imports a user's inventory from an inventory CSV in one
// transaction: every row is inserted or updated, and with replace the
// user's numbers that the file lacks are deleted. It reads the file twice,
// in constant memory but for a set of its numbers (about 20 bytes each):
// first checking every row while keeping a copy on disk, so that a bad row
// is found before anything is written and a slow upload never holds the
// writer; then writing the copy's rows in one write.
func (o adminOps) importInventory(ctx context.Context, name string, csvFile io.Reader, replace bool) (inventoryImport, error) {
	if _, err := o.user(ctx, name); err != nil {
		return inventoryImport{}, err
	}
	spool, err := os.CreateTemp(o.spoolDir, ".bulkrestore-import-*.csv")
	if err != nil {
		return inventoryImport{}, fmt.Errorf("import: %w", err)
	}
	defer func() { spool.Close(); os.Remove(spool.Name()) }()
	// Unlinked at once where the system allows it, so that the copy goes
	// with the process however it ends; else when done.
	os.Remove(spool.Name())
	now := o.now()
	copied := bufio.NewWriterSize(spool, 64<<10)
	seen, err := checkInventoryCSV(io.TeeReader(csvFile, copied), now)
	if err != nil {
		return inventoryImport{}, err
	}
	if err := copied.Flush(); err != nil {
		return inventoryImport{}, fmt.Errorf("import: %w", err)
	}
	var done inventoryImport
	err = o.store.write(ctx, func(tx *sql.Tx) error {
		// From the copy's start on every try: PostgreSQL runs a write
		// that lost a deadlock again, and an import competes for the
		// rows with the restores' activations.
		done = inventoryImport{}
		if _, err := spool.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		id, err := o.store.userIDInTx(tx, name)
		if err != nil {
			return err
		}
		if done.Imported, err = o.store.writeInventory(tx, id, inventoryCSVRows(spool, now), false); err != nil || !replace {
			return err
		}
		done.Deleted, err = o.store.deleteInventoryExcept(tx, id, seen.has)
		return err
	})
	if errors.Is(err, errNotFound) {
		return inventoryImport{}, userNotFound(name)
	}
	if err != nil {
		return inventoryImport{}, fmt.Errorf("import inventory: %w", err)
	}
	return done, nil
}

// exportInventory checks that the user exists and returns what writes its
// inventory, in number order, as the CSV that importInventory reads.
func (o adminOps) exportInventory(ctx context.Context, name string) (func(io.Writer) error, error) {
	u, err := o.user(ctx, name)
	if err != nil {
		return nil, err
	}
	return func(w io.Writer) error { return writeInventoryCSV(w, o.store.eachInventory(ctx, u.ID)) }, nil
}

// adminJobJSON is one job of the admin job list: the job list's summary,
// and whose job it is.
type adminJobJSON struct {
	Username string `json:"username"`
	jobSummaryJSON
}

// adminJobListJSON is the body of GET /admin/v1/jobs.
type adminJobListJSON struct {
	Jobs       []adminJobJSON `json:"jobs"`
	NextBefore *string        `json:"next_before"` // pass as before= for the next page; null on the last
}

// listJobs returns a page of every user's jobs (or of the named user's),
// newest first: up to limit jobs, optionally of one status, older than the
// job before names (a job_uuid) when it is given.
func (o adminOps) listJobs(ctx context.Context, userName string, status jobStatus, limit int, before string) (adminJobListJSON, error) {
	var userID int64
	if userName != "" {
		u, err := o.user(ctx, userName)
		if err != nil {
			return adminJobListJSON{}, err
		}
		userID = u.ID
	}
	var beforeID int64 = math.MaxInt64
	if before != "" {
		id, err := o.store.jobIDByUUID(ctx, before)
		if errors.Is(err, errNotFound) {
			return adminJobListJSON{}, newAPIError(codeNotFound, "before names no job")
		}
		if err != nil {
			return adminJobListJSON{}, err
		}
		beforeID = id
	}
	jobs, err := o.store.listAllJobs(ctx, userID, status, beforeID, limit+1)
	if err != nil {
		return adminJobListJSON{}, err
	}
	out := adminJobListJSON{Jobs: []adminJobJSON{}}
	for i, j := range jobs {
		if i == limit {
			out.NextBefore = &jobs[i-1].UUID
			break
		}
		sum := summarize(j.Job)
		if o.progress != nil {
			sum.JobProgress = o.progress(j.Job)
		}
		out.Jobs = append(out.Jobs, adminJobJSON{Username: j.Username, jobSummaryJSON: sum})
	}
	return out, nil
}
