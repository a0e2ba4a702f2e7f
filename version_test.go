package main

import (
	"context"
	"strings"
	"testing"
)

func TestVersionIsPrintedWithTheStampedCommit(t *testing.T) {
	oldVersion, oldCommit := version, commit
	version, commit = "1.2.3", "abc123"
	defer func() { version, commit = oldVersion, oldCommit }()
	for _, args := range [][]string{{"version"}, {"serve", "-version"}, {"-version"}} {
		var out strings.Builder
		if err := run(context.Background(), args, mapEnv(nil), nil, &out, &out); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if got := strings.TrimSpace(out.String()); got != "bulkrestore 1.2.3 (abc123)" {
			t.Fatalf("%v printed %q, want %q", args, got, "bulkrestore 1.2.3 (abc123)")
		}
	}
	t.Run("BULKRESTORE_VERSION in the environment does not ask for the version", func(t *testing.T) {
		cfg, err := parseServeFlags(nil, mapEnv(map[string]string{"BULKRESTORE_VERSION": "2026.11"}), nil)
		if err != nil || cfg.showVersion {
			t.Fatalf("showVersion=%v err=%v, want false and nil", cfg.showVersion, err)
		}
	})
}
