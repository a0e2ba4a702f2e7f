package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The admin commands of API.md sections 5 and 6 and the flag handling of
// section 7, driven through run() as main would.

// runCLI runs the program with args and returns its stdout, stderr and error.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, args, mapEnv(env), strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

// createdUser is the one line `user add` prints.
type createdUser struct {
	Username      string `json:"username"`
	APIKey        string `json:"api_key"`
	WebhookSecret string `json:"webhook_secret"`
}

// parseCreated checks that out is exactly one line holding exactly the
// three fields, and decodes it.
func parseCreated(t *testing.T, out string) createdUser {
	t.Helper()
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("user add printed %q, want exactly one line", out)
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(out), &fields); err != nil {
		t.Fatalf("user add printed %q: not a JSON object: %v", out, err)
	}
	if len(fields) != 3 {
		t.Fatalf("user add printed fields %v, want exactly username, api_key, webhook_secret", fields)
	}
	var c createdUser
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("user add printed %q: %v", out, err)
	}
	return c
}

// userNames lists the users in the database file.
func userNames(t *testing.T, db string) []string {
	t.Helper()
	s, err := openStore(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	users, err := s.listUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	return names
}

// hexKey matches an API key as user add prints it.
var hexKey = regexp.MustCompile(`^[0-9a-fA-F]+$`)

func TestCLIUserAdd(t *testing.T) {
	db := newTestDB(t)
	out, _, err := runCLI(t, nil, "", "user", "add", "-db", db, "alice")
	if err != nil {
		t.Fatalf("user add: %v", err)
	}
	c := parseCreated(t, out)
	if c.Username != "alice" {
		t.Fatalf("username=%q, want alice", c.Username)
	}
	bits := len(c.APIKey) * 6
	if hexKey.MatchString(c.APIKey) {
		bits = len(c.APIKey) * 4
	}
	if bits < 128 {
		t.Fatalf("api_key %q carries at most %d bits, want >= 128", c.APIKey, bits)
	}
	if !strings.HasPrefix(c.WebhookSecret, "whsec_") || len(c.WebhookSecret) < len("whsec_")+24 {
		t.Fatalf("webhook_secret=%q, want whsec_ and a random tail", c.WebhookSecret)
	}

	// A second user gets different credentials.
	out2, _, err := runCLI(t, nil, "", "user", "add", "-db", db, "bob")
	if err != nil {
		t.Fatalf("user add bob: %v", err)
	}
	c2 := parseCreated(t, out2)
	if c2.APIKey == c.APIKey || c2.WebhookSecret == c.WebhookSecret {
		t.Fatal("two users got the same API key or webhook secret")
	}

	// Stored only as a hash: no column of the users table holds the key.
	s, err := openStore(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.r.Query("SELECT * FROM users")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			text := fmt.Sprint(v)
			if b, ok := v.([]byte); ok {
				text = string(b)
			}
			for _, key := range []string{c.APIKey, c2.APIKey} {
				if strings.Contains(text, key) || strings.Contains(strings.ToLower(text), strings.ToLower(key)) {
					t.Errorf("column %s holds the API key in clear", cols[i])
				}
			}
		}
	}
	rows.Close()
	if _, err := s.authenticate(context.Background(), "alice", c.APIKey); err != nil {
		t.Fatalf("the printed key does not authenticate alice: %v", err)
	}
	if _, err := s.authenticate(context.Background(), "alice", c2.APIKey); err == nil {
		t.Fatal("bob's key authenticates alice")
	}

	// Flags may follow the positional argument.
	if out, _, err := runCLI(t, nil, "", "user", "add", "carol", "-db", db); err != nil {
		t.Fatalf("user add carol -db PATH: %v", err)
	} else {
		parseCreated(t, out)
	}
	if got := strings.Join(userNames(t, db), ","); got != "alice,bob,carol" {
		t.Fatalf("users=%s, want alice,bob,carol", got)
	}
}

