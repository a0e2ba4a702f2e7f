package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The command line as Go and Unix users expect it: -h, --help and help
// print on stdout and exit 0; a mistake is said once, with a pointer to -h,
// and exits 2.

// helpRun is what one run of the program gave, and the exit status and
// stderr main would add.
type helpRun struct {
	stdout, stderr string // written by run
	mainSays       string // what main prints for run's error
	code           int
	err            error
}

// runMain runs the program in-process and maps its error as main does.
func runMain(t *testing.T, env map[string]string, args ...string) helpRun {
	t.Helper()
	var out, errOut, said bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, args, mapEnv(env), strings.NewReader(""), &out, &errOut)
	code := exitCode(err, &said)
	return helpRun{stdout: out.String(), stderr: errOut.String(), mainSays: said.String(), code: code, err: err}
}

// TestHelpListsTheCommands checks -h, --help, -help and help: the command list on stdout, exit 0.
func TestHelpListsTheCommands(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-help"}, {"help"}} {
		t.Run(strings.Join(args, " ")+" prints the command list and exits 0", func(t *testing.T) {
			r := runMain(t, nil, args...)
			if r.code != 0 || !errors.Is(r.err, flag.ErrHelp) {
				t.Fatalf("exit: got=%d (%v), want 0 with flag.ErrHelp", r.code, r.err)
			}
			if r.stdout != usageText || r.stderr != "" || r.mainSays != "" {
				t.Fatalf("got stdout=%q stderr=%q main=%q, want the command list on stdout alone", r.stdout, r.stderr, r.mainSays)
			}
		})
	}
}

// TestHelpOfEachCommand checks that `CMD -h` and `help CMD` print the same usage and flags of that command, exit 0.
func TestHelpOfEachCommand(t *testing.T) {
	cases := []struct {
		cmd   string
		shows []string // flags, and other text the help must hold
	}{
		{"serve", []string{"\n  -addr string", "\n  -dev\n", "(default 4MiB)", "BULKRESTORE_<FLAG>", "BULKRESTORE_UPSTREAM_USER"}},
		{"user", []string{"user add -db PATH NAME", "user list", "user del", "user rotate-secret"}},
		{"user add", []string{"\n  -db string", `{"username":"NAME","api_key":"...","webhook_secret":"whsec_..."}`, "BULKRESTORE_DB"}},
		{"user list", []string{"\n  -db string"}},
		{"user del", []string{"\n  -db string"}},
		{"user rotate-secret", []string{"\n  -db string", "24h"}},
		{"user rotate-key", []string{"\n  -db string", "\n  -overlap duration", "720h"}},
		{"numbers", []string{"numbers import"}},
		{"numbers import", []string{"\n  -db string", "\n  -user string", "\n  -replace\n", "number,state,released_at,requires_identity_update,needs_registration"}},
		{"numbers export", []string{"\n  -db string", "\n  -user string", "RFC 3339"}},
		{"backup", []string{"\n  -db string", "OUT"}},
		{"check", []string{"\n  -db string"}},
		{"bench", []string{"\n  -scale float", "\n  -only string"}},
		{"submit", []string{"\n  -format string", "\n  -wait\n", "\n  -o string", "numbers/s"}},
		{"status", []string{"\n  -results\n", "\n  -failed\n", "\n  -o string", "\n  -format string", "\n  -json\n"}},
		{"history", []string{"\n  -limit int", "\n  -before string", "\n  -json\n", "BULKRESTORE_<FLAG>"}},
		{"version", nil},
		{"help", nil},
	}
	for _, c := range cases {
		t.Run(c.cmd+" -h and help "+c.cmd+" print its own usage", func(t *testing.T) {
			words := strings.Fields(c.cmd)
			byFlag := runMain(t, nil, append(words, "-h")...)
			byHelp := runMain(t, nil, append([]string{"help"}, words...)...)
			for _, r := range []helpRun{byFlag, byHelp} {
				if r.code != 0 || r.stderr != "" || r.mainSays != "" {
					t.Fatalf("got exit %d, stderr %q, main %q; want 0 and nothing on stderr", r.code, r.stderr, r.mainSays)
				}
			}
			if byFlag.stdout != byHelp.stdout {
				t.Fatalf("-h and help differ:\n%s\n---\n%s", byFlag.stdout, byHelp.stdout)
			}
			if want := "Usage: bulkrestore " + c.cmd; !strings.HasPrefix(byFlag.stdout, want) {
				t.Fatalf("help starts %q, want %q", byFlag.stdout[:min(len(byFlag.stdout), 60)], want)
			}
			if commandHelp[c.cmd].text == "" {
				t.Fatalf("no help text for %q", c.cmd)
			}
			for _, s := range c.shows {
				if !strings.Contains(byFlag.stdout, s) {
					t.Errorf("help lacks %q:\n%s", s, byFlag.stdout)
				}
			}
		})
	}
}

// TestUsageLinesNameEveryCommand checks that the command list and the user usage error name every command, rotate-secret included.
func TestUsageLinesNameEveryCommand(t *testing.T) {
	names := make([]string, 0, len(commandHelp))
	for name := range commandHelp {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !strings.Contains(usageText, "\n  bulkrestore "+name+" ") {
			t.Errorf("the command list lacks %q", name)
		}
	}
	r := runMain(t, nil, "user")
	for _, sub := range []string{"add", "list", "del", "rotate-secret"} {
		if !strings.Contains(r.mainSays, sub) {
			t.Errorf("`user` alone says %q, want it to name %s", r.mainSays, sub)
		}
	}
}

