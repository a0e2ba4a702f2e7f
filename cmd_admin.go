package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"time"
)

// userNamePattern is what a user name may be: it appears in logs and in
// Basic auth, so it is kept plain.
var userNamePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// secretOverlap is how long a rotated-out webhook secret keeps signing.
const secretOverlap = 24 * time.Hour

// runBackup is `bulkrestore backup -db PATH OUT`: a consistent copy of a
// live database, safe to take while the server runs.
func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	dbPath, rest, err := adminFlags("backup", args, getenv, false, nil)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: backup -db PATH OUT", errUsage)
	}
	// The copy is created here, empty and private (the backup fills an
	// empty file); it holds the same secrets as the database.
	out, err := createPrivateFile(rest[0], true, os.O_WRONLY)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("backup: %s already exists", rest[0])
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	out.Close()
	if err := backupTo(ctx, dbPath, rest[0]); err != nil {
		os.Remove(rest[0])
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s\n", dbPath, rest[0])
	return nil
}

// backupTo copies the database at dbPath into the empty file out.
func backupTo(ctx context.Context, dbPath, out string) error {
	store, err := openStore(dbPath)
	if err != nil {
		return err
	}
	defer store.Close()
	return store.backup(ctx, out)
}

// runCheck is `bulkrestore check -db PATH`: SQLite's integrity check, with a
// non-zero exit when the file is damaged.
func runCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	dbPath, rest, err := adminFlags("check", args, getenv, false, nil)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: check -db PATH", errUsage)
	}
	store, err := openStore(dbPath)
	if err != nil {
		return err
	}
	defer store.Close()
	findings, err := store.integrityCheck(ctx)
	if err != nil {
		return err
	}
	for _, f := range findings {
		fmt.Fprintln(stdout, f)
	}
	if len(findings) != 1 || findings[0] != "ok" {
		return fmt.Errorf("check: %s failed its integrity check", dbPath)
	}
	return nil
}

// adminFlags parses the flags of an admin command: -db, plus whatever
// extra registers. Only -db may come from the environment (BULKRESTORE_DB):
// an admin command must never take its target user from the settings a
// client command reads. Unless the command creates a database (user add),
// a missing database file is an error naming it, before anything opens
// it (opening would create an empty one). It returns the database path and
// the positional arguments.
func adminFlags(name string, args []string, getenv func(string) string, creates bool, extra func(*flag.FlagSet)) (string, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	db := fs.String("db", "bulkrestore.db", "SQLite database file")
	if extra != nil {
		extra(fs)
	}
	dbOnly := func(key string) string {
		if key == envName("db") {
			return getenv(key)
		}
		return ""
	}
	rest, err := parseArgs(fs, args, dbOnly)
	if err == nil && !creates && !databaseExists(*db) {
		err = fmt.Errorf("%s: no database %s (only serve and user add create one)", name, *db)
		if folderErr := checkDBFolder(*db); folderErr != nil {
			err = fmt.Errorf("%s: %w", name, folderErr)
		}
	}
	return *db, rest, err
}

// databaseExists reports whether the database file is there; anything
// but "does not exist" is left for opening it to report.
func databaseExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// userCommands are the user subcommands and how many arguments each takes.
var userCommands = map[string]int{"add": 1, "del": 1, "list": 0, "rotate-secret": 1}

// createdUserJSON is the one line `user add` prints, in the contract's
// field order.
type createdUserJSON struct {
	Username      string `json:"username"`
	APIKey        string `json:"api_key"`
	WebhookSecret string `json:"webhook_secret"`
}

// rotatedSecretJSON is the one line `user rotate-secret` prints.
type rotatedSecretJSON struct {
	Username      string `json:"username"`
	WebhookSecret string `json:"webhook_secret"`
}

// listedUserJSON is one line of `user list`.
type listedUserJSON struct {
	Username  string  `json:"username"`
	CreatedAt *string `json:"created_at"`
}

