package main

import (
	"context"
	"database/sql"
	"testing"
)

func TestBenchFillBuildsAConsistentGrownDatabase(t *testing.T) {
	shape := benchFill{Users: 7, Jobs: 300, Numbers: 3000, Distinct: 700}
	f, err := fillBenchDB(context.Background(), shape, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.remove)
	store, err := openStore(f.db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	count := func(query string, args ...any) int { t.Helper(); return countRows(t, store, query, args...) }
	cases := []struct {
		name  string
		query string
		want  int
	}{
		{"every user is there", "SELECT count(*) FROM users", shape.Users},
		{"every user's pool is in its inventory", "SELECT count(*) FROM inventory", f.poolSize * shape.Users},
		{"every job is there, completed", "SELECT count(*) FROM jobs WHERE status = 'completed'", shape.Jobs},
		{"every number is recorded", "SELECT count(*) FROM job_numbers", shape.Numbers},
		{"every number has its one attempt", "SELECT count(*) FROM number_attempts", shape.Numbers},
		{"a first try that was final is its number's row alone", "SELECT count(*) FROM attempts", 0},
		{"the totals add up", "SELECT sum(total) FROM jobs", shape.Numbers},
		{"a job's counts are its rows'", `SELECT count(*) FROM jobs j WHERE success_count !=
			(SELECT count(*) FROM job_numbers n WHERE n.job_id = j.id AND n.status = 'success')
			OR failure_count != (SELECT count(*) FROM job_numbers n WHERE n.job_id = j.id AND n.status = 'failed')`, 0},
		{"a job's positions run from 0 without a gap", `SELECT count(*) FROM jobs j WHERE total !=
			(SELECT max(position) + 1 FROM job_numbers n WHERE n.job_id = j.id)`, 0},
		{"no number twice in a job", `SELECT count(*) FROM (SELECT job_id, number FROM job_numbers
			GROUP BY job_id, number HAVING count(*) > 1)`, 0},
		{"an attempt matches its number", `SELECT count(*) FROM number_attempts a JOIN job_numbers n USING (job_id, position)
			WHERE a.status_code != n.status_code OR a.message != n.message`, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := count(c.query); got != c.want {
				t.Fatalf("%d, want %d", got, c.want)
			}
		})
	}
	t.Run("numbers repeat across jobs, and some across users", func(t *testing.T) {
		if got := count("SELECT count(DISTINCT number) FROM job_numbers"); got >= shape.Numbers/2 {
			t.Fatalf("%d distinct numbers of %d recorded: they hardly repeat", got, shape.Numbers)
		}
		shared := count(`SELECT count(*) FROM (SELECT n.number FROM job_numbers n JOIN jobs j ON j.id = n.job_id
			GROUP BY n.number HAVING count(DISTINCT j.user_id) > 1)`)
		if shared == 0 {
			t.Fatal("no number is in jobs of two users")
		}
	})
	t.Run("both outcomes are there", func(t *testing.T) {
		failed := count("SELECT count(*) FROM job_numbers WHERE status = 'failed'")
		if failed == 0 || failed > shape.Numbers/4 {
			t.Fatalf("%d failed of %d", failed, shape.Numbers)
		}
	})
	t.Run("the file passes the integrity and foreign key checks", func(t *testing.T) {
		var ok string
		if err := store.r.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
			t.Fatalf("integrity_check: %q %v", ok, err)
		}
		rows, err := store.r.Query("PRAGMA foreign_key_check")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		if rows.Next() {
			t.Fatal("foreign_key_check found a row without its parent")
		}
	})
	t.Run("a fill user signs in with its key and owns its pool", func(t *testing.T) {
		u, err := store.authenticate(context.Background(), benchFillUser(3), benchFillKey(3))
		if err != nil {
			t.Fatal(err)
		}
		var state string
		err = store.r.QueryRow("SELECT state FROM inventory WHERE user_id = ? AND number = ?", u.ID, f.poolNumber(3, 5)).Scan(&state)
		if err == sql.ErrNoRows || state != "active" {
			t.Fatalf("pool number of user 3: %q %v", state, err)
		}
	})
	t.Run("a shape that cannot be built is refused", func(t *testing.T) {
		if _, err := fillBenchDB(context.Background(), benchFill{Users: 2, Jobs: 5, Numbers: 3, Distinct: 10}, 1); err == nil {
			t.Fatal("fewer numbers than jobs was accepted")
		}
	})
}
