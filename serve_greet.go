package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// greet prepares the database for a first run and says at start what a
// newcomer needs next: under -dev it seeds the demo user and inventory and
// shows the demo user's webhook secret (to verify signatures locally);
// without -dev and with no user yet, it says how to add one, since every
// request would be a 401.
func greet(ctx context.Context, cfg serveConfig, store *Store, log *slog.Logger) error {
	if cfg.dev {
		if err := seedDev(ctx, store); err != nil {
			return err
		}
		demo, err := store.userByName(ctx, "demo")
		if err != nil {
			return fmt.Errorf("read demo user: %w", err)
		}
		log.Warn("development mode: user demo with API key demo, private webhooks allowed",
			"webhook_secret", demo.WebhookSecret)
		return nil
	}
	users, err := store.listUsers(ctx)
	if err != nil {
		return err
	}
	if len(users) == 0 {
		log.Warn("no users yet: every API request will be answered 401; add one with: bulkrestore user add -db " +
			shellQuote(redactDB(cfg.db)) + " NAME")
	}
	return nil
}

// shellQuote returns s as one word for a POSIX shell: as it is when that
// is safe, else in single quotes.
func shellQuote(s string) string {
	safe := s != ""
	for _, c := range s {
		safe = safe && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/._-+:,=@%", c))
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
