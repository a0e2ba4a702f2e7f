package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
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
		{"user rotate-key", []string{"user", "rotate-key", "alice"}},
		{"numbers import", []string{"numbers", "import", "-user", "alice", "-"}},
		{"numbers export", []string{"numbers", "export", "-user", "alice"}},
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

// TestCLIUserRotateKey checks user rotate-key: a new key printed with the
// user's name, the old key kept for -overlap (24h unless given), and the
// mistakes.
func TestCLIUserRotateKey(t *testing.T) {
	forEachStore(t, testCLIUserRotateKey)
}

// testCLIUserRotateKey runs TestCLIUserRotateKey on one database.
func testCLIUserRotateKey(t *testing.T, db string) {
	first, _ := addUser(t, db, "alice")
	rotate := func(args ...string) (rotatedKeyJSON, error) {
		t.Helper()
		out, _, err := runCLI(t, nil, "", append([]string{"user", "rotate-key", "-db", db}, args...)...)
		var got rotatedKeyJSON
		if err == nil {
			dec := json.NewDecoder(strings.NewReader(out))
			dec.DisallowUnknownFields()
			if derr := dec.Decode(&got); derr != nil || got.Username != "alice" || len(got.APIKey) < 32 || strings.Count(out, "\n") != 1 {
				t.Fatalf("rotate-key printed %q (%v), want one line with username and api_key", out, derr)
			}
		}
		return got, err
	}
	works := func(key string) bool {
		s, err := openStore(db)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, err = s.authenticate(context.Background(), "alice", key)
		return err == nil
	}
	second, err := rotate("alice")
	if err != nil || !works(first) || !works(second.APIKey) {
		t.Fatalf("after a rotation with the default overlap (err %v): old works %v, new works %v; want both", err, works(first), works(second.APIKey))
	}
	third, err := rotate("-overlap", "0", "alice")
	if err != nil || works(second.APIKey) || !works(third.APIKey) {
		t.Fatalf("after -overlap 0 (err %v): old works %v, new works %v; want the new one alone", err, works(second.APIKey), works(third.APIKey))
	}
	for _, c := range []struct {
		name  string
		args  []string
		usage bool
	}{
		{"an overlap past 30 days is a usage error", []string{"-overlap", "721h", "alice"}, true},
		{"a negative overlap is a usage error", []string{"-overlap", "-1h", "alice"}, true},
		{"an overlap that is no duration is a usage error", []string{"-overlap", "1d", "alice"}, true},
		{"an unknown user is an error naming it", []string{"bob"}, false},
	} {
		t.Run(c.name+", and the key stays", func(t *testing.T) {
			_, err := rotate(c.args...)
			if err == nil || errors.Is(err, errUsage) != c.usage || !c.usage && err.Error() != `user rotate-key: no user "bob"` {
				t.Fatalf("err=%v, want a failure (usage error: %v)", err, c.usage)
			}
			if !works(third.APIKey) {
				t.Fatal("a refused rotation changed the key")
			}
		})
	}
}

// TestCLINumbersExportAndReplace checks numbers export (standard output, a
// private file written whole) and numbers import -replace.
func TestCLINumbersExportAndReplace(t *testing.T) {
	forEachStore(t, testCLINumbersExportAndReplace)
}

