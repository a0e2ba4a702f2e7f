package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// migrateFixture is a SQLite file that has lived a while: users (one with
// a rotated key still in its overlap), inventory, finished jobs with
// webhooks, attempts and a retry, an Idempotency-Key, and one job left
// unfinished when its server stopped. It returns the file and what its
// server answered for each job (the bodies the PostgreSQL servers must give
// back), with the users' keys.
type migrateFixture struct {
	db                 string
	aliceOld, aliceNew string
	finished           map[string][]byte // job uuid -> status body, results included
	history            []byte            // a number's history
	unfinished         string            // a job still pending in the file
	maxJobID           int64
}

// newMigrateFixture builds the file through a real server and the CLI.
func newMigrateFixture(t *testing.T) migrateFixture {
	t.Helper()
	f := migrateFixture{db: newTestDB(t), finished: map[string][]byte{}}
	hook := apiNewHookReceiver(t, http.StatusOK)
	s := startServer(t, "-db", f.db, "-dev", "-retention", "0")
	f.aliceOld, _ = addUser(t, f.db, "alice")
	importCSV(t, f.db, "alice", "number,state,released_at\n15557000001,released,\n15557000002,unavailable,\n")
	out, _, err := runCLI(t, nil, "", "user", "rotate-key", "-db", f.db, "-overlap", "1h", "alice")
	if err != nil {
		t.Fatal(err)
	}
	var rotated rotatedKeyJSON
	json.Unmarshal([]byte(out), &rotated)
	f.aliceNew = rotated.APIKey
	sync := callKeyed(t, s.URL+"/v3/bulk_restore", "demo", "demo", "key-1",
		map[string]any{"numbers": seqNumbers(15551230100, 4), "webhook_url": hook.URL})
	queued := apiBulk(t, s, "demo", "demo", map[string]any{"numbers": seqNumbers(15551230110, 20), "webhook_url": hook.URL})
	mine := apiBulk(t, s, "alice", f.aliceNew, map[string]any{"numbers": []string{"15557000001", "15557000002"}})
	ids := []string{sync.Body["job_uuid"].(string), queued.Body["job_uuid"].(string)}
	waitJobDone(t, s, "demo", "demo", ids[1], 30*time.Second)
	retry := call(t, http.MethodPost, s.URL+"/v3/bulk_restore_retry?job_uuid="+ids[1], "demo", "demo", nil)
	if retry.Status != http.StatusOK {
		t.Fatalf("retry: %d %s", retry.Status, retry.Raw)
	}
	ids = append(ids, retry.Body["job_uuid"].(string))
	waitFor(t, 30*time.Second, "the three webhooks to be delivered", func() bool {
		bodies, _ := hook.received()
		return len(bodies) == 3
	})
	for _, id := range ids {
		f.finished[id] = call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+id, "demo", "demo", nil).Raw
	}
	f.finished[mine.Body["job_uuid"].(string)] = call(t, http.MethodGet,
		s.URL+"/v3/bulk_restore_status?job_uuid="+mine.Body["job_uuid"].(string), "alice", f.aliceNew, nil).Raw
	f.history = apiHistory(t, s.URL, "demo", "demo", "15551230117", "").Raw
	s.stop()

	j := queueUnstartedJob(t, f.db, "00000000-0000-4000-8000-000000000001")
	f.unfinished, f.maxJobID = j.UUID, j.ID
	return f
}

