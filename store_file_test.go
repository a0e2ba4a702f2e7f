//go:build unix

package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// withUmask sets the process umask for the test and restores it after.
func withUmask(t *testing.T, mask int) {
	t.Helper()
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

// wantPrivate fails the test unless every named file exists with mode 0600.
func wantPrivate(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(p), err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), mode)
		}
	}
}

func TestFilesArePrivateWhateverTheUmask(t *testing.T) {
	withUmask(t, 0o022)
	t.Run("the database of a server, its -wal, -shm and lock files are 0600", func(t *testing.T) {
		s := startServer(t, "-dev")
		got := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": []string{"15551230111"}})
		if got.Status != http.StatusOK {
			t.Fatalf("restore: status=%d", got.Status)
		}
		wantPrivate(t, s.DB, s.DB+"-wal", s.DB+"-shm", s.DB+".lock")
	})
	t.Run("a database made by user add is 0600", func(t *testing.T) {
		db := newTestDB(t)
		addUser(t, db, "alice")
		wantPrivate(t, db)
	})
	t.Run("an open store's -wal and -shm are 0600", func(t *testing.T) {
		db := newTestDB(t)
		store, err := openStore(db)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		if err := store.createUser(context.Background(), "alice", newAPIKey(), newWebhookSecret()); err != nil {
			t.Fatal(err)
		}
		wantPrivate(t, db, db+"-wal", db+"-shm")
	})
	t.Run("a backup is 0600", func(t *testing.T) {
		db := newTestDB(t)
		addUser(t, db, "alice")
		out := filepath.Join(t.TempDir(), "copy.db")
		if err := run(context.Background(), []string{"backup", "-db", db, out}, mapEnv(nil), nil, io.Discard, io.Discard); err != nil {
			t.Fatalf("backup: %v", err)
		}
		wantPrivate(t, out)
		entries, err := os.ReadDir(filepath.Dir(out))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			wantPrivate(t, filepath.Join(filepath.Dir(out), e.Name()))
		}
	})
	t.Run("a backup that fails leaves no file behind", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "not-a-database.db")
		if err := os.WriteFile(db, []byte(strings.Repeat("garbage ", 1000)), 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "copy.db")
		if err := run(context.Background(), []string{"backup", "-db", db, out}, mapEnv(nil), nil, io.Discard, io.Discard); err == nil {
			t.Fatal("backup of a file that is not a database succeeded")
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("after a failed backup, stat %s: %v, want it absent", out, err)
		}
	})
}

func TestMissingDatabaseFolderIsNamed(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-folder")
	db := filepath.Join(missing, "x.db")
	cases := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"serve", "", []string{"serve", "-db", db, "-addr", "127.0.0.1:0"}},
		{"user add", "", []string{"user", "add", "-db", db, "alice"}},
		{"user list", "", []string{"user", "list", "-db", db}},
		{"numbers import", "number,state\n15550000001,released\n", []string{"numbers", "import", "-db", db, "-user", "alice", "-"}},
		{"backup", "", []string{"backup", "-db", db, filepath.Join(t.TempDir(), "copy.db")}},
	}
	for _, c := range cases {
		t.Run(c.name+" names the folder that does not exist", func(t *testing.T) {
			err := run(context.Background(), c.args, mapEnv(nil), strings.NewReader(c.stdin), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), "folder "+missing+" does not exist") {
				t.Fatalf("err=%v, want one saying folder %s does not exist", err, missing)
			}
		})
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("the missing folder exists after the commands: %v", err)
	}
}
