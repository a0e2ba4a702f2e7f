package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

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
	if isPostgresURL(dbPath) {
		return errNotForPG("backup", "back it up with pg_dump (pg_dump -Fc -f OUT.dump DBNAME) or your provider's snapshots")
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
	if isPostgresURL(dbPath) {
		return errNotForPG("check", "check it with PostgreSQL's own tools (pg_amcheck, or the server's logs and monitoring)")
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

// errNotForPG is the refusal of a command that is SQLite's only: what to
// use on PostgreSQL instead.
func errNotForPG(cmd, instead string) error {
	return fmt.Errorf("%s works on a SQLite file only; the database is PostgreSQL's: %s", cmd, instead)
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
	db := fs.String("db", "bulkrestore.db", "SQLite database file, or a PostgreSQL URL (better given in BULKRESTORE_DB)")
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
	if err == nil && !creates && !isPostgresURL(*db) && !databaseExists(*db) {
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
var userCommands = map[string]int{"add": 1, "del": 1, "list": 0, "rotate-key": 1, "rotate-secret": 1}

// userCommandList names the user subcommands for usage errors.
const userCommandList = "add, list, del, rotate-key or rotate-secret"

// rotatedKeyJSON is the one line `user rotate-key` prints.
type rotatedKeyJSON struct {
	Username string `json:"username"`
	APIKey   string `json:"api_key"`
}

// rotatedSecretJSON is the one line `user rotate-secret` prints.
type rotatedSecretJSON struct {
	Username      string `json:"username"`
	WebhookSecret string `json:"webhook_secret"`
}

// cliOps opens the admin operations on the database at dbPath, for a
// command of the CLI; close closes the database.
func cliOps(dbPath string) (ops adminOps, close func() error, err error) {
	store, err := openStore(dbPath)
	if err != nil {
		return adminOps{}, nil, err
	}
	return adminOps{store: store, now: time.Now, spoolDir: spoolDir(dbPath), pace: cliPurgePace}, store.Close, nil
}

// cliError turns an operation's error into the command's: a mistake in
// what was asked (an *apiError of a bad value) is a usage error, anything
// else is said after the command's name. A bad CSV row is said as it is
// (line N: ...).
func cliError(cmd string, err error) error {
	var api *apiError
	var line *csvLineError
	switch {
	case err == nil || errors.As(err, &line):
		return err
	case errors.As(err, &api) && api.code == codeInvalid:
		return usageErrorf(cmd, "%s", api.message)
	default:
		return fmt.Errorf("%s: %w", cmd, err)
	}
}

// runUser is `bulkrestore user add|list|del|rotate-key|rotate-secret`: the
// admin API's user operations, on the database file.
func runUser(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErrorf("user", "user needs a command: %s", userCommandList)
	}
	sub, args := args[0], args[1:]
	if isHelpFlag(sub) {
		return &helpRequest{cmd: "user"}
	}
	n, known := userCommands[sub]
	if !known {
		return usageErrorf("user", "unknown user command %q (want %s, before the flags)", sub, userCommandList)
	}
	cmd := "user " + sub
	overlap := defaultKeyOverlap
	var extra func(*flag.FlagSet)
	if sub == "rotate-key" {
		extra = func(fs *flag.FlagSet) {
			fs.DurationVar(&overlap, "overlap", defaultKeyOverlap, "how long the old key keeps working (0: it stops at once; at most 720h)")
		}
	}
	dbPath, rest, err := adminFlags(cmd, args, getenv, sub == "add", extra)
	if err != nil {
		return err
	}
	if len(rest) != n {
		return usageErrorf(cmd, "%s takes %d argument(s), got %d", cmd, n, len(rest))
	}
	if sub == "add" && !userNamePattern.MatchString(rest[0]) {
		return usageErrorf(cmd, badUserName) // before the database is created
	}
	fresh := !isPostgresURL(dbPath) && !databaseExists(dbPath)
	ops, closeDB, err := cliOps(dbPath)
	if err != nil {
		return err
	}
	defer closeDB()
	if fresh {
		fmt.Fprintf(stderr, "created database %s\n", dbPath)
	}
	enc := json.NewEncoder(stdout)
	switch sub {
	case "add":
		created, err := ops.createUser(ctx, rest[0])
		if err != nil {
			return cliError(cmd, err)
		}
		return enc.Encode(created)
	case "rotate-key":
		key, err := ops.rotateKey(ctx, rest[0], overlap)
		if err != nil {
			return cliError(cmd, err)
		}
		return enc.Encode(rotatedKeyJSON{Username: rest[0], APIKey: key})
	case "rotate-secret":
		secret, err := ops.rotateSecret(ctx, rest[0])
		if err != nil {
			return cliError(cmd, err)
		}
		return enc.Encode(rotatedSecretJSON{Username: rest[0], WebhookSecret: secret})
	case "del":
		if err := ops.deleteUser(ctx, rest[0]); err != nil {
			return cliError(cmd, err)
		}
		fmt.Fprintf(stdout, "deleted user %s\n", rest[0])
		return nil
	default:
		users, err := ops.listUsers(ctx)
		if err != nil {
			return cliError(cmd, err)
		}
		for _, u := range users {
			if err := enc.Encode(u); err != nil {
				return err
			}
		}
		return nil
	}
}

// numbersSynopsis is the usage of `bulkrestore numbers`.
const numbersSynopsis = "numbers import -db PATH -user NAME [-replace] FILE.csv|-, or numbers export -db PATH -user NAME [FILE.csv|-]"

// runNumbers is `bulkrestore numbers import|export`: the admin API's
// inventory operations, on the database file.
func runNumbers(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && isHelpFlag(args[0]):
		return &helpRequest{cmd: "numbers"}
	case len(args) == 0 || args[0] != "import" && args[0] != "export":
		return usageErrorf("numbers", "want %s", numbersSynopsis)
	}
	sub := args[0]
	cmd := "numbers " + sub
	var userName string
	var replace bool
	dbPath, rest, err := adminFlags(cmd, args[1:], getenv, false, func(fs *flag.FlagSet) {
		fs.StringVar(&userName, "user", "", "user whose inventory this is (required; never taken from BULKRESTORE_USER)")
		if sub == "import" {
			fs.BoolVar(&replace, "replace", false, "also delete the user's numbers that the file lacks (a full sync)")
		}
	})
	if err != nil {
		return err
	}
	switch {
	case userName == "":
		return usageErrorf(cmd, "-user NAME is required (BULKRESTORE_USER is the client's setting and is never read here)")
	case sub == "import" && len(rest) != 1:
		return usageErrorf(cmd, "want one FILE.csv, or - for standard input; got %d arguments", len(rest))
	case sub == "export" && len(rest) > 1:
		return usageErrorf(cmd, "want at most one FILE.csv (- or none for standard output); got %d arguments", len(rest))
	}
	in := stdin
	if sub == "import" && rest[0] != "-" {
		f, err := os.Open(rest[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	ops, closeDB, err := cliOps(dbPath)
	if err != nil {
		return err
	}
	defer closeDB()
	if sub == "export" {
		return exportNumbers(ctx, ops, userName, append(rest, "-")[0], stdout)
	}
	done, err := ops.importInventory(ctx, userName, in, replace)
	if err != nil {
		return cliError(cmd, err)
	}
	fmt.Fprintf(stdout, "imported %d numbers for user %s", done.Imported, userName)
	if replace {
		fmt.Fprintf(stdout, "; deleted %d not in the file", done.Deleted)
	}
	fmt.Fprintln(stdout)
	return nil
}

// exportNumbers writes a user's inventory CSV to dest (- for stdout); a
// file appears only once written whole.
func exportNumbers(ctx context.Context, ops adminOps, userName, dest string, stdout io.Writer) error {
	write, err := ops.exportInventory(ctx, userName)
	if err != nil {
		return cliError("numbers export", err)
	}
	out, err := openOutput(dest, stdout)
	if err != nil {
		return err
	}
	defer out.abort()
	if err := write(out.w); err != nil {
		return fmt.Errorf("numbers export: %w", err)
	}
	return out.commit()
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
