package main

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// v1Fixture is a database file at schema version 1 with a user, a job of
// three numbers (two restored at the first try, one after a retry), their
// attempt rows as version 1 wrote them, an inventory row, an Idempotency-Key
// and a webhook attempt.
func v1Fixture(t *testing.T) string {
	t.Helper()
	path := newTestDB(t)
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	stmts := []string{
		schemaV1,
		"PRAGMA user_version = 1",
		`INSERT INTO users (id, name, key_hash, webhook_secret, created_at) VALUES (7, 'alice', x'00', 'whsec_x', 1)`,
		`INSERT INTO inventory VALUES (7, '15551230001', 'active', 1, 0, 0)`,
		`INSERT INTO jobs (id, uuid, user_id, status, total, success_count, failure_count, created_at, webhook_state)
			VALUES (41, 'old-job', 7, 'completed', 3, 2, 1, 1, 'delivered')`,
		`INSERT INTO job_numbers (job_id, position, number, status, message, status_code, attempts, started_at, completed_at) VALUES
			(41, 0, '15551230001', 'success', 'Number restored', 200, 1, 10, 20),
			(41, 1, '15551230002', 'failed', 'Error: ''number not found''', 404, 1, 10, 20),
			(41, 2, '15551230003', 'success', 'Number restored', 200, 2, 10, 40)`,
		`INSERT INTO attempts VALUES (41, 0, 1, 10, 20, 200, 'Number restored'),
			(41, 1, 1, 10, 20, 404, 'Error: ''number not found'''),
			(41, 2, 1, 10, 20, 503, 'busy'), (41, 2, 2, 30, 40, 200, 'Number restored')`,
		`INSERT INTO idempotency_keys (user_id, key, body_hash, job_id, http_status, response, created_at)
			VALUES (7, 'k1', x'01', 41, 200, x'7b7d', 1)`,
		`INSERT INTO webhook_attempts VALUES (41, 1, 50, 200, NULL, 3)`,
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("build the version 1 file: %v\n%s", err, q)
		}
	}
	return path
}

func TestMigrationFromVersion1KeepsEverything(t *testing.T) {
	store, err := openStore(v1Fixture(t))
	if err != nil {
		t.Fatalf("open a version 1 file: %v", err)
	}
	defer store.Close()
	var version int
	store.r.QueryRow("PRAGMA user_version").Scan(&version)
	if version != len(migrations) {
		t.Fatalf("user_version=%d after opening, want %d", version, len(migrations))
	}
	counts := []struct {
		name, query string
		want        int
	}{
		{"the user is kept", "SELECT count(*) FROM users WHERE id = 7 AND name = 'alice'", 1},
		{"the job is kept with its id", "SELECT count(*) FROM jobs WHERE id = 41 AND uuid = 'old-job'", 1},
		{"its numbers are kept", "SELECT count(*) FROM job_numbers WHERE job_id = 41", 3},
		{"the inventory is kept", "SELECT count(*) FROM inventory WHERE user_id = 7", 1},
		{"the Idempotency-Key still names its job", "SELECT count(*) FROM idempotency_keys WHERE job_id = 41", 1},
		{"the webhook attempt is kept", "SELECT count(*) FROM webhook_attempts WHERE job_id = 41", 1},
		{"only the retried number keeps attempt rows", "SELECT count(*) FROM attempts", 2},
		{"every try is still there to read", "SELECT count(*) FROM number_attempts WHERE job_id = 41", 4},
		{"no foreign key is broken", "SELECT count(*) FROM pragma_foreign_key_check", 0},
	}
	for _, c := range counts {
		t.Run(c.name, func(t *testing.T) {
			if got := countRows(t, store, c.query); got != c.want {
				t.Fatalf("%s: %d, want %d", c.query, got, c.want)
			}
		})
	}
	t.Run("new ids continue above the old ones", func(t *testing.T) {
		ctx := context.Background()
		j := Job{UUID: "new-job", UserID: 7, CreatedAt: time.Now()}
		inTx(t, store, func(tx *sql.Tx) error { return store.insertQueuedJob(tx, &j, packNumbers(seqNumbers(15551230010, 2))) })
		if j.ID <= 41 {
			t.Fatalf("a new job got id %d, want above 41", j.ID)
		}
		if err := store.createUser(ctx, "bob", "k", newWebhookSecret()); err != nil {
			t.Fatal(err)
		}
		if u, _ := store.userByName(ctx, "bob"); u.ID <= 7 {
			t.Fatalf("a new user got id %d, want above 7", u.ID)
		}
	})
	t.Run("a file opened again is at the same version and opens", func(t *testing.T) {
		path := newTestDB(t)
		for range 2 {
			s, err := openStore(path)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			var v int
			s.r.QueryRow("PRAGMA user_version").Scan(&v)
			s.Close()
			if v != len(migrations) {
				t.Fatalf("user_version=%d, want %d", v, len(migrations))
			}
		}
	})
}
