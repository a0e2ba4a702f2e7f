-- bulkrestore schema, version 2: identifiers are never reused, and an
-- Idempotency-Key can be reserved before its job exists.
--
-- Version 1 declared users.id and jobs.id as plain INTEGER PRIMARY KEY, so
-- SQLite handed the largest id out again after the newest row was deleted:
-- a job created after a user's deletion could take the id of a job the
-- running server still held state for. AUTOINCREMENT never reuses an id.
-- SQLite cannot add it to a table in place, so both tables are rebuilt
-- (the procedure of https://www.sqlite.org/lang_altertable.html#otheralter):
-- migrate() runs this with foreign keys off and checks them before commit.
--
-- idempotency_keys.job_id becomes nullable: a synchronous request reserves
-- its key before any restore runs, and links the job when it is stored.

CREATE TABLE users_v2 (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT    NOT NULL UNIQUE,
    key_hash       BLOB    NOT NULL,          -- SHA-256 of the API key
    webhook_secret TEXT    NOT NULL,          -- whsec_<base64>
    -- After a rotation the old secret keeps signing until previous_until.
    previous_secret TEXT,
    previous_until  INTEGER,
    created_at     INTEGER NOT NULL
) STRICT;
INSERT INTO users_v2 SELECT * FROM users;
DROP TABLE users;
ALTER TABLE users_v2 RENAME TO users;

CREATE TABLE jobs_v2 (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid                 TEXT    NOT NULL UNIQUE,
    user_id              INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status               TEXT    NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'cancelled')),
    total                INTEGER NOT NULL,
    success_count        INTEGER NOT NULL DEFAULT 0,
    failure_count        INTEGER NOT NULL DEFAULT 0,
    cancelled_count      INTEGER NOT NULL DEFAULT 0,
    webhook_url          TEXT,
    created_at           INTEGER NOT NULL,
    started_at           INTEGER,
    completed_at         INTEGER,
    -- Webhook outbox: 'none' (no URL), 'waiting' (job not final yet),
    -- 'pending' (due at webhook_next_at), 'delivered', 'failed' (gave up).
    webhook_state        TEXT    NOT NULL DEFAULT 'none'
                         CHECK (webhook_state IN ('none', 'waiting', 'pending', 'delivered', 'failed')),
    webhook_attempts     INTEGER NOT NULL DEFAULT 0,
    webhook_next_at      INTEGER,
    webhook_delivered_at INTEGER,
    webhook_error        TEXT
) STRICT;
-- Copying the rows sets the id sequence to the largest id present (version 1
-- kept no record of deleted ones); new ids continue above it.
INSERT INTO jobs_v2 SELECT * FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v2 RENAME TO jobs;
-- Jobs that still have numbers to restore, for the dispatcher's fair claims.
CREATE INDEX jobs_active ON jobs (id) WHERE status IN ('pending', 'processing');
-- Due webhook deliveries.
CREATE INDEX jobs_webhook_due ON jobs (webhook_next_at) WHERE webhook_state = 'pending';
-- A user's jobs, newest first.
CREATE INDEX jobs_user ON jobs (user_id, id);
-- A user's unfinished jobs, counted against -max-active-jobs at every
-- queued submit: without it the count walks every job the user ever had.
CREATE INDEX jobs_user_active ON jobs (user_id) WHERE status IN ('pending', 'processing');
-- Finished jobs by completion, for retention: one probe finds the oldest.
CREATE INDEX jobs_finished ON jobs (completed_at) WHERE status IN ('completed', 'cancelled');
-- Cancelled jobs whose numbers in flight were not all recorded (their
-- process died): the start-up recovery reads these, not every job. (Written
-- column-first: SQLite turns "a + b < total" around in a query, and a
-- partial index is used only when the query states its WHERE as written.)
CREATE INDEX jobs_cancel_unsettled ON jobs (id)
    WHERE status = 'cancelled' AND total > success_count + failure_count + cancelled_count;