func TestCLIUserAddRejects(t *testing.T) {
	db := newTestDB(t)
	addUser(t, db, "alice")
	cases := []struct{ name, user string }{
		{"duplicate", "alice"},
		{"space", "bad name"},
		{"65 chars", strings.Repeat("a", 65)},
		{"empty", ""},
		{"colon breaks Basic auth", "al:ice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runCLI(t, nil, "", "user", "add", "-db", db, tc.user)
			if err == nil {
				t.Fatalf("user add %q succeeded, want an error", tc.user)
			}
			if out != "" {
				t.Fatalf("failed user add printed %q on stdout, want nothing", out)
			}
		})
	}
	if got := strings.Join(userNames(t, db), ","); got != "alice" {
		t.Fatalf("users after the failures=%s, want alice", got)
	}
	// 64 characters is still a name.
	if _, _, err := runCLI(t, nil, "", "user", "add", "-db", db, strings.Repeat("b", 64)); err != nil {
		t.Fatalf("user add of a 64-character name: %v", err)
	}
	// Missing or extra arguments are usage errors.
	for _, args := range [][]string{{"user", "add", "-db", db}, {"user", "add", "-db", db, "x", "y"}, {"user"}, {"user", "rename", "-db", db, "x"}} {
		if _, _, err := runCLI(t, nil, "", args...); !errors.Is(err, errUsage) {
			t.Errorf("%q: err=%v, want a usage error", args, err)
		}
	}
}

