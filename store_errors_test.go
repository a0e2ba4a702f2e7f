package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

func TestStoreErrorsAreClassifiedByResultCode(t *testing.T) {
	store := newTestStore(t)
	ctx := context.Background()
	if err := store.createUser(ctx, "alice", "k", newWebhookSecret()); err != nil {
		t.Fatal(err)
	}
	_, duplicate := store.w.Exec("INSERT INTO users (name, key_hash, webhook_secret, created_at) VALUES ('alice', x'00', 's', 0)")
	_, fkErr := store.w.Exec("INSERT INTO inventory (user_id, number, state, released_at) VALUES (999, '15551230000', 'active', 0)")
	_, checkErr := store.w.Exec("INSERT INTO inventory (user_id, number, state, released_at) VALUES (1, '15551230000', 'gone', 0)")
	_, syntaxErr := store.w.Exec("SELEC 1")

	// Another connection holding the write lock makes a write busy.
	path := filepath.Join(t.TempDir(), "busy.db")
	holder := openTestDB(t, path)
	if _, err := holder.Exec("CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	conn, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")
	other := openTestDB(t, path)
	if _, err := other.Exec("PRAGMA busy_timeout = 10"); err != nil {
		t.Fatal(err)
	}
	_, busyErr := other.Exec("INSERT INTO t VALUES (1)")

	cases := []struct {
		name       string
		err        error
		want       storeErrorClass
		unique     bool
		foreignKey bool
	}{
		{name: "no error is ok", err: nil, want: storeOK},
		{name: "a duplicate user name is a permanent unique violation", err: duplicate, want: storePermanent, unique: true},
		{name: "a missing user is a permanent foreign key violation", err: fkErr, want: storePermanent, foreignKey: true},
		{name: "a CHECK constraint is permanent", err: checkErr, want: storePermanent},
		{name: "a statement error is permanent", err: syntaxErr, want: storePermanent},
		{name: "a busy database is transient", err: busyErr, want: storeTransient},
		{name: "a wrapped busy error is still transient", err: fmt.Errorf("record: %w", busyErr), want: storeTransient},
		{name: "a stopped writer is transient", err: fmt.Errorf("x: %w", errWriterClosed), want: storeTransient},
		{name: "a cancelled wait is transient", err: context.Canceled, want: storeTransient},
		{name: "an error of our own is permanent", err: errors.New("UNIQUE constraint failed (but not from SQLite)"), want: storePermanent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.want != storeOK && c.err == nil {
				t.Fatal("the case's error did not happen")
			}
			if got := classifyStoreError(c.err); got != c.want {
				t.Fatalf("classifyStoreError(%v)=%s, want %s", c.err, got, c.want)
			}
			if got := isUniqueViolation(c.err); got != c.unique {
				t.Fatalf("isUniqueViolation(%v)=%v, want %v", c.err, got, c.unique)
			}
			if got := isForeignKeyViolation(c.err); got != c.foreignKey {
				t.Fatalf("isForeignKeyViolation(%v)=%v, want %v", c.err, got, c.foreignKey)
			}
		})
	}
}
