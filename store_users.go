package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// hashKey is the stored form of an API key. Keys are 128+ random bits, so a
// plain SHA-256 is enough and costs microseconds to verify.
func hashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// randomToken returns n random bytes in the given encoding.
func randomToken(n int, encode func([]byte) string) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return encode(b)
}

// newAPIKey returns a fresh 192-bit API key.
func newAPIKey() string { return randomToken(24, hex.EncodeToString) }

// newWebhookSecret returns a fresh Standard Webhooks secret.
func newWebhookSecret() string {
	return "whsec_" + randomToken(32, base64.StdEncoding.EncodeToString)
}

// User is an API account.
type User struct {
	ID            int64
	Name          string
	WebhookSecret string
	CreatedAt     time.Time
}

// errUserExists is returned when adding a user whose name is taken.
var errUserExists = errors.New("user already exists")

// createUser stores a user with the given key (hashed) and secret.
func (s *Store) createUser(ctx context.Context, name, key, secret string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec("INSERT INTO users (name, key_hash, webhook_secret, created_at) VALUES (?, ?, ?, ?)",
			name, hashKey(key), secret, ms(s.now()))
		return err
	})
	if isUniqueViolation(err) {
		return errUserExists
	}
	return err
}

// listUsers returns every user, by name.
func (s *Store) listUsers(ctx context.Context) ([]User, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT id, name, webhook_secret, created_at FROM users ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var users []User
	for rows.Next() {
		var u User
		var created sql.NullInt64
		if err := rows.Scan(&u.ID, &u.Name, &u.WebhookSecret, &created); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		u.CreatedAt = fromMs(created)
		users = append(users, u)
	}
	return users, rows.Err()
}

// deleteUser removes a user with its jobs, their results and its
// inventory, and returns the user's id; errNotFound if there is none.
func (s *Store) deleteUser(ctx context.Context, name string) (int64, error) {
	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRow("DELETE FROM users WHERE name = ? RETURNING id", name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotFound
		}
		return err
	})
	if err != nil && !errors.Is(err, errNotFound) {
		return 0, fmt.Errorf("delete user: %w", err)
	}
	return id, err
}

// rotateSecret gives a user a new webhook secret; the old one keeps signing
// alongside it for overlap, so receivers can switch without losing messages.
func (s *Store) rotateSecret(ctx context.Context, name, secret string, overlap time.Duration) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		n, err := execCount(tx, `UPDATE users SET previous_secret = webhook_secret, previous_until = ?,
			webhook_secret = ? WHERE name = ?`, ms(s.now().Add(overlap)), secret, name)
		if err == nil && n == 0 {
			return errNotFound
		}
		return err
	})
	if err != nil && !errors.Is(err, errNotFound) {
		return fmt.Errorf("rotate secret: %w", err)
	}
	return err
}

// authenticate returns the user whose name and key match, or errNotFound.
func (s *Store) authenticate(ctx context.Context, name, key string) (User, error) {
	var u User
	var hash []byte
	err := s.rq.queryRow(ctx, "SELECT id, name, key_hash, webhook_secret FROM users WHERE name = ?", name).
		Scan(&u.ID, &u.Name, &hash, &u.WebhookSecret)
	if errors.Is(err, sql.ErrNoRows) {
		// Hash anyway so an unknown name costs what a wrong key costs.
		subtle.ConstantTimeCompare(hashKey(key), make([]byte, sha256.Size))
		return User{}, errNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	if subtle.ConstantTimeCompare(hashKey(key), hash) != 1 {
		return User{}, errNotFound
	}
	return u, nil
}

// userByName looks a user up for the admin commands.
func (s *Store) userByName(ctx context.Context, name string) (User, error) {
	var u User
	err := s.r.QueryRowContext(ctx, "SELECT id, name, webhook_secret FROM users WHERE name = ?", name).
		Scan(&u.ID, &u.Name, &u.WebhookSecret)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, errNotFound
	}
	return u, err
}