// testCLINumbersExportAndReplace runs TestCLINumbersExportAndReplace on one database.
func testCLINumbersExportAndReplace(t *testing.T, db string) {
	addUser(t, db, "alice")
	importCSV(t, db, "alice", "number,state,released_at\n15551230002,active,2026-01-01 00:00:00\n15551230001,released,2026-01-01T00:00:00.5Z\n")
	want := "number,state,released_at,requires_identity_update,needs_registration\n" +
		"15551230001,released,2026-01-01T00:00:00.5Z,0,0\n15551230002,active,2026-01-01T00:00:00Z,0,0\n"
	for _, dest := range [][]string{nil, {"-"}} { // standard output: no FILE, or -
		out, _, err := runCLI(t, nil, "", append([]string{"numbers", "export", "-db", db, "-user", "alice"}, dest...)...)
		if err != nil || out != want {
			t.Fatalf("export to %q: %v\n%q\nwant\n%q", dest, err, out, want)
		}
	}
	file := filepath.Join(t.TempDir(), "alice.csv")
	if out, _, err := runCLI(t, nil, "", "numbers", "export", "-db", db, "-user", "alice", file); err != nil || out != "" {
		t.Fatalf("export to a file: %v, printed %q", err, out)
	}
	data, err := os.ReadFile(file)
	info, _ := os.Stat(file)
	if err != nil || string(data) != want || info.Mode().Perm() != 0o600 {
		t.Fatalf("file %q (%v), mode %v; want the CSV, mode 0600", data, err, info.Mode())
	}
	t.Run("an unknown user is an error and writes no file", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "bob.csv")
		_, _, err := runCLI(t, nil, "", "numbers", "export", "-db", db, "-user", "bob", other)
		if err == nil || err.Error() != `numbers export: no user "bob"` {
			t.Fatalf("err=%v", err)
		}
		if _, err := os.Stat(other); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a file was written: %v", err)
		}
	})
	t.Run("two files is a usage error", func(t *testing.T) {
		if _, _, err := runCLI(t, nil, "", "numbers", "export", "-db", db, "-user", "alice", "a.csv", "b.csv"); !errors.Is(err, errUsage) {
			t.Fatalf("err=%v, want a usage error", err)
		}
	})
	t.Run("import -replace deletes what the file lacks, and says so", func(t *testing.T) {
		out, _, err := runCLI(t, nil, "number,state\n15551230003,active\n15551230002,active\n", "numbers", "import", "-db", db, "-user", "alice", "-replace", "-")
		if err != nil || out != "imported 2 numbers for user alice; deleted 1 not in the file\n" {
			t.Fatalf("import -replace: %v, printed %q", err, out)
		}
		if rows := inventoryRows(t, db, "alice"); len(rows) != 2 || rows["15551230003"].State != "active" {
			t.Fatalf("rows %v, want 15551230002 and 15551230003", rows)
		}
	})
}

// TestCLIAndAdminAPIGiveTheSameResults runs the user and numbers commands
// beside a server and checks that they and the admin API see and do the
// same: the CLI's user list is the API's, and an import by either is
// exported alike by both.
func TestCLIAndAdminAPIGiveTheSameResults(t *testing.T) {
	forEachStore(t, testCLIAndAdminAPIGiveTheSameResults)
}

// testCLIAndAdminAPIGiveTheSameResults runs TestCLIAndAdminAPIGiveTheSameResults on one database.
func testCLIAndAdminAPIGiveTheSameResults(t *testing.T, db string) {
	s := startAdminServer(t, "-db", db, "-dev")
	addUser(t, s.DB, "bycli")
	adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "byapi"})
	importCSV(t, s.DB, "bycli", inventoryCSV(15557000000, 7))
	if status, _, raw := putInventory(t, s, "byapi", "", "text/csv", inventoryCSV(15558000000, 5)); status != http.StatusOK {
		t.Fatalf("import: %d %s", status, raw)
	}
	out, _, err := runCLI(t, nil, "", "user", "list", "-db", s.DB)
	if err != nil {
		t.Fatal(err)
	}
	var fromAPI struct {
		Users []json.RawMessage `json:"users"`
	}
	if err := json.Unmarshal(adminCall(t, s, http.MethodGet, "/admin/v1/users", nil).Raw, &fromAPI); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, u := range fromAPI.Users {
		lines = append(lines, string(u))
	}
	if got := strings.TrimSuffix(out, "\n"); got != strings.Join(lines, "\n") {
		t.Fatalf("user list printed\n%s\nthe API lists\n%s", got, strings.Join(lines, "\n"))
	}
	if !strings.Contains(out, `{"username":"bycli","created_at":`) || !strings.Contains(out, `"inventory_numbers":7}`) {
		t.Fatalf("user list lacks bycli's counts:\n%s", out)
	}
	for _, user := range []string{"bycli", "byapi"} {
		cli, _, err := runCLI(t, nil, "", "numbers", "export", "-db", s.DB, "-user", user)
		if status, api := getInventory(t, s, user); err != nil || status != http.StatusOK || cli != api {
			t.Fatalf("%s: the CLI exports (%v)\n%s\nthe API (%d)\n%s", user, err, cli, status, api)
		}
	}
}
