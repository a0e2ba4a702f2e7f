package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
)

// adminTokenEnv is the environment variable that may hold the admin token
// itself (BULKRESTORE_ADMIN_TOKEN_FILE names a file, as -admin-token-file).
// There is no flag for the token itself: a command line is visible to every
// user of the machine.
const adminTokenEnv = "BULKRESTORE_ADMIN_TOKEN"

// Admin tokens: at least minAdminToken characters (a guess must be
// hopeless: 32 hex digits are 128 bits); a token file of more than
// maxAdminTokenFile bytes is not a token.
const (
	minAdminToken     = 32
	maxAdminTokenFile = 4096
)

// loadAdminToken returns the admin token from the file (-admin-token-file)
// or from the environment's value, trimmed; "" when neither is set. warning
// is set when the file may be read by others than its owner: the token
// still loads (container secrets are often mounted so), but the log says
// so at start. The token is never part of an error.
func loadAdminToken(file, fromEnv string) (token, warning string, err error) {
	source := adminTokenEnv
	switch {
	case file != "" && fromEnv != "":
		return "", "", fmt.Errorf("-admin-token-file and %s are both set; set one", adminTokenEnv)
	case file == "" && fromEnv == "":
		return "", "", nil
	case file != "":
		source = "-admin-token-file " + file
		if fromEnv, warning, err = readAdminTokenFile(file); err != nil {
			return "", "", err
		}
	}
	token = strings.TrimSpace(fromEnv)
	switch {
	case token == "":
		return "", "", fmt.Errorf("the admin token of %s is empty", source)
	case len(token) < minAdminToken:
		return "", "", fmt.Errorf("the admin token of %s has %d characters, want at least %d (make one with: openssl rand -hex 32)",
			source, len(token), minAdminToken)
	case strings.ContainsFunc(token, func(c rune) bool { return c < 0x21 || c > 0x7e }):
		return "", "", fmt.Errorf("the admin token of %s must be printable ASCII without spaces, as it is sent in a header", source)
	}
	return token, warning, nil
}

// readAdminTokenFile reads a token file, and says when others than its
// owner may read it.
func readAdminTokenFile(path string) (content, warning string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("admin token: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", "", fmt.Errorf("admin token: %w", err)
	}
	if !info.Mode().IsRegular() {
		return "", "", errors.New("admin token: " + path + " is not a regular file")
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		warning = fmt.Sprintf("the admin token file %s may be read by others than its owner (mode %04o); chmod 600 it", path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxAdminTokenFile+1))
	if err != nil {
		return "", "", fmt.Errorf("admin token: %w", err)
	}
	if len(data) > maxAdminTokenFile {
		return "", "", fmt.Errorf("admin token: %s is larger than %d bytes: not a token file", path, maxAdminTokenFile)
	}
	return string(data), warning, nil
}

// logAdminAPI says at start whether the admin API is on, and warns of a
// token file others may read; never the token.
func logAdminAPI(cfg serveConfig, log *slog.Logger) {
	if cfg.adminTokenWarning != "" {
		log.Warn(cfg.adminTokenWarning)
	}
	if cfg.adminToken != "" {
		log.Info("admin API on at /admin/v1", "max_import_body", cfg.maxImportBody)
	}
}
