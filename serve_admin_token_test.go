package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Where the admin token comes from, and what is refused.

func TestLoadAdminToken(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cases := []struct {
		name, file, env string
		want, warning   string // warning: a part of it
		err             string // a part of it; "" for none
	}{
		{"neither: the admin API is off", "", "", "", "", ""},
		{"from the environment, trimmed", "", " " + token + "\n", token, "", ""},
		{"from a private file, its newline trimmed", file("private", token+"\n", 0o600), "", token, "", ""},
		{"from a file others may read, with a warning", file("shared", token, 0o644), "", token, "chmod 600", ""},
		{"both set", file("both", token, 0o600), token, "", "", "set one"},
		{"an empty file", file("empty", "\n", 0o600), "", "", "", "is empty"},
		{"a short token", "", token[:31], "", "", "at least 32"},
		{"a token with a space", "", token + " " + token, "", "", "printable ASCII without spaces"},
		{"a token with a non-ASCII character", "", token + "é", "", "", "printable ASCII without spaces"},
		{"a missing file", filepath.Join(dir, "missing"), "", "", "", "no such file"},
		{"a folder", dir, "", "", "", "not a regular file"},
		{"a file too large to be a token", file("large", strings.Repeat("a", 5000), 0o600), "", "", "", "larger than 4096 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, warning, err := loadAdminToken(c.file, c.env)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want one saying %q", err, c.err)
				}
				if strings.Contains(err.Error(), token[:16]) {
					t.Fatalf("the error shows the token: %v", err)
				}
				return
			}
			if err != nil || got != c.want || !strings.Contains(warning, c.warning) || (c.warning == "") != (warning == "") {
				t.Fatalf("token %q, warning %q, err %v; want %q, a warning with %q", got, warning, err, c.want, c.warning)
			}
		})
	}
}

func TestServeFlagsReadTheAdminToken(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"-admin-token-file", []string{"-admin-token-file", path}, nil},
		{"BULKRESTORE_ADMIN_TOKEN_FILE", nil, map[string]string{"BULKRESTORE_ADMIN_TOKEN_FILE": path}},
		{"BULKRESTORE_ADMIN_TOKEN", nil, map[string]string{"BULKRESTORE_ADMIN_TOKEN": token}},
	} {
		t.Run(c.name+" turns the admin API on", func(t *testing.T) {
			cfg, err := parseServeFlags(c.args, mapEnv(c.env), io.Discard)
			if err != nil || cfg.adminToken != token {
				t.Fatalf("adminToken %q (%v), want the token", cfg.adminToken, err)
			}
		})
	}
	t.Run("a bad token is a usage error", func(t *testing.T) {
		if _, err := parseServeFlags(nil, mapEnv(map[string]string{"BULKRESTORE_ADMIN_TOKEN": "short"}), io.Discard); !errors.Is(err, errUsage) {
			t.Fatalf("err=%v, want a usage error", err)
		}
	})
	t.Run("-max-import-body is 256MiB unless set", func(t *testing.T) {
		cfg, err := parseServeFlags(nil, mapEnv(nil), io.Discard)
		if err != nil || cfg.maxImportBody != 256<<20 || cfg.adminToken != "" {
			t.Fatalf("maxImportBody %d, adminToken %q (%v)", cfg.maxImportBody, cfg.adminToken, err)
		}
	})
}

func TestServerWarnsOfATokenFileOthersMayRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(testAdminToken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "-admin-token-file", path)
	logs := s.Logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "chmod 600") || strings.Contains(logs, testAdminToken) {
		t.Fatalf("want a warning naming chmod 600 and never the token:\n%s", logs)
	}
	resp, _ := adminRequest(t, "GET", s.URL+"/admin/v1/users", "Bearer "+testAdminToken, "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("the token from the file: status=%d, want 200", resp.StatusCode)
	}
}