// runUser is `bulkrestore user add|list|del|rotate-secret`.
func runUser(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErrorf("user", "user needs a command: add, list, del or rotate-secret")
	}
	sub, args := args[0], args[1:]
	if isHelpFlag(sub) {
		return &helpRequest{cmd: "user"}
	}
	n, known := userCommands[sub]
	if !known {
		return usageErrorf("user", "unknown user command %q (want add, list, del or rotate-secret, before the flags)", sub)
	}
	cmd := "user " + sub
	dbPath, rest, err := adminFlags(cmd, args, getenv, sub == "add", nil)
	if err != nil {
		return err
	}
	if len(rest) != n {
		return usageErrorf(cmd, "%s takes %d argument(s), got %d", cmd, n, len(rest))
	}
	if sub == "add" && !userNamePattern.MatchString(rest[0]) {
		return usageErrorf(cmd, "user name must be 1 to 64 of A-Z a-z 0-9 . _ -")
	}
	fresh := !databaseExists(dbPath)
	store, err := openStore(dbPath)
	if err != nil {
		return err
	}
	defer store.Close()
	if fresh {
		fmt.Fprintf(stderr, "created database %s\n", dbPath)
	}
	enc := json.NewEncoder(stdout)
	switch sub {
	case "add":
		name := rest[0]
		key, secret := newAPIKey(), newWebhookSecret()
		if err := store.createUser(ctx, name, key, secret); err != nil {
			return fmt.Errorf("user add %s: %w", name, err)
		}
		return enc.Encode(createdUserJSON{Username: name, APIKey: key, WebhookSecret: secret})
	case "rotate-secret":
		secret := newWebhookSecret()
		if err := store.rotateSecret(ctx, rest[0], secret, secretOverlap); err != nil {
			if errors.Is(err, errNotFound) {
				return fmt.Errorf("user rotate-secret: no user %q", rest[0])
			}
			return err
		}
		return enc.Encode(rotatedSecretJSON{Username: rest[0], WebhookSecret: secret})
	case "del":
		if _, err := store.deleteUser(ctx, rest[0]); err != nil {
			if errors.Is(err, errNotFound) {
				return fmt.Errorf("user del: no user %q", rest[0])
			}
			return err
		}
		fmt.Fprintf(stdout, "deleted user %s\n", rest[0])
		return nil
	default:
		users, err := store.listUsers(ctx)
		if err != nil {
			return err
		}
		for _, u := range users {
			if err := enc.Encode(listedUserJSON{Username: u.Name, CreatedAt: jsonTime(u.CreatedAt)}); err != nil {
				return err
			}
		}
		return nil
	}
}