CREATE TABLE idempotency_keys_v2 (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    body_hash   BLOB    NOT NULL,
    -- NULL while a synchronous request holds the key and its restores run.
    job_id      INTEGER REFERENCES jobs(id) ON DELETE CASCADE,
    http_status INTEGER,          -- NULL until the answer is recorded
    response    BLOB,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT, WITHOUT ROWID;
INSERT INTO idempotency_keys_v2 SELECT * FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_v2 RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Retry the failures (POST /v3/bulk_restore_retry): a job made of another
-- job's failed numbers names that job in retry_of, as its uuid. It is the
-- uuid and not a foreign key on purpose: when retention deletes the
-- original, the retry keeps saying what it retried (the original's status
-- is then a 404, as for any deleted job), and the delete has no child row
-- to update. NULL for every other job.
ALTER TABLE jobs ADD COLUMN retry_of TEXT;
-- The retries of a job (its retried_by list), oldest first: the index holds
-- only jobs that are retries (partial), so an ordinary job's insert writes
-- nothing to it, and a job's read finds its retries in one probe (without
-- it, every read of a job would scan all jobs). Measured cost, with
-- `bulkrestore bench -only sync -repeats 3` (the scenario that inserts the
-- most jobs) in three interleaved pairs on a 2-core machine at load 5 to 7:
-- 809, 876, 1,030 requests/s with it, 961, 1,123, 1,052 without, p50 27 to
-- 36 ms either way: no cost that stands out from that machine's noise.
CREATE INDEX jobs_retry_of ON jobs (retry_of) WHERE retry_of IS NOT NULL;

-- A number's rows across jobs: the number history (GET
-- /v3/numbers/{number}/history, newest job first) walks it from the
-- number's newest job down, and the status endpoint's number= filter finds
-- the number's row in a job with one probe instead of scanning the job.
-- Its cost is one more b-tree entry for every number a job inserts; a
-- result changes no column it holds, so recording results writes nothing
-- to it (SQLite skips an index whose columns an UPDATE leaves alone).
-- Measured (bench, 2 shared cores at load 5 to 10, medians of 9 runs
-- interleaved with a build without it): throughput 34,225 numbers/s
-- without, 34,852 with (ratio to raw SQLite 0.252 and 0.247; the 100,000
-- numbers' submit to 202: 410 and 454 ms); history p99 4.5 ms (p50 0.39)
-- on 10,000,000 recorded numbers in 1,000,000 jobs. (number, job_id) and
-- not (job_id, number): the history knows no job, and a job's probe
-- needs both anyway.
CREATE INDEX job_numbers_number ON job_numbers (number, job_id);

-- Admin API, key rotation with an overlap: after `user rotate-key` (or
-- POST /admin/v1/users/{name}/rotate-key) the previous key's SHA-256 keeps
-- authenticating until previous_key_until (ms), so a client can switch to
-- the new key without an outage. NULL: no previous key. No index: the row is
-- read by name, as the key is.
ALTER TABLE users ADD COLUMN previous_key_hash BLOB;
ALTER TABLE users ADD COLUMN previous_key_until INTEGER;

-- A number restored at its first try is its own record: job_numbers holds
-- that try's start, end, status code and message, so an attempts row would
-- repeat them. attempts keeps the tries of the numbers that needed more
-- than one (every try of those, the last included), which spares one
-- b-tree insert of the three a restored number cost (the number's row, its
-- attempt, its inventory row). number_attempts is every try of every
-- number, as a reader wants them. Rows version 1 wrote for first-try
-- numbers go, so that the view does not show them twice.
DELETE FROM attempts WHERE attempt = 1 AND (job_id, position) IN
    (SELECT job_id, position FROM job_numbers WHERE attempts = 1 AND status IN ('success', 'failed'));
CREATE VIEW number_attempts AS
    SELECT job_id, position, attempt, started_at, finished_at, status_code, message FROM attempts
    UNION ALL
    SELECT job_id, position, 1, started_at, completed_at, status_code, message FROM job_numbers
    WHERE attempts = 1 AND status IN ('success', 'failed');

-- The web console's sessions (/ui/). The cookie holds a random 256-bit id;
-- only its SHA-256 is stored, so a copy of the database signs no one in.
-- A session belongs to a user (deleting the user ends it, by the foreign
-- key) or to the admin (user_id NULL, admin 1). expires_at is the earlier
-- of the idle deadline (last_seen_at + idle timeout) and the absolute one
-- (created_at + lifetime): a lookup compares one column, and the janitor
-- deletes past it through sessions_expires; deleting a user finds its
-- sessions through sessions_user. The table holds a few rows per person
-- signed in, so neither index costs anything measurable.
CREATE TABLE sessions (
    id_hash      BLOB    PRIMARY KEY,
    user_id      INTEGER REFERENCES users(id) ON DELETE CASCADE,
    admin        INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
    csrf_token   TEXT    NOT NULL,
    -- An admin session's proof of the admin token it was opened with (a
    -- SHA-256 of it, domain-separated; NULL for a user's): when the token
    -- changes or is removed, the admin sessions opened with the old one end.
    admin_proof  BLOB,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    CHECK ((user_id IS NULL) = (admin = 1)),
    CHECK ((admin_proof IS NULL) = (admin = 0))
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id);
