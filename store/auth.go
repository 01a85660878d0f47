package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// Browser sign-in (docs/design.md §6.3): password hashes, sessions,
// the sign-in throttle's failures and invitations. Secrets are stored
// as SHA-256 hashes only (hashToken): a copy of the database opens no
// session and accepts no invitation.

// randomToken returns prefix and 32 random bytes, base64url.
func randomToken(prefix string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// AgentCredentials returns the agent with email and its password hash
// ("" when it has none).
func (db *DB) AgentCredentials(ctx context.Context, email string) (switchboard.Agent, string, error) {
	var hash string
	row := db.queryRow(ctx, `SELECT `+agentColumns+`, password_hash FROM agents WHERE email = ?`, strings.ToLower(strings.TrimSpace(email)))
	a, err := scanAgent(scanFunc(func(dest ...any) error { return row.Scan(append(dest, &hash)...) }))
	if errors.Is(err, sql.ErrNoRows) {
		return a, "", switchboard.Errorf(switchboard.ENOTFOUND, "no agent with that e-mail")
	}
	return a, hash, wrap("agent credentials", err)
}

// PasswordHash returns an agent's password hash.
func (db *DB) PasswordHash(ctx context.Context, agentID string) (string, error) {
	var hash string
	err := db.queryRow(ctx, `SELECT password_hash FROM agents WHERE id = ?`, agentID).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", switchboard.Errorf(switchboard.ENOTFOUND, "agent %s not found", agentID)
	}
	return hash, wrap("password hash", err)
}

// scanFunc adapts a function to the Scan interface scanAgent takes.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// SetPassword replaces an agent's password hash and ends every session
// the agent holds, except keep (the session that changed it; "" for none).
func (db *DB) SetPassword(ctx context.Context, agentID, hash, keep string) error {
	return wrap("set password", db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.execResult(ctx, `UPDATE agents SET password_hash = ? WHERE id = ?`, hash, agentID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return switchboard.Errorf(switchboard.ENOTFOUND, "agent %s not found", agentID)
		}
		return tx.exec(ctx, `DELETE FROM web_sessions WHERE agent_id = ? AND id_hash <> ?`, agentID, hashOrEmpty(keep))
	}))
}

func hashOrEmpty(token string) string {
	if token == "" {
		return ""
	}
	return hashToken(token)
}

