//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDatabaseLock(t *testing.T) {
	t.Run("a second hold on the same file fails naming the file and this pid", func(t *testing.T) {
		db := newTestDB(t)
		first, err := lockDatabase(db)
		if err != nil {
			t.Fatalf("first lock: %v", err)
		}
		defer first.release()
		second, err := lockDatabase(db)
		if err == nil {
			second.release()
			t.Fatal("second lock taken while the first is held")
		}
		for _, want := range []string{"in use", db, "pid " + strconv.Itoa(os.Getpid())} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not contain %q", err, want)
			}
		}
	})
	t.Run("a released lock can be taken again", func(t *testing.T) {
		db := newTestDB(t)
		first, err := lockDatabase(db)
		if err != nil {
			t.Fatal(err)
		}
		if err := first.release(); err != nil {
			t.Fatalf("release: %v", err)
		}
		again, err := lockDatabase(db)
		if err != nil {
			t.Fatalf("lock after release: %v", err)
		}
		again.release()
	})
	t.Run("a second serve on a served file fails at once and the first keeps serving", func(t *testing.T) {
		s := startServer(t, "-dev")
		var stderr bytes.Buffer
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // should it start, it stops
		defer cancel()
		err := run(ctx, []string{"serve", "-db", s.DB, "-addr", "127.0.0.1:0"}, mapEnv(nil), nil, &stderr, &stderr)
		if err == nil || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), s.DB) {
			t.Fatalf("second serve: err=%v, want one saying %s is in use", err, s.DB)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("second serve took %s to fail, want under 5s", d)
		}
		if got := call(t, "GET", s.URL+"/v3/bulk_restore_jobs", "demo", "demo", nil); got.Status != 200 {
			t.Fatalf("first server after the second's attempt: status=%d, want 200", got.Status)
		}
	})
}

// TestOneServerPerDatabaseFile runs the binary: a second `serve` on a file
// a running one holds exits non-zero at once, the admin commands work
// beside it, and the lock is free again after a clean stop and after
// kill -9.
func TestOneServerPerDatabaseFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs child processes; skipped under -short")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "x.db")
	key := binAddUser(t, bin, db, "alice")
	first := startChild(t, bin, "-db", db)

	t.Run("a second serve exits non-zero at once naming the file and the holder's pid", func(t *testing.T) {
		start := time.Now()
		out, code := runBin(t, bin, "", "serve", "-db", db, "-addr", "127.0.0.1:0")
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("second serve took %s, want under 5s", d)
		}
		if code == 0 {
			t.Fatalf("second serve exited 0, want non-zero: %s", out)
		}
		for _, want := range []string{"in use", db, "pid " + strconv.Itoa(first.cmd.Process.Pid)} {
			if !strings.Contains(out, want) {
				t.Fatalf("second serve said %q, want it to contain %q", out, want)
			}
		}
		if !healthy(first.URL) {
			t.Fatal("the first server stopped answering")
		}
	})
	t.Run("the admin commands work beside the running server", func(t *testing.T) {
		binAddUser(t, bin, db, "bob")
		csv := "number,state\n15550000001,released\n"
		cmds := []struct {
			stdin string
			args  []string
		}{
			{"", []string{"user", "list", "-db", db}},
			{csv, []string{"numbers", "import", "-db", db, "-user", "alice", "-"}},
			{"", []string{"backup", "-db", db, filepath.Join(dir, "copy.db")}},
			{"", []string{"check", "-db", db}},
			{"", []string{"user", "del", "-db", db, "bob"}},
		}
		for _, c := range cmds {
			if out, code := runBin(t, bin, c.stdin, c.args...); code != 0 {
				t.Fatalf("%q beside the server: exit %d: %s", c.args, code, out)
			}
		}
		got := call(t, "POST", first.URL+"/v3/bulk_restore", "alice", key, map[string]any{"numbers": []string{"15550000001"}})
		if got.Status != 200 || got.Body["success_count"] != float64(1) {
			t.Fatalf("restore of the number imported beside the server: status=%d: %s", got.Status, got.Raw)
		}
	})
	t.Run("after a clean stop a new server starts", func(t *testing.T) {
		if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-first.done:
		case <-time.After(20 * time.Second):
			t.Fatal("first server did not exit within 20s of SIGTERM")
		}
		startChild(t, bin, "-db", db).kill9(t)
	})
	t.Run("after kill -9 a new server starts", func(t *testing.T) {
		startChild(t, bin, "-db", db) // startChild fails the test if it exits at start
	})
}

// runBin runs the binary to its end (at most 30s) and returns what it
// wrote to standard output and error, and its exit code.
func runBin(t *testing.T, bin, stdin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv()
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%q did not end within 30s: %s", args, out)
	}
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("run %q: %v", args, err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}
