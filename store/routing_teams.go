package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
)

// SetTeam moves a conversation to another team for good (a person's
// decision), recording why; team "" is the default team. The after-hours
// hand-off does not use it: see SetRoutedTeam.
func (db *DB) SetTeam(ctx context.Context, conversationID, team, by, rule, reason string) error {
	err := db.inTx(ctx, func(tx *Tx) error {
		var from sql.NullString
		err := tx.queryRow(ctx, `SELECT team_id FROM conversations WHERE id = ?`+db.dialect.lockRow(), conversationID).Scan(&from)
		if errors.Is(err, sql.ErrNoRows) {
			return switchboard.Errorf(switchboard.ENOTFOUND, "conversation %s not found", conversationID)
		}
		if err != nil {
			return err
		}
		if from.String == team {
			return nil
		}
		if err := tx.exec(ctx, `UPDATE conversations SET team_id = ?, routed_team = '', wait_reason = '' WHERE id = ?`, nullString(team), conversationID); err != nil {
			return err
		}
		return tx.addEvent(ctx, conversationID, switchboard.EventHandoff, by, map[string]any{"from": from.String, "to": team, "home": team, "rule": rule, "reason": reason}, db.clock.Now())
	})
	return wrap("set team", err)
}

// SetRoutedTeam records which team a waiting conversation is routed in:
// routed is the after-hours team it was handed to (path is the teams the
// hand-off went through, its own team first), or "" when it is back with
// its own team, which it never leaves (team_id is unchanged). A handoff
// event (from, to, home, path, rule, reason) is written when that changes,
// and only then; it reports whether it wrote one. A conversation no longer
// waiting is left alone.
func (db *DB) SetRoutedTeam(ctx context.Context, conversationID, routed string, path []string, rule, reason string) (bool, error) {
	wrote := false
	err := db.inTx(ctx, func(tx *Tx) error {
		wrote = false
		var home sql.NullString
		var from string
		err := tx.queryRow(ctx, `SELECT team_id, routed_team FROM conversations c WHERE c.id = ? AND `+waitingWhere+db.dialect.lockRow(), conversationID).Scan(&home, &from)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if from == routed {
			return nil
		}
		// The reason to wait changes with the team: let the next one be written.
		if err := tx.exec(ctx, `UPDATE conversations SET routed_team = ?, wait_reason = '' WHERE id = ?`, routed, conversationID); err != nil {
			return err
		}
		if from == "" {
			from = home.String
		}
		to := routed
		if to == "" {
			to = home.String
		}
		wrote = true
		data := map[string]any{"from": from, "to": to, "home": home.String, "rule": rule, "reason": reason}
		if len(path) > 0 {
			data["path"] = path
		}
		return tx.addEvent(ctx, conversationID, switchboard.EventHandoff, "", data, db.clock.Now())
	})
	return wrote, wrap("set routed team", err)
}

// SetHeld takes a conversation out of automatic routing (held) or puts it
// back; a held conversation is assigned by hand only.
func (db *DB) SetHeld(ctx context.Context, conversationID string, held bool, by string) error {
	v := 0
	if held {
		v = 1
	}
	err := db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.execResult(ctx, `UPDATE conversations SET held = ? WHERE id = ? AND held <> ?`, v, conversationID, v)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return tx.addEvent(ctx, conversationID, switchboard.EventHeld, by, map[string]any{"held": held}, db.clock.Now())
	})
	return wrap("set held", err)
}

const teamKeyPrefix = "team:"

// GetRoutingConfig returns the routing configuration.
func (db *DB) GetRoutingConfig(ctx context.Context) (route.StoredConfig, error) {
	c := route.StoredConfig{Teams: map[string]json.RawMessage{}}
	rows, err := db.query(ctx, `SELECT key, value FROM routing_config`)
	if err != nil {
		return c, fmt.Errorf("store: routing config: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return c, fmt.Errorf("store: scan routing config: %w", err)
		}
		switch {
		case k == "keywords":
			c.Keywords = json.RawMessage(v)
		case strings.HasPrefix(k, teamKeyPrefix):
			c.Teams[strings.TrimPrefix(k, teamKeyPrefix)] = json.RawMessage(v)
		}
	}
	return c, rows.Err()
}

// PutRoutingConfig replaces the routing configuration. Every document must
// be valid JSON; teams not named are removed.
func (db *DB) PutRoutingConfig(ctx context.Context, c route.StoredConfig) error {
	for team, v := range c.Teams {
		if !json.Valid(v) {
			return switchboard.Errorf(switchboard.EINVALID, "routing configuration of team %q is not valid JSON", team)
		}
	}
	if len(c.Keywords) > 0 && !json.Valid(c.Keywords) {
		return switchboard.Errorf(switchboard.EINVALID, "keyword rules are not valid JSON")
	}
	now := micros(db.clock.Now())
	return wrap("put routing config", db.inTx(ctx, func(tx *Tx) error {
		if err := tx.exec(ctx, `DELETE FROM routing_config`); err != nil {
			return err
		}
		for team, v := range c.Teams {
			if err := tx.exec(ctx, `INSERT INTO routing_config (key, value, updated_at) VALUES (?, ?, ?)`, teamKeyPrefix+team, string(v), now); err != nil {
				return err
			}
		}
		if len(c.Keywords) > 0 {
			return tx.exec(ctx, `INSERT INTO routing_config (key, value, updated_at) VALUES (?, ?, ?)`, "keywords", string(c.Keywords), now)
		}
		return nil
	}))
}

// SetPriority sets a conversation's priority (higher is served first),
// recording who changed it.
func (db *DB) SetPriority(ctx context.Context, conversationID string, priority int, by string) error {
	return wrap("set priority", db.inTx(ctx, func(tx *Tx) error {
		var from int
		err := tx.queryRow(ctx, `SELECT priority FROM conversations WHERE id = ?`+db.dialect.lockRow(), conversationID).Scan(&from)
		if errors.Is(err, sql.ErrNoRows) {
			return switchboard.Errorf(switchboard.ENOTFOUND, "conversation %s not found", conversationID)
		}
		if err != nil || from == priority {
			return err
		}
		if err := tx.exec(ctx, `UPDATE conversations SET priority = ? WHERE id = ?`, priority, conversationID); err != nil {
			return err
		}
		return tx.addEvent(ctx, conversationID, switchboard.EventPriority, by, map[string]any{"from": from, "to": priority}, db.clock.Now())
	}))
}

// EnsureTeams creates the teams named (id and name alike) that do not
// exist yet: the routing configuration names teams, and conversations and
// agents refer to them by id.
func (db *DB) EnsureTeams(ctx context.Context, ids []string) error {
	return wrap("ensure teams", db.inTx(ctx, func(tx *Tx) error {
		now := micros(db.clock.Now())
		for _, id := range ids {
			if strings.TrimSpace(id) == "" {
				continue
			}
			if err := tx.exec(ctx, `INSERT INTO teams (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, id, id, now); err != nil {
				return err
			}
		}
		return nil
	}))
}