// queueUnstartedJob writes into the file a job of demo's, 15 numbers from
// 15551230130, queued and never started: its server stopped before it ran.
func queueUnstartedJob(t *testing.T, db, uuid string) Job {
	t.Helper()
	store := openTestStore(t, db)
	defer store.Close()
	demo, err := store.userByName(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	j := Job{UUID: uuid, UserID: demo.ID, CreatedAt: time.Now()}
	inTx(t, store, func(tx *sql.Tx) error {
		return store.insertQueuedJob(tx, &j, packNumbers(seqNumbers(15551230130, 15)))
	})
	return j
}

func TestMigrateCopiesAFileThatPostgreSQLServersThenServe(t *testing.T) {
	f := newMigrateFixture(t)
	pg := newPGDatabase(t)
	t.Run("a file a server holds is refused", func(t *testing.T) {
		s := startServer(t, "-db", f.db)
		_, _, err := runCLI(t, nil, "", "migrate", "-from", f.db, "-to", pg)
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("migrate beside a server: %v, want the file in use", err)
		}
		s.stop()
	})
	out, _, err := runCLI(t, map[string]string{"BULKRESTORE_MIGRATE_TO": pg}, "", "migrate", "-from", f.db)
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	t.Run("it says what it copied", func(t *testing.T) {
		for _, want := range []string{"users            2 copied", "job_numbers      45 copied", "jobs             5 copied",
			"inventory        102 copied", "idempotency_keys 1 copied", "webhook_attempts 3 copied"} {
			if !strings.Contains(out, want) {
				t.Fatalf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("a second copy into the same database is refused, and -resume finds everything there", func(t *testing.T) {
		if _, _, err := runCLI(t, nil, "", "migrate", "-from", f.db, "-to", pg); err == nil || !strings.Contains(err.Error(), "already holds") {
			t.Fatalf("second migrate: %v, want a refusal", err)
		}
		again, _, err := runCLI(t, nil, "", "migrate", "-from", f.db, "-to", pg, "-resume")
		if err != nil || !strings.Contains(again, "jobs             0 copied (5 there already)") {
			t.Fatalf("migrate -resume: %v\n%s", err, again)
		}
	})
	s := startServer(t, "-db", pg, "-dev")
	t.Run("users authenticate with their keys, the rotated-out one too during its overlap", func(t *testing.T) {
		for _, key := range []string{f.aliceOld, f.aliceNew} {
			if r := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_jobs", "alice", key, nil); r.Status != http.StatusOK {
				t.Fatalf("alice's key: status %d", r.Status)
			}
		}
	})
	t.Run("every finished job answers as it did from the file", func(t *testing.T) {
		for id, before := range f.finished {
			user, key := "demo", "demo"
			if strings.Contains(string(before), `"15557000001"`) { // alice's job
				user, key = "alice", f.aliceNew
			}
			after := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+id, user, key, nil).Raw
			if !sameJSON(t, before, after) {
				t.Fatalf("job %s:\nfrom the file: %s\nfrom PostgreSQL: %s", id, before, after)
			}
		}
		if after := apiHistory(t, s.URL, "demo", "demo", "15551230117", "").Raw; !sameJSON(t, f.history, after) {
			t.Fatalf("history:\nfrom the file: %s\nfrom PostgreSQL: %s", f.history, after)
		}
	})
	t.Run("the unfinished job is finished by the PostgreSQL server", func(t *testing.T) {
		done := waitJobDone(t, s, "demo", "demo", f.unfinished, 30*time.Second)
		if done.Body["success_count"].(float64)+done.Body["failure_count"].(float64) != 15 {
			t.Fatalf("unfinished job ended as %s", done.Raw)
		}
	})
	t.Run("a new job takes an id the file never handed out", func(t *testing.T) {
		r := apiBulk(t, s, "demo", "demo", map[string]any{"numbers": []string{"15551230199"}})
		var id int64
		if err := pgConn(t, pg).QueryRow("SELECT id FROM jobs WHERE uuid = $1", r.Body["job_uuid"]).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if id <= f.maxJobID {
			t.Fatalf("new job id %d, want above the file's %d", id, f.maxJobID)
		}
	})
}

func TestMigrateRefusesWhatItCannotCopy(t *testing.T) {
	db := newTestDB(t)
	addUser(t, db, "alice")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no -from", []string{"-to", "postgres://h/db"}, "-from"},
		{"a URL as -from", []string{"-from", "postgres://h/db", "-to", "postgres://h/db"}, "-from"},
		{"no -to", []string{"-from", db}, "-to must be a PostgreSQL URL"},
		{"a file as -to", []string{"-from", db, "-to", db}, "-to must be a PostgreSQL URL"},
		{"a file that does not exist", []string{"-from", db + ".missing", "-to", "postgres://h/db"}, "no database"},
	}
	for _, c := range cases {
		t.Run(c.name+" is refused", func(t *testing.T) {
			_, _, err := runCLI(t, nil, "", append([]string{"migrate"}, c.args...)...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("migrate %v: %v, want %q", c.args, err, c.want)
			}
		})
	}
}

// sameJSON reports whether two JSON documents hold the same values.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// TestMigrateResumeBringsTheCopyUpToDate runs a server on the file between
// a copy and its -resume, as an operator might by mistake: the numbers it
// restored and the job it took are carried over, and once the file has
// lost rows the database holds (a user deleted), -resume refuses.
func TestMigrateResumeBringsTheCopyUpToDate(t *testing.T) {
	pg := newPGDatabase(t)
	db := newTestDB(t)
	s := startServer(t, "-db", db, "-dev")
	s.stop() // the demo user is there
	queued := queueUnstartedJob(t, db, "00000000-0000-4000-8000-000000000002")
	if out, _, err := runCLI(t, nil, "", "migrate", "-from", db, "-to", pg); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}

	s = startServer(t, "-db", db, "-dev")
	waitJobDone(t, s, "demo", "demo", queued.UUID, 30*time.Second)
	taken := callKeyed(t, s.URL+"/v3/bulk_restore", "demo", "demo", "resume-key",
		map[string]any{"numbers": seqNumbers(15551230160, 3)}).Body["job_uuid"].(string)
	fromFile := map[string][]byte{}
	for _, id := range []string{queued.UUID, taken} {
		fromFile[id] = call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+id, "demo", "demo", nil).Raw
	}
	s.stop()

	out, _, err := runCLI(t, nil, "", "migrate", "-from", db, "-to", pg, "-resume")
	if err != nil {
		t.Fatalf("migrate -resume: %v\n%s", err, out)
	}
	for _, want := range []string{"jobs             1 copied, 1 brought up to date", "job_numbers      3 copied, 15 brought up to date"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	s = startServer(t, "-db", pg, "-dev")
	for id, before := range fromFile {
		after := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+id, "demo", "demo", nil).Raw
		if !sameJSON(t, before, after) {
			t.Fatalf("job %s after -resume:\nfrom the file: %s\nfrom PostgreSQL: %s", id, before, after)
		}
	}
	s.stop()

	refused := func(after, want string) {
		t.Helper()
		_, _, err := runCLI(t, nil, "", "migrate", "-from", db, "-to", pg, "-resume")
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "copy again without -resume") {
			t.Fatalf("migrate -resume after %s: %v, want a refusal naming %q", after, err, want)
		}
	}
	store := openTestStore(t, db)
	if _, err := store.w.Exec("DELETE FROM idempotency_keys"); err != nil { // as the janitor does after a day
		t.Fatal(err)
	}
	store.Close()
	if out, _, err := runCLI(t, nil, "", "migrate", "-from", db, "-to", pg, "-resume"); err != nil {
		t.Fatalf("migrate -resume after an idempotency key expired in the file: %v\n%s", err, out)
	}
	store = openTestStore(t, db)
	if _, err := store.w.Exec("DELETE FROM jobs WHERE uuid = ?", taken); err != nil { // as retention would
		t.Fatal(err)
	}
	store.Close()
	refused("a job was deleted from the file", "jobs has 2 rows there and 1 in the file")
	if out, _, err := runCLI(t, nil, "", "user", "del", "-db", db, "demo"); err != nil {
		t.Fatalf("user del: %v\n%s", err, out)
	}
	refused("its user was deleted from the file", `user 1 "demo"`)
}
