-- bulkrestore schema for PostgreSQL, version 2: schema_v2.sql (SQLite's
-- version 2) in PostgreSQL's dialect, section by section, then what only
-- PostgreSQL needs: the leases of claimed numbers.
--
-- Identifiers are never reused: SQLite rebuilds users and jobs with
-- AUTOINCREMENT here; version 1's identity columns already never reuse one.

-- An Idempotency-Key can be reserved before its job exists.
ALTER TABLE idempotency_keys ALTER COLUMN job_id DROP NOT NULL;

-- A user's unfinished jobs, counted against -max-active-jobs at every
-- queued submit.
CREATE INDEX jobs_user_active ON jobs (user_id) WHERE status IN ('pending', 'processing');
-- Finished jobs by completion, for retention: one probe finds the oldest.
CREATE INDEX jobs_finished ON jobs (completed_at) WHERE status IN ('completed', 'cancelled');
-- Cancelled jobs whose numbers in flight were not all recorded.
CREATE INDEX jobs_cancel_unsettled ON jobs (id)
    WHERE status = 'cancelled' AND total > success_count + failure_count + cancelled_count;

-- Retry the failures: the uuid of the job a retry retries (see schema_v2.sql).
ALTER TABLE jobs ADD COLUMN retry_of text;
CREATE INDEX jobs_retry_of ON jobs (retry_of) WHERE retry_of IS NOT NULL;

-- A number's rows across jobs: the number history and number= (see
-- schema_v2.sql). A result changes no column it holds, so recording one
-- can stay a heap-only update.
CREATE INDEX job_numbers_number ON job_numbers (number, job_id);

-- Key rotation with an overlap (see schema_v2.sql).
ALTER TABLE users ADD COLUMN previous_key_hash bytea;
ALTER TABLE users ADD COLUMN previous_key_until bigint;

-- A number restored at its first try is its own record (see schema_v2.sql).
DELETE FROM attempts WHERE attempt = 1 AND (job_id, position) IN
    (SELECT job_id, position FROM job_numbers WHERE attempts = 1 AND status IN ('success', 'failed'));
CREATE VIEW number_attempts AS
    SELECT job_id, position, attempt, started_at, finished_at, status_code, message FROM attempts
    UNION ALL
    SELECT job_id, position, 1, started_at, completed_at, status_code, message FROM job_numbers
    WHERE attempts = 1 AND status IN ('success', 'failed');

-- The web console's sessions (see schema_v2.sql).
CREATE TABLE sessions (
    id_hash      bytea   PRIMARY KEY,
    user_id      bigint  REFERENCES users(id) ON DELETE CASCADE,
    admin        integer NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
    csrf_token   text    NOT NULL,
    admin_proof  bytea,
    created_at   bigint  NOT NULL,
    last_seen_at bigint  NOT NULL,
    expires_at   bigint  NOT NULL,
    CHECK ((user_id IS NULL) = (admin = 1)),
    CHECK ((admin_proof IS NULL) = (admin = 0))
);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id);

-- PostgreSQL only: claims. Several instances share the queue, so a number
-- being restored is claimed in the database: claimed_by names the instance
-- (a random id per process), lease_until (ms) is when another instance may
-- take it over. The holder renews its leases while it works, and records a
-- result only while it still holds the claim; a result clears both.
-- Neither column is indexed: a claim and a result stay heap-only updates
-- where the page has room (hence the fill factor), and the rows are found
-- by their job and position, never by their claim.
ALTER TABLE job_numbers ADD COLUMN claimed_by text;
ALTER TABLE job_numbers ADD COLUMN lease_until bigint;
ALTER TABLE job_numbers SET (fillfactor = 50);
ALTER TABLE inventory SET (fillfactor = 70);

-- The database's clock in the stored form, so that leases written by
-- instances on different machines are compared on one clock: the time the
-- statement began (STABLE: read once per statement, not once per row).
CREATE FUNCTION bulkrestore_now_ms() RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT (extract(epoch FROM statement_timestamp()) * 1000)::bigint $$;
