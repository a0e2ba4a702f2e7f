-- bulkrestore schema, version 1. Applied in one transaction by migrate() in
-- store.go, which records the version in PRAGMA user_version. A later release
-- appends a new migration instead of editing this one.
--
-- Timestamps are INTEGER milliseconds since the Unix epoch, UTC.

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    key_hash       BLOB    NOT NULL,          -- SHA-256 of the API key
    webhook_secret TEXT    NOT NULL,          -- whsec_<base64>
    -- After a rotation the old secret keeps signing until previous_until.
    previous_secret TEXT,
    previous_until  INTEGER,
    created_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE inventory (
    user_id                  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    number                   TEXT    NOT NULL,
    state                    TEXT    NOT NULL CHECK (state IN ('active', 'released', 'unavailable')),
    released_at              INTEGER NOT NULL,
    requires_identity_update INTEGER NOT NULL DEFAULT 0,
    needs_registration       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, number)
) STRICT, WITHOUT ROWID;

CREATE TABLE jobs (
    id                   INTEGER PRIMARY KEY,
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

-- Jobs that still have numbers to restore, for the dispatcher's fair claims.
CREATE INDEX jobs_active ON jobs (id) WHERE status IN ('pending', 'processing');
-- Due webhook deliveries.
CREATE INDEX jobs_webhook_due ON jobs (webhook_next_at) WHERE webhook_state = 'pending';
-- A user's jobs, newest first.
CREATE INDEX jobs_user ON jobs (user_id, id);

CREATE TABLE job_numbers (
    job_id                   INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    position                 INTEGER NOT NULL,  -- input order, from 0
    number                   TEXT    NOT NULL,
    -- 'pending' until the result is committed; the API shows a number the
    -- workers hold as 'processing', which is never stored.
    status                   TEXT    NOT NULL CHECK (status IN ('pending', 'success', 'failed', 'cancelled')),
    message                  TEXT,
    status_code              INTEGER,
    requires_identity_update INTEGER NOT NULL DEFAULT 0,
    needs_registration       INTEGER NOT NULL DEFAULT 0,
    attempts                 INTEGER NOT NULL DEFAULT 0,
    next_attempt_at          INTEGER NOT NULL DEFAULT 0,
    started_at               INTEGER,
    completed_at             INTEGER,
    PRIMARY KEY (job_id, position)
) STRICT, WITHOUT ROWID;

-- No index on status: the dispatcher reads a job's numbers in primary-key
-- order from where it stopped, where nearly every row is pending, and an
-- index would cost a write on every result.
-- Nor on number: the status endpoint's number filter scans one job's rows
-- (milliseconds for 100,000), while an index would slow every submit.

CREATE TABLE attempts (
    job_id      INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,  -- from 1
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    message     TEXT    NOT NULL,
    PRIMARY KEY (job_id, position, attempt)
) STRICT, WITHOUT ROWID;

CREATE TABLE webhook_attempts (
    job_id      INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,  -- from 1
    at          INTEGER NOT NULL,
    http_status INTEGER,           -- NULL when no response arrived
    error       TEXT,              -- NULL on success
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (job_id, attempt)
) STRICT, WITHOUT ROWID;

-- Idempotency-Key records: the same key and body from the same user within
-- 24 hours get the original answer back instead of a new job.
CREATE TABLE idempotency_keys (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key        TEXT    NOT NULL,
    body_hash  BLOB    NOT NULL,
    job_id     INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    http_status INTEGER,          -- NULL until the answer is recorded
    response   BLOB,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
