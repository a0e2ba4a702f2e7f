package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// sessionRow is one console session as stored: who signed in, its CSRF
// token and its times. The id itself is never stored, only its hash.
type sessionRow struct {
	IDHash    []byte
	User      User // zero for the admin
	Admin     bool
	CSRF      string
	Proof     []byte // the admin's: adminProof of the token it signed in with
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time
}

// insertSession stores a new session.
func (s *Store) insertSession(tx *sql.Tx, row sessionRow) error {
	var user any
	if !row.Admin {
		user = row.User.ID
	}
	var proof any
	if row.Admin {
		proof = row.Proof
	}
	_, err := tx.Exec(s.q(`INSERT INTO sessions (id_hash, user_id, admin, csrf_token, admin_proof, created_at, last_seen_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), row.IDHash, user, boolInt(row.Admin), row.CSRF, proof, ms(row.CreatedAt), ms(row.LastSeen), ms(row.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

// sessionByHash returns the session whose id hashes to hash, with its user,
// unless it has expired by now: errNotFound then, as for one that does not
// exist (its user deleted, or signed out).
func (s *Store) sessionByHash(ctx context.Context, hash []byte, now time.Time) (sessionRow, error) {
	row := sessionRow{IDHash: hash}
	var userID sql.NullInt64
	var name, secret sql.NullString
	var created, seen, expires int64
	err := s.rq.queryRow(ctx, `SELECT s.user_id, s.admin, s.csrf_token, s.admin_proof, s.created_at, s.last_seen_at, s.expires_at,
		u.name, u.webhook_secret FROM sessions s LEFT JOIN users u ON u.id = s.user_id
		WHERE s.id_hash = ? AND s.expires_at > ?`, hash, ms(now)).
		Scan(&userID, &row.Admin, &row.CSRF, &row.Proof, &created, &seen, &expires, &name, &secret)
	if errors.Is(err, sql.ErrNoRows) {
		return sessionRow{}, errNotFound
	}
	if err != nil {
		return sessionRow{}, fmt.Errorf("read session: %w", err)
	}
	row.User = User{ID: userID.Int64, Name: name.String, WebhookSecret: secret.String}
	row.CreatedAt, row.LastSeen, row.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(seen).UTC(), time.UnixMilli(expires).UTC()
	return row, nil
}

// touchSession records activity on a session and moves its expiry.
func (s *Store) touchSession(tx *sql.Tx, hash []byte, lastSeen, expires time.Time) error {
	_, err := tx.Exec(s.q("UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE id_hash = ?"), ms(lastSeen), ms(expires), hash)
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// deleteSession ends a session (sign-out).
func (s *Store) deleteSession(tx *sql.Tx, hash []byte) error {
	if _, err := tx.Exec(s.q("DELETE FROM sessions WHERE id_hash = ?"), hash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// deleteExpiredSessions deletes the sessions expired by now.
func (s *Store) deleteExpiredSessions(tx *sql.Tx, now time.Time) error {
	if _, err := tx.Exec(s.q("DELETE FROM sessions WHERE expires_at <= ?"), ms(now)); err != nil {
		return fmt.Errorf("delete expired sessions: %w", err)
	}
	return nil
}