// TestUsageMistakeIsSaidOnceWithAPointerToHelp checks what a usage mistake prints: the error once, then one line naming the right -h; exit 2.
func TestUsageMistakeIsSaidOnceWithAPointerToHelp(t *testing.T) {
	db := newTestDB(t)
	addUser(t, db, "alice")
	cases := []struct {
		name string
		env  map[string]string
		args []string
		says string // the error line, after "bulkrestore: "
		cmd  string // whose -h the pointer names; "" for the command list
	}{
		{"an unknown flag of submit", nil, []string{"submit", "-x"}, "flag provided but not defined: -x", "submit"},
		{"an unknown flag with no command", nil, []string{"-nope"}, "flag provided but not defined: -nope", "serve"},
		{"an unknown flag of a user command", nil, []string{"user", "add", "-x", "bob"}, "flag provided but not defined: -x", "user add"},
		{"a bad flag value", nil, []string{"status", "-results=maybe", "8f6c1f0e-23d2-4717-8c8e-1a518e5738f0"},
			`invalid boolean value "maybe" for -results: parse error`, "status"},
		{"a bad setting in the environment", map[string]string{"BULKRESTORE_WORKERS": "many"}, []string{"serve"},
			`BULKRESTORE_WORKERS="many": parse error`, "serve"},
		{"a setting serve refuses", nil, []string{"serve", "-workers", "0"}, "-workers must be at least 1", "serve"},
		{"an unknown command", nil, []string{"frobnicate"}, `unknown command "frobnicate"`, ""},
		{"help for an unknown command", nil, []string{"help", "frobnicate"}, `unknown command "frobnicate"`, ""},
		{"an unknown user command", nil, []string{"user", "rename"},
			`unknown user command "rename" (want add, list, del, rotate-key or rotate-secret, before the flags)`, "user"},
		{"a missing argument", nil, []string{"user", "del", "-db", db}, "user del takes 1 argument(s), got 0", "user del"},
		{"an argument too many", nil, []string{"version", "now"}, `version takes no arguments, got ["now"]`, "version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runMain(t, c.env, c.args...)
			pointer := "Run 'bulkrestore " + c.cmd + " -h' for usage."
			if c.cmd == "" {
				pointer = "Run 'bulkrestore help' for the list of commands."
			}
			want := "bulkrestore: " + c.says + "\n" + pointer + "\n"
			if r.code != 2 || r.mainSays != want || r.stdout != "" || r.stderr != "" {
				t.Fatalf("got exit %d, main said %q, stdout %q, stderr %q; want exit 2 and %q alone", r.code, r.mainSays, r.stdout, r.stderr, want)
			}
		})
	}
}

// TestFormatByteSize checks how help writes a byte size.
func TestFormatByteSize(t *testing.T) {
	cases := []struct {
		n    int64
		want string
	}{{4 << 20, "4MiB"}, {64 << 10, "64KiB"}, {2 << 30, "2GiB"}, {1000, "1000"}, {(4 << 20) + 1, "4194305"}, {1536 << 10, "1536KiB"}}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			if got := formatByteSize(c.n); got != c.want {
				t.Fatalf("formatByteSize(%d): got=%q, want %q", c.n, got, c.want)
			}
		})
	}
}

// TestExitStatusesOfTheBinary checks help, usage mistakes and a missing database through the built binary: its exit status and which stream says what.
func TestExitStatusesOfTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped under -short")
	}
	bin := buildBinary(t)
	missing := filepath.Join(t.TempDir(), "missing.db")
	cases := []struct {
		name        string
		args        []string
		code        int
		stdoutStart string
		stderr      string // the whole of it; "-" to check only that it holds the missing path
	}{
		{"-h prints the command list", []string{"-h"}, 0, "bulkrestore: the v3", ""},
		{"--help prints the command list", []string{"--help"}, 0, "bulkrestore: the v3", ""},
		{"help submit prints submit's usage", []string{"help", "submit"}, 0, "Usage: bulkrestore submit", ""},
		{"user add -h prints its usage", []string{"user", "add", "-h"}, 0, "Usage: bulkrestore user add", ""},
		{"an unknown flag is said once", []string{"submit", "-x"}, 2, "",
			"bulkrestore: flag provided but not defined: -x\nRun 'bulkrestore submit -h' for usage.\n"},
		{"an unknown command", []string{"frob"}, 2, "",
			"bulkrestore: unknown command \"frob\"\nRun 'bulkrestore help' for the list of commands.\n"},
		{"user list on a missing database fails", []string{"user", "list", "-db", missing}, 1, "", "-"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, c.args...)
			cmd.Env = childEnv()
			cmd.Dir = t.TempDir()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code || !strings.HasPrefix(stdout.String(), c.stdoutStart) || (c.stdoutStart == "" && stdout.Len() > 0) {
				t.Fatalf("got exit %d, stdout %q; want %d and stdout starting %q", code, stdout.String(), c.code, c.stdoutStart)
			}
			switch c.stderr {
			case "-":
				if !strings.Contains(stderr.String(), missing) {
					t.Fatalf("stderr %q does not name %s", stderr.String(), missing)
				}
			default:
				if stderr.String() != c.stderr {
					t.Fatalf("stderr: got=%q, want %q", stderr.String(), c.stderr)
				}
			}
		})
	}
	if databaseExists(missing) {
		t.Fatalf("user list created %s", missing)
	}
}
