package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startServiceWith starts a service (no listener) with flags and an
// optional backend, serves its handler on loopback, and stops both at
// cleanup.
func startServiceWith(t *testing.T, restorer Restorer, args ...string) (*service, *httptest.Server) {
	t.Helper()
	return startServiceConfigured(t, func(cfg *serveConfig) { cfg.restorer = restorer }, args...)
}

// startServiceConfigured is startServiceWith for a test that sets more of
// the configuration than the flags can (configure runs after them).
func startServiceConfigured(t *testing.T, configure func(*serveConfig), args ...string) (*service, *httptest.Server) {
	t.Helper()
	cfg, err := parseServeFlags(append([]string{"-db", newTestDB(t), "-shutdown-timeout", "5s"}, args...), mapEnv(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	configure(&cfg)
	svc, err := startService(context.Background(), cfg, slog.New(slog.NewTextHandler(&testLogWriter{t: t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.app.routes())
	t.Cleanup(func() { srv.Close(); svc.stop() })
	return svc, srv
}

// panickyBackend panics for one number and restores every other.
type panickyBackend struct{ bad string }

// Restore implements Restorer.
func (b panickyBackend) Restore(_ context.Context, _ int64, number string) Outcome {
	if number == b.bad {
		panic("backend bug for " + number)
	}
	return Outcome{Success: true, StatusCode: 200, Message: msgRestored}
}

func TestAPanicInARestoreFailsThatNumberOnly(t *testing.T) {
	forEachStore(t, testAPanicInARestoreFailsThatNumberOnly)
}

// testAPanicInARestoreFailsThatNumberOnly runs TestAPanicInARestoreFailsThatNumberOnly on one database.
func testAPanicInARestoreFailsThatNumberOnly(t *testing.T, db string) {
	_, srv := startServiceWith(t, panickyBackend{bad: "15551230113"}, "-dev", "-db", db)
	for _, n := range []int{3, 12} { // synchronous, then queued
		numbers := seqNumbers(15551230111, n)
		resp := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": numbers})
		body := resp.Body
		if resp.Status == http.StatusAccepted {
			body = waitJobDone(t, &testServer{URL: srv.URL}, "demo", "demo", resp.Body["job_uuid"].(string), 10*time.Second).Body
		}
		for _, r := range results(t, body) {
			want := "success"
			if r["number"] == "15551230113" {
				want = "failed"
				if r["status_code"] != float64(500) || r["message"] != "Error: 'restore failed, please contact support'" {
					t.Fatalf("panicked number: %v", r)
				}
			}
			if r["status"] != want {
				t.Fatalf("%d numbers: %v status=%v, want %s", n, r["number"], r["status"], want)
			}
		}
	}
	if got := call(t, http.MethodGet, srv.URL+"/healthz", "", "", nil); got.Status != http.StatusOK {
		t.Fatalf("healthz=%d after panics, want 200", got.Status)
	}
}

func TestRetentionDeletesOldFinishedJobsInChunks(t *testing.T) {
	forEachStore(t, testRetentionDeletesOldFinishedJobsInChunks)
}

// testRetentionDeletesOldFinishedJobsInChunks runs TestRetentionDeletesOldFinishedJobsInChunks on one database.
func testRetentionDeletesOldFinishedJobsInChunks(t *testing.T, db string) {
	svc, srv := startServiceWith(t, nil, "-dev", "-retention", "1h", "-db", db)
	submit := func(n int) string {
		resp := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": seqNumbers(15551230100, n)})
		id := resp.Body["job_uuid"].(string)
		if resp.Status == http.StatusAccepted {
			waitJobDone(t, &testServer{URL: srv.URL}, "demo", "demo", id, 10*time.Second)
		}
		return id
	}
	old, recent := submit(40), submit(2)
	oldWithWebhookDue := submit(3)
	twoHoursAgo := ms(time.Now().Add(-2 * time.Hour))
	if _, err := svc.store.w.Exec(svc.store.q("UPDATE jobs SET completed_at = ? WHERE uuid IN (?, ?)"), twoHoursAgo, old, oldWithWebhookDue); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.store.w.Exec(svc.store.q("UPDATE jobs SET webhook_url = 'https://example.com/h', webhook_state = 'pending' WHERE uuid = ?"), oldWithWebhookDue); err != nil {
		t.Fatal(err)
	}
	svc.janitor.chunk = 7
	if err := svc.janitor.sweep(context.Background()); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	for _, c := range []struct {
		uuid string
		want int
	}{{old, 0}, {recent, 1}, {oldWithWebhookDue, 1}} {
		if got := countRows(t, svc.store, "SELECT count(*) FROM jobs WHERE uuid = ?", c.uuid); got != c.want {
			t.Fatalf("job %s: rows=%d, want %d", c.uuid, got, c.want)
		}
	}
	orphans := countRows(t, svc.store, "SELECT count(*) FROM job_numbers WHERE job_id NOT IN (SELECT id FROM jobs)") +
		countRows(t, svc.store, "SELECT count(*) FROM attempts WHERE job_id NOT IN (SELECT id FROM jobs)")
	if orphans != 0 {
		t.Fatalf("rows left of deleted jobs: %d", orphans)
	}
}

func TestBackupMakesACopyThatPassesCheck(t *testing.T) {
	s := startServer(t, "-dev")
	call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": []string{"15551230111"}})
	out := filepath.Join(t.TempDir(), "copy.db")
	var stdout strings.Builder
	if err := run(context.Background(), []string{"backup", "-db", s.DB, out}, mapEnv(nil), nil, &stdout, io.Discard); err != nil {
		t.Fatalf("backup: %v", err)
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"check", "-db", out}, mapEnv(nil), nil, &stdout, io.Discard); err != nil {
		t.Fatalf("check of the backup: %v (%s)", err, stdout.String())
	}
	if strings.TrimSpace(stdout.String()) != "ok" {
		t.Fatalf("check printed %q, want ok", stdout.String())
	}
	copyStore, err := openStore(out)
	if err != nil {
		t.Fatal(err)
	}
	jobs := countRows(t, copyStore, "SELECT count(*) FROM jobs")
	copyStore.Close()
	if jobs != 1 {
		t.Fatalf("backup has %d jobs, want 1", jobs)
	}
	if err := run(context.Background(), []string{"backup", "-db", s.DB, out}, mapEnv(nil), nil, io.Discard, io.Discard); err == nil {
		t.Fatal("backup over an existing file succeeded, want an error")
	}
}

func TestCheckReportsADamagedFile(t *testing.T) {
	db := newTestDB(t)
	store, err := openStore(db)
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]InventoryRow, 3000)
	for i := range rows {
		rows[i] = InventoryRow{Number: itoa(15550000000 + i), State: "released", ReleasedAt: time.Now()}
	}
	if err := store.createUser(context.Background(), "eve", "k", newWebhookSecret()); err != nil {
		t.Fatal(err)
	}
	u, _ := store.userByName(context.Background(), "eve")
	if err := store.importInventory(context.Background(), u.ID, rows, false); err != nil {
		t.Fatal(err)
	}
	store.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	store.Close()
	// Overwrite a page in the middle of the inventory's b-tree.
	f, err := os.OpenFile(db, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := f.Stat()
	garbage := strings.Repeat("\xff\x00garbage", 512)
	if _, err := f.WriteAt([]byte(garbage), info.Size()/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var stdout strings.Builder
	err = run(context.Background(), []string{"check", "-db", db}, mapEnv(nil), nil, &stdout, io.Discard)
	if err == nil {
		t.Fatalf("check passed a damaged file: %s", stdout.String())
	}
}

func TestSlowAndOversizedHeadersAreCutOff(t *testing.T) {
	s := startServer(t, "-dev", "-read-header-timeout", "300ms")
	addr := strings.TrimPrefix(s.URL, "http://")
	t.Run("a client that never finishes its headers is disconnected", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n"))
		start := time.Now()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadAll(conn)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read: %v (the server kept the connection open)", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("disconnected after %s, want about 300ms", d)
		}
	})
	t.Run("headers over 64 KiB get 431", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		go conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 200<<10) + "\r\n\r\n"))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.Contains(line, "431") {
			t.Fatalf("status line %q (%v), want 431", line, err)
		}
	})
}