// WebSession is a signed-in browser.
type WebSession struct {
	Agent      switchboard.Agent
	CSRF       string
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// CreateSession opens a session for an agent until expires and returns
// its cookie value and CSRF token.
func (db *DB) CreateSession(ctx context.Context, agentID string, expires time.Time) (token, csrf string, err error) {
	token, csrf = randomToken("sbs_"), randomToken("")
	now := micros(db.clock.Now())
	err = db.inTx(ctx, func(tx *Tx) error {
		// Sessions long expired go with each new one: the table holds
		// live sessions and a few dead ones, never years of them.
		if err := tx.exec(ctx, `DELETE FROM web_sessions WHERE agent_id = ? AND expires_at < ?`, agentID, now); err != nil {
			return err
		}
		return tx.exec(ctx, `INSERT INTO web_sessions (id_hash, agent_id, csrf, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			hashToken(token), agentID, csrf, now, now, micros(expires))
	})
	return token, csrf, wrap("create session", err)
}

// Session returns the session a cookie value names, expired or not.
func (db *DB) Session(ctx context.Context, token string) (WebSession, error) {
	var s WebSession
	var seen, expires sql.NullInt64
	row := db.queryRow(ctx, `SELECT `+prefixed("a.", agentColumns)+`, s.csrf, s.last_seen_at, s.expires_at FROM web_sessions s JOIN agents a ON a.id = s.agent_id WHERE s.id_hash = ?`, hashToken(token))
	a, err := scanAgent(scanFunc(func(dest ...any) error { return row.Scan(append(dest, &s.CSRF, &seen, &expires)...) }))
	if errors.Is(err, sql.ErrNoRows) {
		return s, switchboard.Errorf(switchboard.EUNAUTHORIZED, "not signed in")
	}
	s.Agent, s.LastSeenAt, s.ExpiresAt = a, fromMicros(seen), fromMicros(expires)
	return s, wrap("session", err)
}

// TouchSession records a session's use and moves its expiry.
func (db *DB) TouchSession(ctx context.Context, token string, expires time.Time) error {
	return wrap("touch session", db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `UPDATE web_sessions SET last_seen_at = ?, expires_at = ? WHERE id_hash = ?`, micros(db.clock.Now()), micros(expires), hashToken(token))
	}))
}

// DeleteSession ends one session.
func (db *DB) DeleteSession(ctx context.Context, token string) error {
	return wrap("delete session", db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `DELETE FROM web_sessions WHERE id_hash = ?`, hashToken(token))
	}))
}

// LoginFailures counts the failures recorded for each subject since t.
func (db *DB) LoginFailures(ctx context.Context, since time.Time, subjects ...string) (map[string]int, error) {
	out := make(map[string]int, len(subjects))
	for _, s := range subjects {
		var n int
		if err := db.queryRow(ctx, `SELECT COUNT(*) FROM login_failures WHERE subject = ? AND at >= ?`, s, micros(since)).Scan(&n); err != nil {
			return nil, wrap("login failures", err)
		}
		out[s] = n
	}
	return out, nil
}

// RecordLoginFailure records a failed sign-in against each subject and
// forgets failures older than before.
func (db *DB) RecordLoginFailure(ctx context.Context, before time.Time, subjects ...string) error {
	now := micros(db.clock.Now())
	return wrap("record login failure", db.inTx(ctx, func(tx *Tx) error {
		for _, s := range subjects {
			if err := tx.exec(ctx, `DELETE FROM login_failures WHERE subject = ? AND at < ?`, s, micros(before)); err != nil {
				return err
			}
			if err := tx.exec(ctx, `INSERT INTO login_failures (subject, at) VALUES (?, ?)`, s, now); err != nil {
				return err
			}
		}
		return nil
	}))
}

// ClearLoginFailures forgets a subject's failures (after a success).
func (db *DB) ClearLoginFailures(ctx context.Context, subject string) error {
	return wrap("clear login failures", db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `DELETE FROM login_failures WHERE subject = ?`, subject)
	}))
}

// Invite is a pending invitation.
type Invite struct {
	Email, Name string
	Role        switchboard.Role
	InvitedBy   string
	ExpiresAt   time.Time
}

// CreateInvite stores an invitation and returns its one-time token.
func (db *DB) CreateInvite(ctx context.Context, inv Invite) (string, error) {
	token := randomToken("sbi_")
	err := db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `INSERT INTO invites (token_hash, email, name, role, invited_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			hashToken(token), strings.ToLower(strings.TrimSpace(inv.Email)), inv.Name, inv.Role, inv.InvitedBy, micros(db.clock.Now()), micros(inv.ExpiresAt))
	})
	return token, wrap("create invite", err)
}

// PendingInvite returns the invitation a token names while it is unused
// and unexpired.
func (db *DB) PendingInvite(ctx context.Context, token string) (Invite, error) {
	var inv Invite
	var expires sql.NullInt64
	err := db.queryRow(ctx, `SELECT email, name, role, invited_by, expires_at FROM invites WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?`,
		hashToken(token), micros(db.clock.Now())).Scan(&inv.Email, &inv.Name, &inv.Role, &inv.InvitedBy, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return inv, switchboard.Errorf(switchboard.ENOTFOUND, "this invitation is unknown, used or expired")
	}
	inv.ExpiresAt = fromMicros(expires)
	return inv, wrap("invite", err)
}

// AcceptInvite creates the invited agent with a password hash and marks
// the invitation used, in one transaction: a link works once.
func (db *DB) AcceptInvite(ctx context.Context, token, name, passwordHash string) (switchboard.Agent, error) {
	inv, err := db.PendingInvite(ctx, token)
	if err != nil {
		return switchboard.Agent{}, err
	}
	if strings.TrimSpace(name) == "" {
		name = inv.Name
	}
	a, err := newAgent(switchboard.Agent{Name: name, Email: inv.Email, Role: inv.Role}, db.clock.Now())
	if err != nil {
		return a, err
	}
	err = db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.execResult(ctx, `UPDATE invites SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?`, micros(a.CreatedAt), hashToken(token), micros(a.CreatedAt))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return switchboard.Errorf(switchboard.ENOTFOUND, "this invitation is unknown, used or expired")
		}
		return tx.insertAgent(ctx, a, passwordHash)
	})
	if db.dialect.isUniqueViolation(err) {
		return a, switchboard.Errorf(switchboard.ECONFLICT, "an agent with email %s exists", a.Email)
	}
	return a, wrap("accept invite", err)
}

// CannedResponse is a reply text agents insert by shortcut.
type CannedResponse struct {
	ID       string `json:"id"`
	Shortcut string `json:"shortcut"`
	Title    string `json:"title"`
	Body     string `json:"body"`
}

// CannedResponses returns every canned response by shortcut.
func (db *DB) CannedResponses(ctx context.Context) ([]CannedResponse, error) {
	rows, err := db.query(ctx, `SELECT id, shortcut, title, body FROM canned_responses ORDER BY shortcut`)
	if err != nil {
		return nil, wrap("canned responses", err)
	}
	defer rows.Close()
	out := []CannedResponse{}
	for rows.Next() {
		var c CannedResponse
		if err := rows.Scan(&c.ID, &c.Shortcut, &c.Title, &c.Body); err != nil {
			return nil, wrap("scan canned response", err)
		}
		out = append(out, c)
	}
	return out, wrap("canned responses", rows.Err())
}

// PutCannedResponse adds a canned response, or replaces the one with its
// shortcut.
func (db *DB) PutCannedResponse(ctx context.Context, c CannedResponse) (CannedResponse, error) {
	err := db.inTx(ctx, func(tx *Tx) error {
		if err := tx.exec(ctx, `DELETE FROM canned_responses WHERE shortcut = ?`, c.Shortcut); err != nil {
			return err
		}
		now := db.clock.Now()
		c.ID = newID(now)
		return tx.exec(ctx, `INSERT INTO canned_responses (id, shortcut, title, body, created_at) VALUES (?, ?, ?, ?, ?)`, c.ID, c.Shortcut, c.Title, c.Body, micros(now))
	})
	return c, wrap("put canned response", err)
}

// DeleteCannedResponse removes a canned response by id.
func (db *DB) DeleteCannedResponse(ctx context.Context, id string) error {
	return wrap("delete canned response", db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.execResult(ctx, `DELETE FROM canned_responses WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return switchboard.Errorf(switchboard.ENOTFOUND, "canned response %s not found", id)
		}
		return nil
	}))
}
