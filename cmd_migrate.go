package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// runMigrate is `bulkrestore migrate -from FILE -to URL`: copies a SQLite
// file's users, inventory and history into a PostgreSQL database, for a
// deployment that moves to several instances. The SQLite file's server
// lock is held throughout, so that nothing is restored or written there
// while it is copied. Only -to may come from the environment (as
// BULKRESTORE_MIGRATE_TO, or BULKRESTORE_DB when that is a PostgreSQL
// URL): a URL that holds a password belongs in the environment.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	from := fs.String("from", "", "the SQLite database file to copy (required)")
	to := fs.String("to", "", "the PostgreSQL database to copy into, postgres://...; better given in BULKRESTORE_MIGRATE_TO")
	resume := fs.Bool("resume", false, "the PostgreSQL database holds an earlier copy of this file that was cut short: copy what it lacks, and bring up to date what changed in the file since")
	toOnly := func(key string) string {
		if key == envName("to") {
			if v := getenv("BULKRESTORE_MIGRATE_TO"); v != "" {
				return v
			}
			if v := getenv(envName("db")); isPostgresURL(v) {
				return v
			}
		}
		return ""
	}
	rest, err := parseArgs(fs, args, toOnly)
	switch {
	case err != nil:
		return err
	case len(rest) > 0:
		return usageErrorf("migrate", "migrate takes no arguments, got %q", rest)
	case *from == "" || isPostgresURL(*from):
		return usageErrorf("migrate", "-from must name the SQLite database file to copy")
	case !isPostgresURL(*to):
		return usageErrorf("migrate", "-to must be a PostgreSQL URL (postgres://... or postgresql://...)")
	case !databaseExists(*from):
		return fmt.Errorf("migrate: no database %s", *from)
	}
	lock, err := lockDatabase(*from) // no server may restore or write there meanwhile
	if err != nil {
		return err
	}
	defer lock.release()
	src, err := openStore(*from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openPGStore(ctx, *to, defaultLease)
	if err != nil {
		return fmt.Errorf("migrate: open %s: %w", redactDB(*to), err)
	}
	defer dst.Close()
	start := time.Now()
	err = src.copyInto(ctx, dst, *resume, func(c copyCount) {
		line := fmt.Sprintf("%-16s %d copied", c.table, c.inserted)
		if c.updated > 0 {
			line += fmt.Sprintf(", %d brought up to date", c.updated)
		}
		if same := c.read - c.inserted - c.updated; same > 0 {
			line += fmt.Sprintf(" (%d there already)", same)
		}
		fmt.Fprintln(stdout, line)
	})
	if errors.Is(err, errNotThisFile) {
		return fmt.Errorf("migrate: %w; empty the database and copy again without -resume", err)
	}
	if errors.Is(err, errTargetHoldsData) {
		return fmt.Errorf("migrate: %w; give an empty database, or -resume to finish an earlier copy of this same file", err)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w (run it again with -resume to go on)", err)
	}
	fmt.Fprintf(stdout, "copied %s to %s in %s; serve with -db set to that URL (in BULKRESTORE_DB)\n",
		*from, redactDB(*to), time.Since(start).Round(time.Millisecond))
	return nil
}