// mountTmpfs mounts a tmpfs of the given size, or skips the test saying why
// this machine cannot.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a size-limited tmpfs here (needs root and mount rights): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fillDisk writes zeros into a file in dir until the disk is full.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for i := 0; i < 100000; i++ {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	for _, size := range []int{4096, 512, 1} { // the last few bytes too
		for i := 0; i < 1000; i++ {
			if _, err := f.Write(make([]byte, size)); err != nil {
				break
			}
		}
	}
	return path
}

func TestFullDiskAnswers503AndRecovers(t *testing.T) {
	dir := mountTmpfs(t, "8m")
	db := filepath.Join(dir, "bulkrestore.db")
	s := startServer(t, "-dev", "-db", db)
	store, err := openStore(db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	jobsBefore := countRows(t, store, "SELECT count(*) FROM jobs")

	filler := fillDisk(t, dir)
	big := map[string]any{"numbers": seqNumbers(15560000000, 5000)}
	got := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", big)
	if got.Status != http.StatusServiceUnavailable {
		t.Fatalf("status=%d with a full disk, want 503: %s", got.Status, got.Raw)
	}
	if n := countRows(t, store, "SELECT count(*) FROM jobs"); n != jobsBefore {
		t.Fatalf("jobs=%d after a refused write, want %d", n, jobsBefore)
	}
	if n := countRows(t, store, "SELECT count(*) FROM job_numbers WHERE job_id NOT IN (SELECT id FROM jobs)"); n != 0 {
		t.Fatalf("%d numbers written without their job", n)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	got = call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", big)
	if got.Status != http.StatusAccepted {
		t.Fatalf("status=%d once space is back, want 202: %s", got.Status, got.Raw)
	}
	done := waitJobDone(t, s, "demo", "demo", got.Body["job_uuid"].(string), 30*time.Second)
	if done.Body["failure_count"] != float64(5000) {
		t.Fatalf("failure_count=%v, want 5000 (numbers not in inventory)", done.Body["failure_count"])
	}
}