func TestCLIUserListAndDel(t *testing.T) {
	db := newTestDB(t)
	aliceKey, _ := addUser(t, db, "alice")
	addUser(t, db, "bob")
	importCSV(t, db, "alice", "number,state\n15551230001,released\n")
	importCSV(t, db, "bob", "number,state\n15551230001,released\n")

	out, _, err := runCLI(t, nil, "", "user", "list", "-db", db)
	if err != nil {
		t.Fatalf("user list: %v", err)
	}
	if strings.Contains(out, aliceKey) {
		t.Fatal("user list shows an API key")
	}
	if !strings.Contains(out, "alice") || !strings.Contains(out, "bob") {
		t.Fatalf("user list printed %q, want alice and bob", out)
	}

	// A job for each, then delete alice: her jobs and inventory go, bob's stay.
	s, err := openStore(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	jobOf := map[string]int64{}
	for _, name := range []string{"alice", "bob"} {
		u, err := s.userByName(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		j := Job{UUID: uuid.NewString(), UserID: u.ID, CreatedAt: time.Now()}
		tx, err := s.w.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.insertQueuedJob(tx, &j, packNumbers(seqNumbers(15551230001, 20))); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		jobOf[name] = j.ID
	}
	aliceID := func() int64 { u, _ := s.userByName(ctx, "alice"); return u.ID }()

	out, _, err = runCLI(t, nil, "", "user", "del", "-db", db, "alice")
	if err != nil {
		t.Fatalf("user del alice: %v", err)
	}
	if !strings.Contains(out, "deleted user alice") {
		t.Fatalf("user del printed %q, want it to say alice was deleted", out)
	}
	if got := strings.Join(userNames(t, db), ","); got != "bob" {
		t.Fatalf("users after del=%s, want bob", got)
	}
	count := func(q string, args ...any) int {
		var n int
		if err := s.r.QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count("SELECT count(*) FROM jobs WHERE id = ?", jobOf["alice"]); n != 0 {
		t.Errorf("alice's job survived her deletion")
	}
	if n := count("SELECT count(*) FROM job_numbers WHERE job_id = ?", jobOf["alice"]); n != 0 {
		t.Errorf("%d numbers of alice's job survived her deletion", n)
	}
	if n := count("SELECT count(*) FROM inventory WHERE user_id = ?", aliceID); n != 0 {
		t.Errorf("%d inventory rows of alice survived her deletion", n)
	}
	if n := count("SELECT count(*) FROM job_numbers WHERE job_id = ?", jobOf["bob"]); n != 20 {
		t.Errorf("bob's job has %d numbers after alice's deletion, want 20", n)
	}

	out, _, err = runCLI(t, nil, "", "user", "list", "-db", db)
	if err != nil || strings.Contains(out, "alice") || !strings.Contains(out, "bob") {
		t.Fatalf("user list after del printed %q (%v), want bob only", out, err)
	}
	for _, name := range []string{"alice", "nobody"} {
		if _, _, err := runCLI(t, nil, "", "user", "del", "-db", db, name); err == nil {
			t.Errorf("user del of unknown user %q succeeded", name)
		}
	}
}

func TestCLIDatabaseFromEnvironment(t *testing.T) {
	envDB, flagDB := newTestDB(t), newTestDB(t)
	env := map[string]string{"BULKRESTORE_DB": envDB}
	if _, _, err := runCLI(t, env, "", "user", "add", "alice"); err != nil {
		t.Fatalf("user add with BULKRESTORE_DB: %v", err)
	}
	if got := strings.Join(userNames(t, envDB), ","); got != "alice" {
		t.Fatalf("users in BULKRESTORE_DB file=%q, want alice", got)
	}
	// The command line wins over the environment.
	if _, _, err := runCLI(t, env, "", "user", "add", "-db", flagDB, "bob"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(userNames(t, flagDB), ","); got != "bob" {
		t.Fatalf("users in -db file=%q, want bob", got)
	}
	if got := strings.Join(userNames(t, envDB), ","); got != "alice" {
		t.Fatalf("users in BULKRESTORE_DB file=%q after -db, want alice only", got)
	}
	if _, _, err := runCLI(t, env, "number,state\n15551230001,active\n", "numbers", "import", "-user", "alice", "-"); err != nil {
		t.Fatalf("numbers import with BULKRESTORE_DB: %v", err)
	}
	if rows := inventoryRows(t, envDB, "alice"); len(rows) != 1 {
		t.Fatalf("inventory in BULKRESTORE_DB file: %v, want one row", rows)
	}
}

// invRow is an inventory row as stored.
type invRow struct {
	State      string
	ReleasedAt int64
	RIU, NR    int
}

// inventoryRows reads a user's inventory from the file.
func inventoryRows(t *testing.T, db, user string) map[string]invRow {
	t.Helper()
	s, err := openStore(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.userByName(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.r.Query(s.q(`SELECT number, state, released_at, requires_identity_update, needs_registration
		FROM inventory WHERE user_id = ?`), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]invRow{}
	for rows.Next() {
		var n string
		var r invRow
		if err := rows.Scan(&n, &r.State, &r.ReleasedAt, &r.RIU, &r.NR); err != nil {
			t.Fatal(err)
		}
		out[n] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCLINumbersImport(t *testing.T) {
	db := newTestDB(t)
	addUser(t, db, "alice")
	csvText := "number,state,released_at,requires_identity_update,needs_registration\n" +
		"15551230001,released,2025-10-28T12:31:45+02:00,1,1\n" +
		"15551230002,released,2025-10-28 12:31:45,0,1\n" +
		"15551230003,active,,,\n" +
		"15551230004,unavailable,2024-01-02T03:04:05Z,1,0\n"
	file := filepath.Join(t.TempDir(), "inv.csv")
	if err := os.WriteFile(file, []byte(csvText), 0o600); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	if _, _, err := runCLI(t, nil, "", "numbers", "import", "-db", db, "-user", "alice", file); err != nil {
		t.Fatalf("import: %v", err)
	}
	after := time.Now().Add(time.Second)
	got := inventoryRows(t, db, "alice")
	want := map[string]invRow{
		"15551230001": {"released", time.Date(2025, 10, 28, 10, 31, 45, 0, time.UTC).UnixMilli(), 1, 1},
		"15551230002": {"released", time.Date(2025, 10, 28, 12, 31, 45, 0, time.UTC).UnixMilli(), 0, 1},
		"15551230004": {"unavailable", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).UnixMilli(), 1, 0},
	}
	if len(got) != 4 {
		t.Fatalf("imported rows %v, want 4", got)
	}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("%s: %+v, want %+v", n, got[n], w)
		}
	}
	// Empty released_at means now; empty flags mean 0.
	r3 := got["15551230003"]
	if r3.State != "active" || r3.RIU != 0 || r3.NR != 0 || r3.ReleasedAt < before.UnixMilli() || r3.ReleasedAt > after.UnixMilli() {
		t.Errorf("15551230003: %+v, want active, released_at now (%s..%s), flags 0", r3, before, after)
	}

	// Re-importing a number updates it; from standard input, CRLF line ends,
	// only the two required columns, in another order.
	stdin := "state,number\r\nactive,15551230001\r\nreleased,15551230005\r\n"
	if _, _, err := runCLI(t, nil, stdin, "numbers", "import", "-db", db, "-user", "alice", "-"); err != nil {
		t.Fatalf("import from stdin: %v", err)
	}
	got = inventoryRows(t, db, "alice")
	if len(got) != 5 {
		t.Fatalf("rows after re-import: %d, want 5", len(got))
	}
	if r := got["15551230001"]; r.State != "active" || r.RIU != 0 || r.NR != 0 {
		t.Errorf("re-imported 15551230001: %+v, want active with flags 0", r)
	}
	if r := got["15551230005"]; r.State != "released" || r.ReleasedAt < before.UnixMilli() {
		t.Errorf("15551230005 from stdin: %+v", r)
	}

	// Unknown user, missing file, missing -user: errors, nothing written.
	if _, _, err := runCLI(t, nil, stdin, "numbers", "import", "-db", db, "-user", "nobody", "-"); err == nil {
		t.Error("import for an unknown user succeeded")
	}
	if _, _, err := runCLI(t, nil, "", "numbers", "import", "-db", db, "-user", "alice", filepath.Join(t.TempDir(), "none.csv")); err == nil {
		t.Error("import of a missing file succeeded")
	}
	if _, _, err := runCLI(t, nil, stdin, "numbers", "import", "-db", db, "-"); !errors.Is(err, errUsage) {
		t.Errorf("import without -user: err=%v, want a usage error", err)
	}
}

func TestCLINumbersImportBadRows(t *testing.T) {
	db := newTestDB(t)
	addUser(t, db, "alice")
	importCSV(t, db, "alice", "number,state\n15551230001,released\n")
	const header = "number,state,released_at,requires_identity_update,needs_registration\n"
	// Each file has good rows (one of them an update of 15551230001) before
	// the bad one, so an import that is not one transaction would show.
	good := "15551230001,active,,1,1\n15551230002,released,,,\n"
	cases := []struct {
		name string
		csv  string
		line int
	}{
		{"short number", header + good + "12345,released,,,\n", 4},
		{"letters in number", header + "1555123abcd,released,,,\n", 2},
		{"empty number", header + good + ",released,,,\n", 4},
		{"bad state", header + good + "15551230003,gone,,,\n", 4},
		{"empty state", header + "15551230003,,,,\n", 2},
		{"bad released_at", header + good + "15551230003,released,yesterday,,\n", 4},
		{"released_at month 13", header + good + "15551230003,released,2025-13-01 00:00:00,,\n", 4},
		{"bad requires_identity_update", header + good + "15551230003,released,,2,\n", 4},
		{"bad needs_registration", header + good + "15551230003,released,,0,yes\n", 4},
		{"too many fields", header + good + "15551230003,released,,0,0,extra\n", 4},
		{"too few fields", header + good + "15551230003\n", 4},
		{"bare quote", header + good + "15551230003,rel\"eased,,,\n", 4},
		{"after a blank line", header + good + "\n15551230003,gone,,,\n", 5},
		{"after a row spanning two lines", header + "\"15551230001\n\",active,,,\n15551230003,gone,,,\n", 4},
		{"unterminated quote", header + good + "15551230003,\"released,,,\n", 4},
		{"missing header column", "number,released_at\n15551230003,\n", 1},
		{"unknown header column", "number,state,colour\n15551230003,active,red\n", 1},
		{"empty file", "", 1},
	}
	snapshot := func() string {
		b, _ := json.Marshal(inventoryRows(t, db, "alice"))
		return string(b)
	}
	before := snapshot()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, nil, tc.csv, "numbers", "import", "-db", db, "-user", "alice", "-")
			if err == nil {
				t.Fatal("import succeeded, want an error")
			}
			if prefix := fmt.Sprintf("line %d:", tc.line); !strings.HasPrefix(err.Error(), prefix) {
				t.Fatalf("error %q, want it to start with %q", err, prefix)
			}
			if after := snapshot(); after != before {
				t.Fatalf("a failed import changed the inventory:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestCLIUnknownCommand(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"numbers", "frobnicate"}, {"numbers"}, {"serve", "extra"}} {
		_, _, err := runCLI(t, nil, "", args...)
		if !errors.Is(err, errUsage) {
			t.Errorf("%q: err=%v, want one wrapping errUsage", args, err)
		}
	}
}

func TestParseServeFlagsDefaults(t *testing.T) {
	c, err := parseServeFlags(nil, mapEnv(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"addr", c.addr, ":8080"}, {"db", c.db, "bulkrestore.db"}, {"dev", c.dev, false},
		{"backend", c.backend, "inventory"}, {"upstream-url", c.upstreamURL, ""},
		{"workers", c.workers, 16}, {"sync-limit", c.syncLimit, 10},
		{"max-numbers", c.maxNumbers, 10000}, {"max-body", c.maxBody, int64(4 << 20)},
		{"restore-window", c.restoreWindow, 720 * time.Hour}, {"restore-timeout", c.restoreTimeout, 10 * time.Second},
		{"restore-max-attempts", c.restoreMaxAttempts, 3}, {"restore-retry-base", c.restoreRetryBase, time.Second},
		{"webhook-timeout", c.webhookTimeout, 10 * time.Second}, {"webhook-max-attempts", c.webhookMaxAttempts, 20},
		{"webhook-retry-base", c.webhookRetryBase, 5 * time.Second}, {"webhook-retry-max", c.webhookRetryMax, 2 * time.Hour},
		{"allow-private-webhooks", c.allowPrivateWebhooks(), false},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("-%s default %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestParseServeFlagsRejects(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
	}{
		{args: []string{"-backend", "foo"}},
		{args: []string{"-backend", "upstream"}},
		{args: []string{"-backend", "upstream", "-upstream-url", "http://127.0.0.1:1/no-placeholder"}},
		{args: []string{"-backend", "upstream", "-upstream-url", "ftp://host/{number}"}},
		{args: []string{"-workers", "0"}},
		{args: []string{"-workers", "-3"}},
		{args: []string{"-workers", "many"}},
		{args: []string{"-max-body", "0"}},
		{args: []string{"-max-body", "lots"}},
		{args: []string{"-restore-retry-base", "soon"}},
		{args: []string{"-no-such-flag"}},
		{env: map[string]string{"BULKRESTORE_WORKERS": "0"}},
		{env: map[string]string{"BULKRESTORE_WORKERS": "many"}},
		{env: map[string]string{"BULKRESTORE_BACKEND": "foo"}},
	}
	for _, tc := range cases {
		if _, err := parseServeFlags(tc.args, mapEnv(tc.env), io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("args %q env %v: err=%v, want a usage error", tc.args, tc.env, err)
		}
	}
}

func TestParseServeFlagsSizesAndEnvironment(t *testing.T) {
	for in, want := range map[string]int64{"4MiB": 4 << 20, "1000": 1000, "64KiB": 64 << 10} {
		c, err := parseServeFlags([]string{"-max-body", in}, mapEnv(nil), io.Discard)
		if err != nil || c.maxBody != want {
			t.Errorf("-max-body %s: %d (%v), want %d", in, c.maxBody, err, want)
		}
	}

	env := map[string]string{
		"BULKRESTORE_ADDR": "127.0.0.1:9999", "BULKRESTORE_DB": "/tmp/env.db", "BULKRESTORE_DEV": "true",
		"BULKRESTORE_ALLOW_PRIVATE_WEBHOOKS": "1", "BULKRESTORE_BACKEND": "upstream",
		"BULKRESTORE_UPSTREAM_URL": "http://127.0.0.1:1/r/{number}", "BULKRESTORE_WORKERS": "3",
		"BULKRESTORE_SYNC_LIMIT": "5", "BULKRESTORE_MAX_NUMBERS": "50", "BULKRESTORE_MAX_BODY": "1MiB",
		"BULKRESTORE_RESTORE_WINDOW": "1h", "BULKRESTORE_RESTORE_TIMEOUT": "2s",
		"BULKRESTORE_RESTORE_MAX_ATTEMPTS": "5", "BULKRESTORE_RESTORE_RETRY_BASE": "10ms",
		"BULKRESTORE_WEBHOOK_TIMEOUT": "3s", "BULKRESTORE_WEBHOOK_MAX_ATTEMPTS": "7",
		"BULKRESTORE_WEBHOOK_RETRY_BASE": "1s", "BULKRESTORE_WEBHOOK_RETRY_MAX": "1m",
		"BULKRESTORE_UPSTREAM_USER": "up-user", "BULKRESTORE_UPSTREAM_PASSWORD": "up-pass",
	}
	c, err := parseServeFlags(nil, mapEnv(env), io.Discard)
	if err != nil {
		t.Fatalf("parse with environment: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"addr", c.addr, "127.0.0.1:9999"}, {"db", c.db, "/tmp/env.db"}, {"dev", c.dev, true},
		{"allow-private-webhooks", c.allowPrivate, true}, {"backend", c.backend, "upstream"},
		{"upstream-url", c.upstreamURL, "http://127.0.0.1:1/r/{number}"}, {"workers", c.workers, 3},
		{"sync-limit", c.syncLimit, 5}, {"max-numbers", c.maxNumbers, 50}, {"max-body", c.maxBody, int64(1 << 20)},
		{"restore-window", c.restoreWindow, time.Hour}, {"restore-timeout", c.restoreTimeout, 2 * time.Second},
		{"restore-max-attempts", c.restoreMaxAttempts, 5}, {"restore-retry-base", c.restoreRetryBase, 10 * time.Millisecond},
		{"webhook-timeout", c.webhookTimeout, 3 * time.Second}, {"webhook-max-attempts", c.webhookMaxAttempts, 7},
		{"webhook-retry-base", c.webhookRetryBase, time.Second}, {"webhook-retry-max", c.webhookRetryMax, time.Minute},
		{"upstream user", c.upstreamUser, "up-user"}, {"upstream password", c.upstreamPassword, "up-pass"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s from the environment: %v, want %v", ch.name, ch.got, ch.want)
		}
	}

	// The command line wins over the environment.
	c, err = parseServeFlags([]string{"-workers", "9", "-backend", "inventory", "-dev=false", "-max-body", "1000"}, mapEnv(env), io.Discard)
	if err != nil {
		t.Fatalf("parse with environment and flags: %v", err)
	}
	if c.workers != 9 || c.backend != "inventory" || c.dev || c.maxBody != 1000 || c.syncLimit != 5 {
		t.Fatalf("workers=%d backend=%s dev=%v max-body=%d sync-limit=%d, want 9 inventory false 1000 5 (flags over environment)",
			c.workers, c.backend, c.dev, c.maxBody, c.syncLimit)
	}
}
