package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// usageText is the list of commands: `bulkrestore -h`, `--help` and `help`.
const usageText = `bulkrestore: the v3 bulk phone-number restore API in one binary.

Usage:
  bulkrestore serve [flags]                    run the API server (also what no command does)
  bulkrestore user add -db PATH NAME           create a user; prints {"username","api_key","webhook_secret"}
  bulkrestore user list -db PATH               list users with their counts, one JSON line each
  bulkrestore user del -db PATH NAME           delete a user with its jobs and inventory
  bulkrestore user rotate-key -db PATH NAME    new API key; the old one works for -overlap (24h)
  bulkrestore user rotate-secret -db PATH NAME new webhook secret; the old one also signs for 24h
  bulkrestore numbers import -db PATH -user NAME [-replace] FILE.csv|-
                                               import or update a user's inventory
  bulkrestore numbers export -db PATH -user NAME [FILE.csv|-]
                                               write a user's inventory as CSV
  bulkrestore backup -db PATH OUT              consistent copy of a live database
  bulkrestore check -db PATH                   run SQLite's integrity check
  bulkrestore migrate -from FILE -to URL       copy a SQLite file into PostgreSQL (to run several servers)
  bulkrestore bench [flags]                    benchmark an in-process server
  bulkrestore submit [flags] FILE|-            client: submit numbers in jobs; -wait shows progress
                                               and writes every result (-o FILE.csv|FILE.json|-);
                                               -dry-run shows what each would give, creating nothing
  bulkrestore retry [flags] JOB_UUID           client: a new job of a finished job's failed numbers
                                               (-status-code 500,503 narrows); -wait and -o as submit
  bulkrestore status [flags] JOB_UUID          client: one job's summary; -results, -failed and -o
                                               show or write its numbers' results
  bulkrestore history [flags] NUMBER           client: a number in each of your jobs, newest first
  bulkrestore version                          print the version
  bulkrestore help [COMMAND]                   this list, or one command's usage and flags

Run 'bulkrestore help COMMAND' or 'bulkrestore COMMAND -h' for a command's flags.
Only serve and user add create a database file; the other admin commands need it to exist.
`

// Notes on where flags may come from, printed after a command's flags.
const (
	// flagEnvNote is for serve, bench and the client commands.
	flagEnvNote = "Every flag can also be set as BULKRESTORE_<FLAG> (upper case, - as _); the command line wins.\n"
	// adminEnvNote is for the admin commands, which must never take their
	// target user from the environment a client command reads.
	adminEnvNote = "-db can also be set as BULKRESTORE_DB; no other flag is read from the environment.\n"
)

// commandDoc is one command's help: the arguments of its usage line, what
// it does, and where its flags may also come from.
type commandDoc struct {
	args, text, env string
}

