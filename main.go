// Command bulkrestore serves the MultiTEL-style v3 bulk phone-number restore
// API from one binary and one SQLite file. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
)

// version and commit are stamped at build time with
// -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

// errUsage marks a command-line mistake; main exits 2 for it.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	var exit *exitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		fmt.Fprintln(os.Stderr, "bulkrestore:", err)
		os.Exit(exit.code)
	case errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp):
		if !errors.Is(err, flag.ErrHelp) && err.Error() != errUsage.Error() {
			fmt.Fprintln(os.Stderr, "bulkrestore:", err)
		}
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "bulkrestore:", err)
		os.Exit(1)
	}
}

// usageText is printed for help and for an unknown command.
const usageText = `bulkrestore: the v3 bulk phone-number restore API in one binary.

Usage:
  bulkrestore [serve] [flags]                  run the API server (the default)
  bulkrestore user add -db PATH NAME           create a user; prints its API key and webhook secret
  bulkrestore user list -db PATH               list users
  bulkrestore user del -db PATH NAME           delete a user with its jobs and inventory
  bulkrestore user rotate-secret -db PATH NAME new webhook secret; the old one signs too for 24h
  bulkrestore numbers import -db PATH -user NAME FILE.csv|-
                                               import or update inventory numbers
  bulkrestore backup -db PATH OUT              consistent copy of a live database
  bulkrestore check -db PATH                   run SQLite's integrity check
  bulkrestore bench [-json FILE|-] [flags]     benchmark an in-process server (bench -h)
  bulkrestore submit -server URL -user U [-key K] [-webhook URL] [-wait] [-o FILE.csv|FILE.json|-] FILE|-
                                               client: submit numbers in jobs; -wait shows progress
                                               and writes every result (submit -h)
  bulkrestore status -server URL -user U [-key K] [-json] JOB_UUID
                                               client: print one job's summary
  bulkrestore version                          print the version

Every flag can also be set as BULKRESTORE_<FLAG> (upper case, - as _).
Run "bulkrestore serve -h" for the server's flags.
`

// run is the whole program: main only maps its error to an exit code, and
// end-to-end tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	if cmd == "serve" || cmd == "bench" {
		widenScheduler(getenv)
	}
	switch cmd {
	case "serve":
		cfg, err := parseServeFlags(args, getenv, stderr)
		if err != nil {
			return err
		}
		if cfg.showVersion {
			fmt.Fprintln(stdout, versionString())
			return nil
		}
		return serve(ctx, cfg, stderr, nil)
	case "user":
		return runUser(ctx, args, getenv, stdout, stderr)
	case "numbers":
		return runNumbers(ctx, args, getenv, stdin, stdout, stderr)
	case "backup":
		return runBackup(ctx, args, getenv, stdout, stderr)
	case "check":
		return runCheck(ctx, args, getenv, stdout, stderr)
	case "bench":
		return runBench(ctx, args, getenv, stdout, stderr)
	case "submit":
		return runSubmit(ctx, args, getenv, stdin, stdout, stderr)
	case "status":
		return runStatus(ctx, args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help":
		fmt.Fprint(stdout, usageText)
		return nil
	default:
		fmt.Fprint(stderr, usageText)
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

// widenScheduler runs the server with twice as many Go processors as there
// are CPUs (unless GOMAXPROCS is set; calling it again changes nothing). The single writer spends
// milliseconds at a time inside SQLite, which is Go code, holding one of the
// processors; on a 2-core machine that left the HTTP goroutines of
// upstream calls waiting their turn. Measured with `bulkrestore bench`:
// upstream efficiency 0.87-0.89 with 2, 0.94 with 4, the other scenarios
// unchanged (BENCHMARKS.md).
func widenScheduler(getenv func(string) string) {
	if n := 2 * runtime.NumCPU(); getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < n {
		runtime.GOMAXPROCS(n)
	}
}

// versionString names the version and, when known, the commit.
func versionString() string {
	c := commit
	if c == "" {
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	if c == "" {
		return "bulkrestore " + version
	}
	return "bulkrestore " + version + " (" + c + ")"
}

// userAgent is sent on every outgoing request.
func userAgent() string { return "bulkrestore/" + version }

// envName is the environment variable that may set a flag.
func envName(flagName string) string {
	return "BULKRESTORE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseArgs sets fs from the environment (BULKRESTORE_<FLAG>), then from
// args, where flags and positional arguments may come in any order. It
// returns the positional arguments.
func parseArgs(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "version" {
			return // BULKRESTORE_VERSION is a common deployment label, not a request to print one
		}
		if v := getenv(envName(f.Name)); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%w: %s=%q: %v", errUsage, envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
