package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// addTrigger installs SQL on the server's database from a connection of
// its own, as an operator's sqlite3 shell would.
func addTrigger(t *testing.T, db, ddl string) {
	t.Helper()
	if _, err := openTestDB(t, db).Exec(ddl); err != nil {
		t.Fatalf("install trigger: %v", err)
	}
}

// metricValue returns the value of one series from /metrics, or -1.
func metricValue(t *testing.T, base, series string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return -1
}

// readyStatus is the HTTP status of /readyz.
func readyStatus(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestResultsThatCanNeverBeWrittenFailOnlyWhatTheyConcern(t *testing.T) {
	t.Run("a number whose success cannot be stored is recorded as an internal failure, alone", func(t *testing.T) {
		s := startServer(t, "-dev")
		const bad = "15551230150"
		addTrigger(t, s.DB, `CREATE TRIGGER refuse_one BEFORE UPDATE OF status ON job_numbers
			WHEN NEW.number = '`+bad+`' AND NEW.status = 'success'
			BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END`)
		numbers := seqNumbers(15551230140, 20) // 15551230140-159, bad among them
		_, done := submitAndFinishAs(t, s, "demo", "demo", numbers)
		for _, r := range results(t, done.Body) {
			switch {
			case r["number"] == bad:
				if r["status"] != "failed" || r["status_code"] != float64(500) {
					t.Fatalf("the refused number: %v, want failed with 500", r)
				}
			case r["status_code"] == float64(500):
				t.Fatalf("number %v failed with 500 too; only %s should", r["number"], bad)
			}
		}
		if v := metricValue(t, s.URL, `bulkrestore_store_errors_total{class="permanent"}`); v < 1 {
			t.Fatalf("permanent store errors counted %v, want at least 1", v)
		}
		if got := readyStatus(t, s.URL); got != http.StatusOK {
			t.Fatalf("/readyz=%d after a permanent failure, want 200 (nothing transient is wrong)", got)
		}
		checkNoRetryLoop(t, s)
	})

	t.Run("a job none of whose results can be stored is stopped, and the others go on", func(t *testing.T) {
		hold := make(chan struct{}) // the first job's answers wait for the trigger
		f := newUpstreamFake(t, func(number string, _ int) upstreamAnswer {
			if strings.HasPrefix(number, "1555500") {
				<-hold
			}
			return upstreamAnswer{body: `{"message":"Number restored"}`}
		})
		s, key := startUpstreamServer(t, f.URL+"/v3/restore/{number}", "-shutdown-timeout", "3s")
		first := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "alice", key,
			map[string]any{"numbers": seqNumbers(15555000000, 12)})
		if first.Status != http.StatusAccepted {
			t.Fatalf("status=%d: %s", first.Status, first.Raw)
		}
		addTrigger(t, s.DB, `CREATE TRIGGER refuse_job BEFORE UPDATE ON job_numbers
			WHEN NEW.job_id = (SELECT id FROM jobs WHERE uuid = '`+first.Body["job_uuid"].(string)+`')
			BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END`)
		close(hold)
		_, other := submitAndFinishAs(t, s, "alice", key, seqNumbers(15556000000, 12))
		if other.Body["success_count"] != float64(12) {
			t.Fatalf("the other job: %s", other.Raw)
		}
		waitFor(t, 10*time.Second, "the refused job to be given up", func() bool {
			return strings.Contains(s.Logs.String(), "job stopped: its results cannot be written")
		})
		st := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+first.Body["job_uuid"].(string), "alice", key, nil)
		if st.Body["status"] == "completed" {
			t.Fatalf("the refused job completed: %s", st.Raw)
		}
		stopWithin(t, s, 5*time.Second)
	})
}

func TestRecordingWaitsOutAFullDiskAndShutdownStaysBounded(t *testing.T) {
	dir := mountTmpfs(t, "16m")
	db := filepath.Join(dir, "bulkrestore.db")
	up := newGatedUpstream(t)
	args := append(up.upstreamArgs(), "-db", db, "-shutdown-timeout", "2s", "-workers", "64")
	s := startServerEnv(t, upstreamEnv, args...)
	key, _ := addUser(t, db, "alice")
	numbers := seqNumbers(15553000000, 3000)
	resp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "alice", key, map[string]any{"numbers": numbers})
	if resp.Status != http.StatusAccepted {
		t.Fatalf("status=%d: %s", resp.Status, resp.Raw)
	}
	jobUUID := resp.Body["job_uuid"].(string)
	waitFor(t, 10*time.Second, "the workers to hold numbers", func() bool { return up.started.Load() >= 64 })
	emptyWAL(t, db) // else the results may fit in log space the file already has
	filler := fillDisk(t, dir)
	up.open()

	waitFor(t, 20*time.Second, "/readyz to say the writes fail", func() bool { return readyStatus(t, s.URL) == http.StatusServiceUnavailable })
	if v := metricValue(t, s.URL, `bulkrestore_store_errors_total{class="transient"}`); v < 1 {
		t.Fatalf("transient store errors counted %v, want at least 1", v)
	}
	stopWithin(t, s, 4*time.Second) // -shutdown-timeout 2s, with the disk still full
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}

	again := startServerEnv(t, upstreamEnv, args...)
	done := waitJobDone(t, again, "alice", key, jobUUID, 60*time.Second)
	if done.Body["success_count"] != float64(len(numbers)) {
		t.Fatalf("after the restart: %v successes, want %d", done.Body["success_count"], len(numbers))
	}
	if got := readyStatus(t, again.URL); got != http.StatusOK {
		t.Fatalf("/readyz=%d once writes go through, want 200", got)
	}
}

// emptyWAL checkpoints every frame of the database's log into the file and
// truncates the log to nothing, so that the next write must grow it. The
// server's readers may hold the log for a moment, hence the retries.
func emptyWAL(t *testing.T, path string) {
	t.Helper()
	db := openTestDB(t, path)
	waitFor(t, 10*time.Second, "the write-ahead log to be truncated", func() bool {
		var busy, frames, done int
		if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done); err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(path + "-wal")
		return busy == 0 && err == nil && info.Size() == 0
	})
}
