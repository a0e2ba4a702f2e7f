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
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode tells the user what err says, once, on stderr, and returns the
// exit status for it: 0 for success or a help text (flag.ErrHelp), 2 for a
// usage mistake (followed by a line pointing at the command's -h), the
// code an exitError carries, else 1.
func exitCode(err error, stderr io.Writer) int {
	var exit *exitError
	var hint *usageHint
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &exit):
		fmt.Fprintln(stderr, "bulkrestore:", err)
		return exit.code
	case errors.Is(err, errUsage):
		// "usage: " starts every usage error's text; the pointer to -h says it better.
		if msg := strings.TrimPrefix(err.Error(), errUsage.Error()+": "); msg != errUsage.Error() {
			fmt.Fprintln(stderr, "bulkrestore:", msg)
		}
		if errors.As(err, &hint) {
			fmt.Fprintln(stderr, hint.pointer())
		}
		return 2
	default:
		fmt.Fprintln(stderr, "bulkrestore:", err)
		return 1
	}
}

// run is the whole program: main only maps its error to an exit code, and
// end-to-end tests call it directly. When asked for help (-h, help) it
// prints that help on stdout and returns flag.ErrHelp.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	switch {
	case len(args) > 0 && isHelpFlag(args[0]):
		cmd, args = "help", nil
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		cmd, args = args[0], args[1:]
	}
	err := dispatch(ctx, cmd, args, getenv, stdin, stdout, stderr)
	var help *helpRequest
	var hint *usageHint
	switch {
	case errors.As(err, &help):
		printHelp(stdout, help)
		return flag.ErrHelp
	case errors.Is(err, errUsage) && !errors.As(err, &hint):
		return &usageHint{cmd: cmd, err: err}
	}
	return err
}

// dispatch runs one command.
func dispatch(ctx context.Context, cmd string, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	switch cmd {
	case "serve":
		return runServe(ctx, args, getenv, stdout, stderr)
	case "user":
		return runUser(ctx, args, getenv, stdout, stderr)
	case "numbers":
		return runNumbers(ctx, args, getenv, stdin, stdout, stderr)
	case "backup":
		return runBackup(ctx, args, getenv, stdout, stderr)
	case "check":
		return runCheck(ctx, args, getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args, getenv, stdout, stderr)
	case "bench":
		widenScheduler(getenv)
		return runBench(ctx, args, getenv, stdout, stderr)
	case "submit":
		return runSubmit(ctx, args, getenv, stdin, stdout, stderr)
	case "status":
		return runStatus(ctx, args, getenv, stdout, stderr)
	case "retry":
		return runRetry(ctx, args, getenv, stdout, stderr)
	case "history":
		return runHistory(ctx, args, getenv, stdout, stderr)
	case "version":
		rest, err := parseArgs(flag.NewFlagSet("version", flag.ContinueOnError), args, getenv)
		if err != nil {
			return err
		}
		if len(rest) > 0 {
			return usageErrorf("version", "version takes no arguments, got %q", rest)
		}
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help":
		return runHelp(ctx, args, getenv, stdin, stdout, stderr)
	default:
		return usageErrorf("", "unknown command %q", cmd)
	}
}

// runServe is `bulkrestore serve`. A database file that did not exist is
// created, and the log says so once the server is up.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServeFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if cfg.showVersion {
		fmt.Fprintln(stdout, versionString())
		return nil
	}
	widenScheduler(getenv)
	fresh := !databaseExists(cfg.db)
	return serve(ctx, cfg, stderr, func(string) {
		if fresh {
			newLogger(cfg, stderr).Info("created database", "db", cfg.db)
		}
	})
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

// parseArgs sets fs from args, where flags and positional arguments may
// come in any order, then every flag args did not set from the environment
// (BULKRESTORE_<FLAG>). It returns the positional arguments. Nothing is
// printed: -h gives a helpRequest for run to print, and a mistake a
// usageHint naming fs's command for main to print.
func parseArgs(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpRequest{cmd: fs.Name(), fs: fs}
			}
			return nil, usageErrorf(fs.Name(), "%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	given := map[string]bool{"version": true} // BULKRESTORE_VERSION is a common deployment label, not a request to print one
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && !given[f.Name] && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = usageErrorf(fs.Name(), "%s=%q: %v", envName(f.Name), v, err)
			}
		}
	})
	return positional, envErr
}