// runNumbers is `bulkrestore numbers import -db PATH -user NAME FILE|-`.
func runNumbers(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	const synopsis = "numbers import -db PATH -user NAME FILE.csv|-"
	switch {
	case len(args) > 0 && isHelpFlag(args[0]):
		return &helpRequest{cmd: "numbers"}
	case len(args) == 0 || args[0] != "import":
		return usageErrorf("numbers", "want %s", synopsis)
	}
	var userName string
	dbPath, rest, err := adminFlags("numbers import", args[1:], getenv, false, func(fs *flag.FlagSet) {
		fs.StringVar(&userName, "user", "", "user whose inventory this is (required; never taken from BULKRESTORE_USER)")
	})
	if err != nil {
		return err
	}
	switch {
	case userName == "":
		return usageErrorf("numbers import", "-user NAME is required (BULKRESTORE_USER is the client's setting and is never read here)")
	case len(rest) != 1:
		return usageErrorf("numbers import", "want one FILE.csv, or - for standard input; got %d arguments", len(rest))
	}
	in := stdin
	if rest[0] != "-" {
		f, err := os.Open(rest[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	rows, err := parseInventoryCSV(in, time.Now())
	if err != nil {
		return err
	}
	store, err := openStore(dbPath)
	if err != nil {
		return err
	}
	defer store.Close()
	u, err := store.userByName(ctx, userName)
	if errors.Is(err, errNotFound) {
		return fmt.Errorf("numbers import: no user %q", userName)
	}
	if err != nil {
		return err
	}
	if err := store.importInventory(ctx, u.ID, rows, false); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %d numbers for user %s\n", len(rows), userName)
	return nil
}

// inventoryColumns are the CSV header's columns; number and state are
// required, the rest optional.
var inventoryColumns = []string{"number", "state", "released_at", "requires_identity_update", "needs_registration"}

// parseInventoryCSV reads an inventory CSV. The first bad row stops it with
// an error naming its line (the header is line 1).
func parseInventoryCSV(r io.Reader, now time.Time) ([]InventoryRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("line 1: empty file, want a header: " + strings.Join(inventoryColumns, ","))
	}
	if err != nil {
		return nil, fmt.Errorf("line 1: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, c := range inventoryColumns {
			known = known || c == h
		}
		if !known {
			return nil, fmt.Errorf("line 1: unknown column %q, want %s", h, strings.Join(inventoryColumns, ","))
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("line 1: column %q appears twice", h)
		}
		col[h] = i
	}
	for _, required := range inventoryColumns[:2] {
		if _, ok := col[required]; !ok {
			return nil, fmt.Errorf("line 1: missing column %q", required)
		}
	}
	var rows []InventoryRow
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("line %d: %v", pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("line ?: %w", err)
		}
		line, _ := cr.FieldPos(0) // only valid after a successful Read
		field := func(name string) string {
			i, ok := col[name]
			if !ok || i >= len(rec) {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		if len(rec) > len(header) {
			return nil, fmt.Errorf("line %d: %d fields, the header has %d", line, len(rec), len(header))
		}
		row, err := inventoryRow(field, now)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if prev, dup := seen[row.Number]; dup {
			return nil, fmt.Errorf("line %d: number %s already given on line %d", line, row.Number, prev)
		}
		seen[row.Number] = line
		rows = append(rows, row)
	}
}

// inventoryRow validates one CSV record.
func inventoryRow(field func(string) string, now time.Time) (InventoryRow, error) {
	row := InventoryRow{Number: field("number"), State: field("state"), ReleasedAt: now}
	if !validNumber(row.Number) {
		return row, fmt.Errorf("number %q is not 7 to 15 digits", row.Number)
	}
	switch row.State {
	case "active", "released", "unavailable":
	default:
		return row, fmt.Errorf("state %q is not active, released or unavailable", row.State)
	}
	if s := field("released_at"); s != "" {
		t, err := parseCSVTime(s)
		if err != nil {
			return row, fmt.Errorf("released_at %q is not RFC 3339 or YYYY-MM-DD HH:MM:SS", s)
		}
		row.ReleasedAt = t
	}
	var err error
	if row.RequiresIdentityUpdate, err = parseFlag("requires_identity_update", field("requires_identity_update")); err != nil {
		return row, err
	}
	if row.NeedsRegistration, err = parseFlag("needs_registration", field("needs_registration")); err != nil {
		return row, err
	}
	return row, nil
}

// parseCSVTime reads released_at: RFC 3339, or YYYY-MM-DD HH:MM:SS in UTC.
func parseCSVTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation(timeLayout, s, time.UTC)
}

// parseFlag reads a 0/1 column; empty is 0.
func parseFlag(name, s string) (bool, error) {
	switch s {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	default:
		return false, fmt.Errorf("%s %q is not 0 or 1", name, s)
	}
}

// seedDev creates the demo user (key "demo") and demo inventory when they
// are missing; numbers restored in an earlier run stay as they are.
func seedDev(ctx context.Context, store *Store) error {
	if _, err := store.userByName(ctx, "demo"); errors.Is(err, errNotFound) {
		if err := store.createUser(ctx, "demo", "demo", newWebhookSecret()); err != nil && !errors.Is(err, errUserExists) {
			return fmt.Errorf("create demo user: %w", err)
		}
	} else if err != nil {
		return err
	}
	u, err := store.userByName(ctx, "demo")
	if err != nil {
		return err
	}
	now := time.Now()
	var rows []InventoryRow
	for i := 100; i <= 199; i++ {
		row := InventoryRow{Number: fmt.Sprintf("15551230%d", i), State: "released", ReleasedAt: now.Add(-time.Hour)}
		switch i % 10 {
		case 3:
			row.RequiresIdentityUpdate, row.NeedsRegistration = true, true
		case 5:
			row.RequiresIdentityUpdate = true
		case 7:
			row.State = "unavailable"
		case 9:
			row.ReleasedAt = now.Add(-90 * 24 * time.Hour) // restore window passed
		}
		rows = append(rows, row)
	}
	return store.importInventory(ctx, u.ID, rows, true)
}
