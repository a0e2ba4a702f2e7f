package main

import (
	"net/http"
	"strings"
	"testing"
)

// What serving and the admin commands do with a PostgreSQL URL beyond the
// API: its password stays out of every log line and message, SQLite's
// maintenance commands say what to use instead, and the lease is checked.

func TestPGURLPasswordNeverReachesTheLogs(t *testing.T) {
	db := newPGDatabase(t)
	// The test cluster trusts loopback, so any password is let in: it is
	// here only to be looked for.
	withPassword := strings.Replace(db, "postgres@", "postgres:S3cretPassw0rd@", 1)
	s := startServer(t, "-db", withPassword)
	if r := call(t, http.MethodGet, s.URL+"/readyz", "", "", nil); r.Status != http.StatusOK {
		t.Fatalf("readyz: %d %s", r.Status, r.Raw)
	}
	s.stop()
	logs := s.Logs.String()
	if strings.Contains(logs, "S3cretPassw0rd") {
		t.Fatalf("the password reached the log:\n%s", logs)
	}
	if !strings.Contains(logs, "postgres:xxxxx@") {
		t.Fatalf("the log does not name the database with its password hidden:\n%s", logs)
	}
	_, _, err := runCLI(t, nil, "", "migrate", "-from", newTestDB(t)+".missing", "-to", withPassword)
	if err == nil || strings.Contains(err.Error(), "S3cretPassw0rd") {
		t.Fatalf("migrate's error %v shows the password (or there is none)", err)
	}
	if _, err := openPGStore(t.Context(), "postgres://u:S3cretPassw0rd@[bad", defaultLease); err == nil ||
		strings.Contains(err.Error(), "S3cretPassw0rd") {
		t.Fatalf("an unparsable URL's error %v quotes its password (or there is none)", err)
	}
}

func TestSQLiteOnlyCommandsSayWhatToUseOnPostgreSQL(t *testing.T) {
	db := newPGDatabase(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"backup points at pg_dump", []string{"backup", "-db", db, "out.db"}, "pg_dump"},
		{"check points at PostgreSQL's own tools", []string{"check", "-db", db}, "PostgreSQL's own tools"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runMain(t, nil, c.args...)
			if r.code != 1 || !strings.Contains(r.mainSays, c.want) {
				t.Fatalf("exit %d, said %q; want 1 and %q", r.code, r.mainSays, c.want)
			}
		})
	}
}

func TestLeaseFlagIsChecked(t *testing.T) {
	if _, err := parseServeFlags([]string{"-lease", "10ms"}, mapEnv(nil), nil); err == nil || !strings.Contains(err.Error(), "-lease") {
		t.Fatalf("-lease 10ms: %v, want a usage error naming -lease", err)
	}
	cfg, err := parseServeFlags(nil, mapEnv(map[string]string{"BULKRESTORE_LEASE": "5s", "BULKRESTORE_DB": "postgres://h/db"}), nil)
	if err != nil || cfg.lease.String() != "5s" || cfg.db != "postgres://h/db" {
		t.Fatalf("from the environment: lease %v db %q (%v), want 5s and the URL", cfg.lease, cfg.db, err)
	}
}
