package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"time"
)

// The console's sessions: a random 256-bit id in a cookie, stored as its
// hash with who signed in and a CSRF token. These operations speak no HTTP;
// http_ui*.go carries the id in the cookie and the token in the forms.

// sessionCookie is the name of the console's session cookie.
const sessionCookie = "bulkrestore_session"

// maxSessionTouchEvery bounds how stale a session's last activity may be
// stored: a session is written at most this often, not on every page.
const maxSessionTouchEvery = time.Minute

// errSignInBlocked is returned by signIn while the address has no failed
// sign-ins left (see authFailures); wait says for how long.
type errSignInBlocked struct{ wait time.Duration }

// Error implements error.
func (e *errSignInBlocked) Error() string {
	return "too many failed sign-ins from your address; try again later"
}

// newSessionToken returns a fresh random 256-bit value, URL-safe.
func newSessionToken() string { return randomToken(32, base64.RawURLEncoding.EncodeToString) }

// signIn checks a user's name and API key exactly as the API does, failures
// counted against the address by the same limiter, and starts a session.
// It returns the session's id (for the cookie) and the session.
func (a *app) signIn(ctx context.Context, name, key, ip string) (string, sessionRow, error) {
	return a.signInAs(ctx, ip, "invalid username or API key", func() (sessionRow, bool, error) {
		u, err := a.store.authenticate(ctx, name, key)
		if errors.Is(err, errNotFound) {
			return sessionRow{}, false, nil
		}
		return sessionRow{User: u}, err == nil, err
	})
}

// signInAdmin checks the admin token as the admin API does (the same
// comparison, failures counted by the same limiter) and starts an admin
// session.
func (a *app) signInAdmin(ctx context.Context, token, ip string) (string, sessionRow, error) {
	return a.signInAs(ctx, ip, "invalid admin token", func() (sessionRow, bool, error) {
		return sessionRow{Admin: true, Proof: adminProof(a.cfg.adminToken)}, a.adminTokenOK(token), nil
	})
}

// adminProof is what an admin session keeps of the admin token it was
// opened with: a SHA-256 of it, domain-separated, never the token. A
// session whose proof is not that of the token set now has ended.
func adminProof(token string) []byte {
	sum := sha256.Sum256([]byte("bulkrestore console admin session\n" + token))
	return sum[:]
}

// signInAs starts a session for whom check finds, unless the address has
// no failed sign-ins left; a check that finds no one counts as a failure
// and is refused with refusal.
func (a *app) signInAs(ctx context.Context, ip, refusal string, check func() (sessionRow, bool, error)) (string, sessionRow, error) {
	now := a.now()
	if wait, blocked := a.authFailures.exhausted(ip, now); blocked {
		return "", sessionRow{}, &errSignInBlocked{wait: wait}
	}
	who, ok, err := check()
	if err != nil {
		return "", sessionRow{}, err
	}
	if !ok {
		a.authFailures.take(ip, now)
		return "", sessionRow{}, newAPIError(codeUnauthorized, refusal)
	}
	return a.startSession(ctx, who)
}

// startSession stores a new session for who (a user, or the admin) and
// returns its id.
func (a *app) startSession(ctx context.Context, who sessionRow) (string, sessionRow, error) {
	id := newSessionToken()
	now := a.now()
	s := who
	s.IDHash, s.CSRF = hashKey(id), newSessionToken()
	s.CreatedAt, s.LastSeen = now, now
	s.ExpiresAt = a.sessionExpiry(s.CreatedAt, now)
	if err := a.writer.do(ctx, func(tx *sql.Tx) error { return a.store.insertSession(tx, s) }); err != nil {
		return "", sessionRow{}, err
	}
	a.log.Info("console sign-in", "user", s.name())
	return id, s, nil
}

// sessionExpiry is when a session created at created and last used at
// seen ends: idle for -console-idle-timeout, or -console-session-lifetime
// after sign-in, whichever comes first.
func (a *app) sessionExpiry(created, seen time.Time) time.Time {
	idle, absolute := seen.Add(a.cfg.consoleIdle), created.Add(a.cfg.consoleLifetime)
	if idle.Before(absolute) {
		return idle
	}
	return absolute
}

// session returns the live session whose id is id, or errNotFound.
func (a *app) session(ctx context.Context, id string) (sessionRow, error) {
	if id == "" {
		return sessionRow{}, errNotFound
	}
	s, err := a.store.sessionByHash(ctx, hashKey(id), a.now())
	if err == nil && s.Admin &&
		(a.cfg.adminToken == "" || subtle.ConstantTimeCompare(s.Proof, adminProof(a.cfg.adminToken)) != 1) {
		return sessionRow{}, errNotFound // opened with an admin token that is no longer the one
	}
	return s, err
}

// touch records a request made by the person as activity, pushing the
// idle deadline back; it writes at most every few minutes. A poll of a
// live part of a page is no activity, so that a forgotten tab still times
// out; a request refused (a bad CSRF token) is none either.
func (a *app) touch(ctx context.Context, s *sessionRow) {
	now := a.now()
	if now.Sub(s.LastSeen) < min(a.cfg.consoleIdle/8, maxSessionTouchEvery) {
		return
	}
	s.LastSeen, s.ExpiresAt = now, a.sessionExpiry(s.CreatedAt, now)
	err := a.writer.do(ctx, func(tx *sql.Tx) error { return a.store.touchSession(tx, s.IDHash, s.LastSeen, s.ExpiresAt) })
	if err != nil {
		// The session is valid either way; only its idle deadline did not move.
		a.log.Warn("touch console session", "err", err)
	}
}

// endSession deletes a session (sign-out).
func (a *app) endSession(ctx context.Context, s sessionRow) error {
	return a.writer.do(ctx, func(tx *sql.Tx) error { return a.store.deleteSession(tx, s.IDHash) })
}

// csrfOK reports whether token is the session's CSRF token, compared in
// constant time.
func (s sessionRow) csrfOK(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRF)) == 1
}

// name is who signed in, for logs: the user's name, or "admin".
func (s sessionRow) name() string {
	if s.Admin {
		return "admin"
	}
	return s.User.Name
}
