package main

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// mixedJobFixture is a store holding one job of n numbers whose stored
// states cycle through success, failed, pending, cancelled, success.
func mixedJobFixture(t *testing.T, db string, n int) (*Store, int64) {
	t.Helper()
	store, _, ids := queueFixture(t, db, n)
	inTx(t, store, func(tx *sql.Tx) error {
		_, err := tx.Exec(store.q(`UPDATE job_numbers SET status = CASE position % 5
			WHEN 1 THEN 'failed' WHEN 2 THEN 'pending' WHEN 3 THEN 'cancelled' ELSE 'success' END WHERE job_id = ?`), ids[0])
		return err
	})
	return store, ids[0]
}

// offsetPositions is what the paging of old gave: LIMIT ? OFFSET ? over
// the rows in the states, read and dropped.
func offsetPositions(t *testing.T, store *Store, jobID int64, statuses []numberStatus, offset, limit int) []int {
	t.Helper()
	query := "SELECT position FROM job_numbers WHERE job_id = ?"
	args := []any{jobID}
	if statuses != nil {
		quoted := make([]string, len(statuses))
		for i, st := range statuses {
			quoted[i] = "'" + string(st) + "'"
		}
		query += " AND status IN (" + strings.Join(quoted, ",") + ")"
	}
	rows, err := store.r.Query(store.q(query+" ORDER BY position LIMIT "+store.limitParam()+" OFFSET ?"), append(args, limit, offset)...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var p int
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestSeekPagingReturnsWhatOffsetPagingDid(t *testing.T) {
	forEachStore(t, testSeekPagingReturnsWhatOffsetPagingDid)
}

// testSeekPagingReturnsWhatOffsetPagingDid runs TestSeekPagingReturnsWhatOffsetPagingDid on one database.
func testSeekPagingReturnsWhatOffsetPagingDid(t *testing.T, db string) {
	const n = 53
	store, jobID := mixedJobFixture(t, db, n)
	filters := [][]numberStatus{nil, {numberFailed}, {numberSuccess, numberCancelled}, {numberPending}}
	for _, statuses := range filters {
		for _, offset := range []int{0, 1, 7, 20, n - 1, n, n + 5} {
			for _, limit := range []int{-1, 0, 1, 3, 10, n} {
				name := fmt.Sprintf("states %v from %d, %d at most, give what LIMIT/OFFSET gave", statuses, offset, limit)
				t.Run(name, func(t *testing.T) {
					rd := resultRead{statuses: statuses, limit: limit}
					if statuses == nil {
						rd.from = offset
					} else {
						rd.skip = offset
					}
					var got []int
					err := store.readResults(context.Background(), jobID, rd, func(r NumberResult) error {
						got = append(got, r.Position)
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
					want := offsetPositions(t, store, jobID, statuses, offset, limit)
					if !slices.Equal(got, want) {
						t.Fatalf("got %v, want %v", got, want)
					}
				})
			}
		}
	}
	t.Run("eachResult with a number counts its offset in matches", func(t *testing.T) {
		var got []string
		for _, offset := range []int{0, 1} {
			err := store.eachResult(context.Background(), jobID, "15550000004", offset, -1, func(r NumberResult) error {
				got = append(got, fmt.Sprintf("%d %s", offset, r.Number))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(got, []string{"0 15550000004"}) {
			t.Fatalf("got %v, want the number at offset 0 only", got)
		}
	})
}

// queryPlan returns SQLite's plan for a query, one detail a line.
func queryPlan(t *testing.T, db *sql.DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n")
}

func TestTheResultReadsUseTheirIndexes(t *testing.T) {
	store, jobID := mixedJobFixture(t, newTestDB(t), 10) // SQLite's query plans
	cases := []struct {
		name  string
		rd    resultRead
		want  string
		never string
	}{
		{"a number is found through job_numbers_number", resultRead{number: "15550000004", limit: -1},
			"USING INDEX job_numbers_number (number=? AND job_id=?)", "SCAN"},
		{"a page seeks on the primary key", resultRead{from: 5, limit: 3},
			"USING PRIMARY KEY (job_id=? AND position>?)", "SCAN"},
		{"a filter reads the job's range of the primary key", resultRead{statuses: []numberStatus{numberFailed}, limit: 3},
			"USING PRIMARY KEY (job_id=?)", "SCAN job_numbers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			query, args := c.rd.query(store, jobID)
			plan := queryPlan(t, store.r, query, args...)
			if !strings.Contains(plan, c.want) || strings.Contains(plan, c.never) {
				t.Fatalf("plan:\n%s\nwant %q, never %q", plan, c.want, c.never)
			}
		})
	}
	t.Run("the history walks job_numbers_number and probes jobs by id", func(t *testing.T) {
		plan := queryPlan(t, store.r, numberHistorySQL, "15550000004", 1<<62, 1, 20)
		if !strings.Contains(plan, "SEARCH n USING INDEX job_numbers_number (number=? AND job_id<?)") ||
			!strings.Contains(plan, "SEARCH j USING INTEGER PRIMARY KEY (rowid=?)") || strings.Contains(plan, "TEMP B-TREE") {
			t.Fatalf("plan:\n%s", plan)
		}
	})
}
