package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// Settings an admin edits (channel credentials and ids) and the audit log
// of who changed what. The store keeps values as it is given them: the
// inbox seals secrets before they get here.

// Setting is one stored setting.
type Setting struct {
	Name      string
	Value     string
	Secret    bool
	UpdatedBy string
	UpdatedAt time.Time
}

// SettingChange sets Name to Value, or deletes it when Delete is set.
type SettingChange struct {
	Name   string
	Value  string
	Secret bool
	Delete bool
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID      string
	At      time.Time
	ActorID string
	Actor   string // the actor's name when it acted
	Action  string
	Target  string
	Detail  string
}

// Settings returns every stored setting, by name.
func (db *DB) Settings(ctx context.Context) ([]Setting, error) {
	rows, err := db.query(ctx, `SELECT name, value, secret, updated_by, updated_at FROM settings ORDER BY name`)
	if err != nil {
		return nil, wrap("settings", err)
	}
	defer rows.Close()
	var out []Setting
	for rows.Next() {
		var s Setting
		var at int64
		if err := rows.Scan(&s.Name, &s.Value, &s.Secret, &s.UpdatedBy, &at); err != nil {
			return nil, wrap("scan setting", err)
		}
		s.UpdatedAt = fromMicros(sql.NullInt64{Int64: at, Valid: true})
		out = append(out, s)
	}
	return out, wrap("settings", rows.Err())
}

// PutSettings applies changes and appends audit in one transaction: a
// change is never made without its record, nor recorded without being
// made.
func (db *DB) PutSettings(ctx context.Context, actorID string, changes []SettingChange, audit []AuditEntry) error {
	return wrap("put settings", db.inTx(ctx, func(tx *Tx) error {
		now := micros(db.clock.Now())
		for _, c := range changes {
			var err error
			if c.Delete {
				err = tx.exec(ctx, `DELETE FROM settings WHERE name = ?`, c.Name)
			} else {
				err = tx.exec(ctx, `INSERT INTO settings (name, value, secret, updated_by, updated_at) VALUES (?, ?, ?, ?, ?)
					ON CONFLICT (name) DO UPDATE SET value = excluded.value, secret = excluded.secret,
					updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
					c.Name, c.Value, c.Secret, actorID, now)
			}
			if err != nil {
				return err
			}
		}
		return tx.appendAudit(ctx, audit...)
	}))
}

// AppendAudit records entries (provider registrations, connections).
func (db *DB) AppendAudit(ctx context.Context, entries ...AuditEntry) error {
	return wrap("append audit", db.inTx(ctx, func(tx *Tx) error { return tx.appendAudit(ctx, entries...) }))
}

func (tx *Tx) appendAudit(ctx context.Context, entries ...AuditEntry) error {
	for _, e := range entries {
		at := tx.db.auditTime()
		if err := tx.exec(ctx, `INSERT INTO audit_log (id, at, actor_id, actor, action, target, detail) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			newID(at), micros(at), e.ActorID, e.Actor, e.Action, e.Target, e.Detail); err != nil {
			return err
		}
	}
	return nil
}

// AuditLog returns up to limit entries, newest first, older than the
// entry before ("" starts at the newest).
func (db *DB) AuditLog(ctx context.Context, before string, limit int) ([]AuditEntry, error) {
	q := `SELECT id, at, actor_id, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?`
	args := []any{limit}
	if before != "" {
		q = `SELECT id, at, actor_id, actor, action, target, detail FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?`
		args = []any{before, limit}
	}
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, wrap("audit log", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.ActorID, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, wrap("scan audit entry", err)
		}
		e.At = fromMicros(sql.NullInt64{Int64: at, Valid: true})
		out = append(out, e)
	}
	return out, wrap("audit log", rows.Err())
}

// PutOAuthState records a sign-in with a provider that session started.
func (db *DB) PutOAuthState(ctx context.Context, state, session, agentID, provider string, expires time.Time) error {
	return wrap("put oauth state", db.inTx(ctx, func(tx *Tx) error {
		// Old states go as new ones come: the table stays small.
		if err := tx.exec(ctx, `DELETE FROM oauth_states WHERE expires_at < ?`, micros(db.clock.Now())); err != nil {
			return err
		}
		return tx.exec(ctx, `INSERT INTO oauth_states (state_hash, session_hash, agent_id, provider, expires_at, result) VALUES (?, ?, ?, ?, ?, '')`,
			hashToken(state), hashToken(session), agentID, provider, micros(expires))
	}))
}

// UseOAuthState marks state used by the session and agent that started
// it, once, before it expires; anything else is refused.
func (db *DB) UseOAuthState(ctx context.Context, state, session, agentID, provider string) error {
	var n int64
	err := db.inTx(ctx, func(tx *Tx) error {
		now := micros(db.clock.Now())
		res, err := tx.execResult(ctx, `UPDATE oauth_states SET used_at = ? WHERE state_hash = ? AND session_hash = ? AND agent_id = ?
			AND provider = ? AND used_at IS NULL AND expires_at > ?`, now, hashToken(state), hashToken(session), agentID, provider, now)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return wrap("use oauth state", err)
	}
	if n != 1 {
		return switchboard.Errorf(switchboard.EFORBIDDEN, "this sign-in was not started here, has expired or was already used: start again")
	}
	return nil
}

// SetOAuthResult keeps what a used state's sign-in returned.
func (db *DB) SetOAuthResult(ctx context.Context, state, result string) error {
	return wrap("set oauth result", db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `UPDATE oauth_states SET result = ? WHERE state_hash = ?`, result, hashToken(state))
	}))
}

// OAuthResult returns what a used, unexpired state of the session and
// agent returned.
func (db *DB) OAuthResult(ctx context.Context, state, session, agentID string) (string, error) {
	var result string
	err := db.queryRow(ctx, `SELECT result FROM oauth_states WHERE state_hash = ? AND session_hash = ? AND agent_id = ?
		AND used_at IS NOT NULL AND expires_at > ?`, hashToken(state), hashToken(session), agentID, micros(db.clock.Now())).Scan(&result)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && result == "") {
		return "", switchboard.Errorf(switchboard.EFORBIDDEN, "this sign-in has expired or was not finished here: start again")
	}
	return result, wrap("oauth result", err)
}

// DeleteOAuthState forgets a sign-in once its result was used.
func (db *DB) DeleteOAuthState(ctx context.Context, state string) error {
	return wrap("delete oauth state", db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `DELETE FROM oauth_states WHERE state_hash = ?`, hashToken(state))
	}))
}

// auditTime is now, or a microsecond after the last entry's time.
func (db *DB) auditTime() time.Time {
	db.auditMu.Lock()
	defer db.auditMu.Unlock()
	t := db.clock.Now().Truncate(time.Microsecond)
	if !t.After(db.auditLast) {
		t = db.auditLast.Add(time.Microsecond)
	}
	db.auditLast = t
	return t
}
