package main

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The admin commands and the database file: only serve and user add create
// one, and say so; the others fail naming the path. An admin command takes
// nothing but -db from the environment.

// TestAdminCommandsNeedAnExistingDatabase checks that every admin command but user add fails on a missing file, naming it, and creates nothing.
func TestAdminCommandsNeedAnExistingDatabase(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"user list", []string{"user", "list"}},
		{"user del", []string{"user", "del", "alice"}},
		{"user rotate-secret", []string{"user", "rotate-secret", "alice"}},
		{"numbers import", []string{"numbers", "import", "-user", "alice", "-"}},
		{"check", []string{"check"}},
		{"backup", []string{"backup", filepath.Join(t.TempDir(), "copy.db")}},
	}
	for _, c := range cases {
		t.Run(c.name+" on a missing file fails naming it and creates nothing", func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "missing.db")
			out, errOut, err := runCLI(t, nil, "number,state\n15551230001,active\n", append(c.args, "-db", db)...)
			if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), db) {
				t.Fatalf("err=%v, want a failure (not a usage error) naming %s", err, db)
			}
			if out != "" || errOut != "" {
				t.Fatalf("printed stdout %q, stderr %q; want nothing but the error", out, errOut)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
				t.Fatalf("files created: %v", left)
			}
		})
	}
}

// serveOnce runs `serve` on db until it is listening, stops it, and
// returns what it wrote on stderr.
func serveOnce(t *testing.T, db string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-addr", "127.0.0.1:0", "-db", db, "-shutdown-timeout", "5s"}, mapEnv(nil), nil, io.Discard, &stderr)
	}()
	waitFor(t, 15*time.Second, "serve to listen", func() bool { return strings.Contains(stderr.String(), "bulkrestore listening") })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s")
	}
	return stderr.String()
}

// TestUserAddAndServeSayWhenTheyCreateTheDatabase checks the one line on stderr when user add or serve creates the file, and none after.
func TestUserAddAndServeSayWhenTheyCreateTheDatabase(t *testing.T) {
	t.Run("user add says so the first time only", func(t *testing.T) {
		db := newTestDB(t)
		_, errOut, err := runCLI(t, nil, "", "user", "add", "-db", db, "alice")
		if err != nil || errOut != "created database "+db+"\n" {
			t.Fatalf("first user add: err=%v, stderr %q; want %q", err, errOut, "created database "+db+"\n")
		}
		_, errOut, err = runCLI(t, nil, "", "user", "add", "-db", db, "bob")
		if err != nil || errOut != "" {
			t.Fatalf("second user add: err=%v, stderr %q; want nothing", err, errOut)
		}
	})
	t.Run("a bad name creates no database", func(t *testing.T) {
		db := newTestDB(t)
		if _, _, err := runCLI(t, nil, "", "user", "add", "-db", db, "bad name"); !errors.Is(err, errUsage) {
			t.Fatalf("err=%v, want a usage error", err)
		}
		if databaseExists(db) {
			t.Fatal("a refused user add created the database")
		}
	})
	t.Run("serve logs it the first time only", func(t *testing.T) {
		db := newTestDB(t)
		if first := serveOnce(t, db); strings.Count(first, `msg="created database" db=`+db) != 1 {
			t.Fatalf("first serve's log lacks one created database line:\n%s", first)
		}
		if second := serveOnce(t, db); strings.Contains(second, "created database") {
			t.Fatalf("second serve says it created the database:\n%s", second)
		}
	})
}

// TestNumbersImportTakesTheUserFromTheCommandLineOnly checks that BULKRESTORE_USER, the client's setting, never picks the import's user, while BULKRESTORE_DB still picks the file.
func TestNumbersImportTakesTheUserFromTheCommandLineOnly(t *testing.T) {
	db := newTestDB(t)
	addUser(t, db, "alice")
	env := map[string]string{"BULKRESTORE_DB": db, "BULKRESTORE_USER": "alice", "BULKRESTORE_API_KEY": "k"}
	const csv = "number,state\n15551230001,released\n"
	_, _, err := runCLI(t, env, csv, "numbers", "import", "-")
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "-user NAME is required") {
		t.Fatalf("import without -user: err=%v, want a usage error asking for -user", err)
	}
	if rows := inventoryRows(t, db, "alice"); len(rows) != 0 {
		t.Fatalf("import without -user wrote alice's inventory: %v", rows)
	}
	if _, _, err := runCLI(t, env, csv, "numbers", "import", "-user", "alice", "-"); err != nil {
		t.Fatalf("import with -user and BULKRESTORE_DB: %v", err)
	}
	if rows := inventoryRows(t, db, "alice"); len(rows) != 1 {
		t.Fatalf("alice's inventory: %v, want one row", rows)
	}
}

// TestUserCommandsPrintFieldsInTheContractsOrder checks the JSON lines of user add, list and rotate-secret, username first.
func TestUserCommandsPrintFieldsInTheContractsOrder(t *testing.T) {
	db := newTestDB(t)
	cases := []struct {
		name  string
		args  []string
		start string
	}{
		{"user add", []string{"user", "add", "-db", db, "alice"}, `{"username":"alice","api_key":"`},
		{"user list", []string{"user", "list", "-db", db}, `{"username":"alice","created_at":"20`},
		{"user rotate-secret", []string{"user", "rotate-secret", "-db", db, "alice"}, `{"username":"alice","webhook_secret":"whsec_`},
	}
	for _, c := range cases {
		t.Run(c.name+" prints username first", func(t *testing.T) {
			out, _, err := runCLI(t, nil, "", c.args...)
			if err != nil || !strings.HasPrefix(out, c.start) || strings.Count(out, "\n") != 1 {
				t.Fatalf("got %q (%v), want one line starting %q", out, err, c.start)
			}
		})
	}
}