// commandHelp is every command's help, by the name of its FlagSet (as
// "user add"); run prints it for `help CMD` and `CMD -h`, followed by the
// flags.
var commandHelp = map[string]commandDoc{
	"serve": {"[flags]", `Runs the v3 bulk restore API server; it is also what bulkrestore does with no
command. The database file (-db) is created if it does not exist, and the log
says so. -dev adds the demo user demo (API key demo) with the demo inventory
15551230100-15551230199. SIGINT or SIGTERM stops it gracefully.
BULKRESTORE_UPSTREAM_USER and BULKRESTORE_UPSTREAM_PASSWORD (environment only)
are the upstream backend's credentials. The admin API (/admin/v1) is on when
-admin-token-file names a file holding its bearer token, or when
BULKRESTORE_ADMIN_TOKEN (environment only) holds it.
`, flagEnvNote},
	"user": {"add|list|del|rotate-key|rotate-secret [-db PATH] [NAME]", `Manages the API users in the database file, as the admin API does:

  user add -db PATH NAME            create a user; prints {"username","api_key","webhook_secret"}
  user list -db PATH                one JSON line per user, with its counts
  user del -db PATH NAME            delete a user with its jobs and inventory
  user rotate-key -db PATH NAME     new API key; the old one keeps working for -overlap
  user rotate-secret -db PATH NAME  new webhook secret; the old one also signs for 24h

Only user add creates the database file; the others need it to exist.
Run 'bulkrestore help user COMMAND' for one command's flags.
`, ""},
	"user add": {"[-db PATH] NAME", `Creates user NAME (1 to 64 of A-Z a-z 0-9 . _ -) and prints one line of JSON,
the only time the API key is shown:
  {"username":"NAME","api_key":"...","webhook_secret":"whsec_..."}
Creates the database file if it does not exist, and says so on standard error.
`, adminEnvNote},
	"user list": {"[-db PATH]", `Prints one line of JSON per user, by name, as GET /admin/v1/users lists them:
  {"username":"NAME","created_at":"YYYY-MM-DD HH:MM:SS","jobs":N,"active_jobs":N,"inventory_numbers":N}
active_jobs counts the jobs pending or processing.
`, adminEnvNote},
	"user del": {"[-db PATH] NAME", `Deletes user NAME with all its jobs, results and inventory. Its key stops
working and its unfinished work stops at once, even beside a running server;
then its rows go in short steps. A deletion cut short leaves the user locked
out: deleting it again finishes it.
`, adminEnvNote},
	"user rotate-key": {"[-db PATH] [-overlap 24h] NAME", `Gives user NAME a new API key and prints one line of JSON:
  {"username":"NAME","api_key":"..."}
The old key keeps working beside it for -overlap (0 to 720h; 0 ends it at
once, for a key that leaked), so that clients can switch over. A key rotated
out before stops at once.
`, adminEnvNote},
	"user rotate-secret": {"[-db PATH] NAME", `Gives user NAME a new webhook secret and prints one line of JSON:
  {"username":"NAME","webhook_secret":"whsec_..."}
For 24h webhooks are signed with the old secret too, so receivers can switch over.
`, adminEnvNote},
	"numbers": {"import|export [-db PATH] -user NAME [FILE.csv|-]", `Manages the inventory of the inventory backend, as the admin API does:

  numbers import   import or update a user's numbers from a CSV file
  numbers export   write a user's numbers as the CSV that import reads

Run 'bulkrestore help numbers import' for the format and flags.
`, ""},
	"numbers import": {"[-db PATH] -user NAME FILE.csv|-", `Imports or updates user NAME's inventory from a CSV file (- for standard
input) whose header row names its columns:

  number,state,released_at,requires_identity_update,needs_registration

number and state (active, released or unavailable) are required; released_at
is RFC 3339 or YYYY-MM-DD HH:MM:SS UTC, empty meaning now; the flags are 0 or
1, empty meaning 0. The import is one transaction: a bad row (or a number given
twice) aborts it, naming its line, and nothing is written. Re-importing a number
updates it; with -replace, the user's numbers the file lacks are deleted too.
The file is checked whole (and copied beside the database) before anything is
written, so memory stays flat however large it is.
`, adminEnvNote},
	"numbers export": {"[-db PATH] -user NAME [FILE.csv|-]", `Writes user NAME's inventory, in number order, as the CSV that numbers import
reads (every column; released_at in RFC 3339 UTC with its milliseconds), to
FILE (written whole or not at all, mode 0600) or standard output (- or none).
`, adminEnvNote},
	"backup": {"[-db PATH] OUT", `Writes a consistent copy of the database to OUT, which must not exist. It is
safe to take while the server runs.
`, adminEnvNote},
	"check": {"[-db PATH]", `Runs SQLite's integrity check on the database and prints its findings ("ok"
when sound); exits 1 when the file is damaged.
`, adminEnvNote},
	"migrate": {"-from FILE -to postgres://... [-resume]", `Copies everything in the SQLite database FILE into the PostgreSQL database:
users (with their key hashes and webhook secrets), inventory, and every job
with its numbers, attempts and webhook attempts, keeping ids and uuids.
Unfinished jobs stay unfinished, for the servers on PostgreSQL to finish. The
file's server lock is held throughout: stop its server first. The PostgreSQL
database must be empty; a copy cut short is finished by running it again with
-resume. Prints what it copied, table by table.
-to can also be set as BULKRESTORE_MIGRATE_TO (or BULKRESTORE_DB, when that is
a PostgreSQL URL): a URL that holds a password belongs in the environment.
`, ""},
	"bench": {"[flags]", `Benchmarks servers run in-process (against fake upstreams, and raw SQLite as
the baseline) and prints a table of the results; BENCHMARKS.md explains them.
A full run takes minutes; -scale and -only make it shorter.
`, flagEnvNote},
	"submit": {"[flags] FILE|-", `Reads numbers (one a line, or the first column of a CSV; a first row with no
digits is a header) from FILE or standard input (-), checks them, submits them
in jobs of at most -batch numbers and prints each job_uuid. With -wait it
waits for every job, showing its progress on standard error (numbers/s and an
ETA, the server's when it gives one), and writes every number's result.
Results are CSV, or JSON with -format json or -o FILE.json; they go to -o
FILE, or standard output with -o - (or with -wait and no -o). The CSV's
columns are number,status,status_code,message,requires_identity_update,
needs_registration,attempts,job_uuid. The key may come from
BULKRESTORE_API_KEY.
Exit status: 0 all restored, 1 some not restored, 2 usage, auth or server error.

With -dry-run nothing is created: the numbers are sent as dry runs (in batches
of -batch) and what restoring each would give now is printed as a table, or
written with -o as the results are (status unknown: the server could not
check it). -webhook is checked but never called; -wait does not apply. Exit
status: 0 none would fail, 1 some would fail, 2 usage, auth or server error.
`, flagEnvNote},
	"retry": {"[flags] JOB_UUID", `Retries the failed numbers of a finished job: the server makes a new job of
them, in the job's order, linked to it (retry_of, and retried_by on the
original). -status-code 500,503 retries only those that failed with these
codes. The new job's webhook_url is the original's, or -webhook URL (-webhook ''
for none). The new job_uuid is printed; then, as submit: -wait waits for it
with a progress display, and -wait or -o FILE.csv|FILE.json|- writes every
result. The request carries an Idempotency-Key, so a retry after a lost answer
makes no second job. The key may come from BULKRESTORE_API_KEY.
Exit status: 0 all restored (or no failed numbers to retry), 1 some not
restored, 2 usage, auth or server error.
`, flagEnvNote},
	"status": {"[flags] JOB_UUID", `Prints one job's summary; -json prints the server's JSON answer instead (the
results left out). -results adds a table of every number's result, -failed of
the failed ones only (the server filters them). -o FILE.csv|FILE.json writes
the results (with -failed, the failed ones) to a file instead, -o - to
standard output alone; -format csv|json overrides the file name's extension.
The CSV is the server's own, downloaded as it is written, in its columns:
  number,status,status_code,message,attempts,started_at,completed_at,
  requires_identity_update,needs_registration
(submit -o writes its own CSV, which adds job_uuid since its numbers may span
several jobs). JSON and the table are read a page at a time; either way a
large job is never held in memory. The key may come from BULKRESTORE_API_KEY.
`, flagEnvNote},
	"history": {"[flags] NUMBER", `Prints what happened to NUMBER in your jobs, newest job first: your inventory
row for it (inventory backend), then a table of job_uuid, status, status code,
attempts, completion time and message; -json prints the server's JSON answer
instead. A page holds -limit jobs; when more follow, standard error says the
-before to give for the next page. The key may come from BULKRESTORE_API_KEY.
`, flagEnvNote},
	"version": {"", `Prints the version and the commit it was built from.
`, ""},
	"help": {"[COMMAND [SUBCOMMAND]]", `Prints the list of commands, or one command's usage and flags (the same as
bulkrestore COMMAND -h).
`, ""},
}

