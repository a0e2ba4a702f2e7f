package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// The PostgreSQL of the tests: one throwaway cluster per `go test` run,
// started on first use in a temporary folder on a loopback port, stopped by
// TestMain; a database per test, created from a template that holds the
// migrated schema. Where PostgreSQL's binaries are missing the tests that
// need it skip, saying so, except under CI=true, where they fail.

// TestMain runs the tests, then stops the test cluster if one was started.
func TestMain(m *testing.M) {
	code := m.Run()
	testPG.stop()
	os.Exit(code)
}

// pgCluster is a running PostgreSQL cluster of the tests.
type pgCluster struct {
	bin    string // folder of initdb, pg_ctl, postgres
	dir    string // the temporary folder: data, socket, log
	port   int
	asUser string // run the binaries as this system user (PostgreSQL refuses root); "" for ourselves
	admin  *sql.DB
	seq    atomic.Int64
}

// testPGState is the cluster of this run, started once.
type testPGState struct {
	once    sync.Once
	cluster *pgCluster
	err     error
}

// testPG is the one cluster of a test run.
var testPG testPGState

// pgTemplate is the database every test database is copied from.
const pgTemplate = "bulkrestore_template"

// pgBinDir finds PostgreSQL's server binaries: version 15's folder, else
// another version's (Debian's layout), else initdb in PATH.
func pgBinDir() (string, error) {
	const v15 = "/usr/lib/postgresql/15/bin"
	if _, err := os.Stat(filepath.Join(v15, "initdb")); err == nil {
		return v15, nil
	}
	if found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(found) > 0 {
		return filepath.Dir(found[len(found)-1]), nil
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", errors.New("PostgreSQL's initdb is neither in /usr/lib/postgresql/*/bin nor in PATH (apt-get install postgresql)")
	}
	return filepath.Dir(p), nil
}

// requirePG returns the test cluster, starting it on first use; without
// PostgreSQL the test skips (fails under CI=true).
func requirePG(t testing.TB) *pgCluster {
	t.Helper()
	testPG.once.Do(func() { testPG.cluster, testPG.err = startPGCluster() })
	if testPG.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is needed under CI: %v", testPG.err)
		}
		t.Skipf("no PostgreSQL for this test: %v", testPG.err)
	}
	return testPG.cluster
}

// stop stops the cluster, if one was started, and removes its folder.
func (s *testPGState) stop() {
	if s.cluster != nil {
		s.cluster.admin.Close()
		s.cluster.ctl("stop", "-m", "immediate")
		os.RemoveAll(s.cluster.dir)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startPGCluster creates and starts a cluster: fsync off (a test's data
// need not survive a crash of the machine), trust authentication on
// loopback only, and a template database with the schema.
func startPGCluster() (*pgCluster, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	c := &pgCluster{bin: bin}
	var owner *user.User
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: the folder goes to the
		// postgres system user, who runs the binaries.
		if owner, err = user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root and there is no postgres user to run PostgreSQL as: %w", err)
		}
		c.asUser = "postgres"
	}
	reapOrphanClusters(bin, c.asUser)
	if c.dir, err = newClusterDir(); err != nil {
		return nil, err
	}
	dir := c.dir
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	if out, err := c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	if err := c.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if c.admin, err = sql.Open("pgx", c.url("postgres")); err != nil {
		c.ctl("stop", "-m", "immediate")
		return nil, err
	}
	if err := c.makeTemplate(); err != nil {
		c.admin.Close()
		c.ctl("stop", "-m", "immediate")
		return nil, err
	}
	return c, nil
}

// data is the cluster's data folder.
func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

// start starts the server on a free port and waits for it (at most a minute).
func (c *pgCluster) start() error {
	var lastErr error
	for try := 0; try < 5; try++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "+
			"-c full_page_writes=off -c max_connections=500 -c shared_buffers=64MB", port, c.dir)
		out, err := c.ctl("start", "-w", "-t", "60", "-l", filepath.Join(c.dir, "log"), "-o", opts)
		if err == nil {
			c.port = port
			return nil
		}
		lastErr = fmt.Errorf("pg_ctl start: %v: %s", err, out)
	}
	return lastErr
}

// run runs one of PostgreSQL's binaries, as the cluster's user.
func (c *pgCluster) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	if c.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser, "--", filepath.Join(c.bin, name)}, args...)...)
	}
	cmd.Dir = c.dir
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			if cmd.Process != nil {
				cmd.Process.Kill()
			}
		case <-done:
		}
	}()
	out, err := cmd.CombinedOutput()
	close(done)
	return out, err
}