// helpRequest is what a command returns when asked for its help (-h):
// run prints that help on stdout and returns flag.ErrHelp.
type helpRequest struct {
	cmd string        // as in commandHelp; "" for the list of commands
	fs  *flag.FlagSet // the command's flags; nil for a group such as user
}

// Error implements error.
func (h *helpRequest) Error() string { return flag.ErrHelp.Error() }

// Unwrap makes a helpRequest a flag.ErrHelp.
func (h *helpRequest) Unwrap() error { return flag.ErrHelp }

// usageHint is a usage mistake and the command whose -h explains it: main
// prints the mistake, then a line pointing there.
type usageHint struct {
	cmd string // "" for a mistake in the command name itself
	err error
}

// Error implements error.
func (u *usageHint) Error() string { return u.err.Error() }

// Unwrap lets errors.Is see errUsage.
func (u *usageHint) Unwrap() error { return u.err }

// pointer is the line main prints after the mistake.
func (u *usageHint) pointer() string {
	if u.cmd == "" {
		return "Run 'bulkrestore help' for the list of commands."
	}
	return "Run 'bulkrestore " + u.cmd + " -h' for usage."
}

// usageErrorf is a usage mistake in cmd.
func usageErrorf(cmd, format string, args ...any) error {
	return &usageHint{cmd: cmd, err: fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)}
}

// isHelpFlag reports whether arg asks for help the way the flag package
// understands it.
func isHelpFlag(arg string) bool {
	switch arg {
	case "-h", "--h", "-help", "--help":
		return true
	}
	return false
}

// runHelp is `bulkrestore help [COMMAND...]`: the list of commands, or
// whatever `COMMAND... -h` prints.
func runHelp(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	switch {
	case len(args) == 0:
		return &helpRequest{}
	case isHelpFlag(args[0]):
		return &helpRequest{cmd: "help"}
	case strings.HasPrefix(args[0], "-"):
		return usageErrorf("help", "help takes a command name, got %q", args[0])
	}
	return run(ctx, append(slices.Clone(args), "-h"), getenv, stdin, stdout, stderr)
}

// printHelp writes the help h asks for: the list of commands, or one
// command's usage line, text and flags.
func printHelp(w io.Writer, h *helpRequest) {
	if h.cmd == "" {
		fmt.Fprint(w, usageText)
		return
	}
	doc := commandHelp[h.cmd]
	fmt.Fprintf(w, "Usage: %s\n\n%s", strings.TrimSpace("bulkrestore "+h.cmd+" "+doc.args), doc.text)
	if h.fs == nil {
		return
	}
	flags := 0
	h.fs.VisitAll(func(f *flag.Flag) {
		flags++
		if _, ok := f.Value.(byteSize); ok {
			if n, err := strconv.ParseInt(f.DefValue, 10, 64); err == nil {
				f.DefValue = formatByteSize(n)
			}
		}
	})
	if flags == 0 {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	h.fs.SetOutput(w)
	h.fs.PrintDefaults()
	if doc.env != "" {
		fmt.Fprint(w, "\n"+doc.env)
	}
}

// formatByteSize writes a size the way -max-body takes it and the README
// writes it: 4MiB rather than 4194304.
func formatByteSize(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