// ctl runs pg_ctl on the cluster.
func (c *pgCluster) ctl(args ...string) ([]byte, error) {
	return c.run("pg_ctl", append([]string{"-D", c.data()}, args...)...)
}

// restart restarts the server on the same port (pg_ctl restart), for the
// tests of an outage.
func (c *pgCluster) restart(t testing.TB) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "+
		"-c full_page_writes=off -c max_connections=500 -c shared_buffers=64MB", c.port, c.dir)
	if out, err := c.ctl("restart", "-m", "fast", "-w", "-t", "60", "-l", filepath.Join(c.dir, "log"), "-o", opts); err != nil {
		t.Fatalf("pg_ctl restart: %v: %s", err, out)
	}
}

// url is the URL of a database of the cluster.
func (c *pgCluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// makeTemplate creates the template database and migrates it.
func (c *pgCluster) makeTemplate() error {
	if _, err := c.admin.Exec("CREATE DATABASE " + pgTemplate); err != nil {
		return err
	}
	s, err := openPGStore(context.Background(), c.url(pgTemplate), time.Minute)
	if err != nil {
		return fmt.Errorf("migrate the template: %w", err)
	}
	return s.Close()
}

// newDatabase creates a database for the test, dropped at its end: a copy
// of the migrated template, or empty (no schema at all) when empty is set.
func (c *pgCluster) newDatabase(t testing.TB, empty bool) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), c.seq.Add(1))
	template := pgTemplate
	if empty {
		template = "template0"
	}
	if _, err := c.admin.Exec("CREATE DATABASE " + name + " TEMPLATE " + template + " STRATEGY FILE_COPY"); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := c.admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	return c.url(name)
}

// newPGDatabase returns the URL of a fresh, migrated database of the test
// cluster (skipping the test without PostgreSQL).
func newPGDatabase(t testing.TB) string {
	t.Helper()
	return requirePG(t).newDatabase(t, false)
}

// pgConn opens a plain connection to a test database, closed at cleanup,
// for tests that look at or change rows behind the service's back.
func pgConn(t testing.TB, url string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	return db
}

// forEachStore runs fn as two subtests, on a fresh SQLite file and on a
// fresh PostgreSQL database: the behaviour under test must hold on both.
func forEachStore(t *testing.T, fn func(t *testing.T, db string)) {
	t.Helper()
	t.Run("on SQLite", func(t *testing.T) { fn(t, newTestDB(t)) })
	t.Run("on PostgreSQL", func(t *testing.T) { fn(t, newPGDatabase(t)) })
}

// onPG reports whether db names a PostgreSQL database.
func onPG(db string) bool { return strings.HasPrefix(db, "postgres") }

// anotherDB returns a fresh database of the same kind as db (a SQLite file
// or a PostgreSQL database), for a test that needs several.
func anotherDB(t testing.TB, db string) string {
	t.Helper()
	if onPG(db) {
		return newPGDatabase(t)
	}
	return newTestDB(t)
}

// testSQL is a database opened for a test's own look at its rows, taking
// statements in SQLite's dialect on either database (placeholders are
// rebound for PostgreSQL).
type testSQL struct {
	*sql.DB
	d *dialect
}

// rawSQL opens db for a test's own statements, closed at cleanup.
func rawSQL(t testing.TB, db string) testSQL {
	t.Helper()
	if onPG(db) {
		return testSQL{pgConn(t, db), pgDialect}
	}
	raw, err := sql.Open("sqlite", dsn(db))
	if err != nil {
		t.Fatalf("open %s: %v", db, err)
	}
	t.Cleanup(func() { raw.Close() })
	return testSQL{raw, sqliteDialect}
}

// QueryRow runs a statement written in SQLite's dialect.
func (db testSQL) QueryRow(query string, args ...any) *sql.Row {
	return db.DB.QueryRow(db.d.q(query), args...)
}

// Query runs a statement written in SQLite's dialect.
func (db testSQL) Query(query string, args ...any) (*sql.Rows, error) {
	return db.DB.Query(db.d.q(query), args...)
}

// Exec runs a statement written in SQLite's dialect.
func (db testSQL) Exec(query string, args ...any) (sql.Result, error) {
	return db.DB.Exec(db.d.q(query), args...)
}
