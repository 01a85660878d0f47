package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/switchboard-inbox/switchboard"
)

// GetCustomer returns a customer with identities. A customer merged into
// another comes back with MergedInto set and nothing else to show.
func (db *DB) GetCustomer(ctx context.Context, id string) (switchboard.Customer, error) {
	var c switchboard.Customer
	var created sql.NullInt64
	var merged sql.NullString
	err := db.queryRow(ctx, `SELECT id, name, created_at, merged_into FROM customers WHERE id = ?`, id).Scan(&c.ID, &c.Name, &created, &merged)
	if errors.Is(err, sql.ErrNoRows) {
		return c, switchboard.Errorf(switchboard.ENOTFOUND, "customer %s not found", id)
	}
	if err != nil {
		return c, fmt.Errorf("store: get customer: %w", err)
	}
	c.CreatedAt, c.MergedInto = fromMicros(created), merged.String
	if c.MergedInto != "" {
		return c, nil
	}
	rows, err := db.query(ctx, `SELECT kind, value FROM identities WHERE customer_id = ? ORDER BY created_at, kind, value`, id)
	if err != nil {
		return c, fmt.Errorf("store: customer identities: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r switchboard.IdentityRef
		if err := rows.Scan(&r.Kind, &r.Value); err != nil {
			return c, fmt.Errorf("store: scan identity: %w", err)
		}
		c.Identities = append(c.Identities, r)
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("store: customer identities: %w", err)
	}
	c.Claims, err = db.claims(ctx, id)
	return c, err
}

// claims returns what a customer claimed, each with the other customer
// whose proven identity it is, if any: a merge an agent may want.
func (db *DB) claims(ctx context.Context, customerID string) ([]switchboard.Claim, error) {
	rows, err := db.query(ctx, `SELECT ic.kind, ic.value, COALESCE(i.customer_id, ''), COALESCE(o.name, '') FROM identity_claims ic
		LEFT JOIN identities i ON i.kind = ic.kind AND i.value = ic.value AND i.customer_id <> ic.customer_id
		LEFT JOIN customers o ON o.id = i.customer_id
		WHERE ic.customer_id = ? ORDER BY ic.created_at, ic.kind, ic.value`, customerID)
	if err != nil {
		return nil, fmt.Errorf("store: customer claims: %w", err)
	}
	defer rows.Close()
	var out []switchboard.Claim
	for rows.Next() {
		var c switchboard.Claim
		if err := rows.Scan(&c.Kind, &c.Value, &c.OwnerID, &c.OwnerName); err != nil {
			return nil, fmt.Errorf("store: scan claim: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CustomerConversations returns a customer's conversations, newest first.
func (db *DB) CustomerConversations(ctx context.Context, customerID string) ([]switchboard.Conversation, error) {
	rows, err := db.query(ctx, "SELECT "+conversationColumns+conversationFrom+" WHERE c.customer_id = ? ORDER BY c.last_message_at DESC, c.id DESC", customerID)
	if err != nil {
		return nil, fmt.Errorf("store: customer conversations: %w", err)
	}
	defer rows.Close()
	var out []switchboard.Conversation
	for rows.Next() {
		c, err := scanConversation(rows)
		if err != nil {
			return nil, fmt.Errorf("store: scan conversation: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, db.fillChannels(ctx, out)
}

// mergeRecord is what a merge moved, kept so that it can be undone.
type mergeRecord struct {
	Identities    []switchboard.IdentityRef `json:"identities"`        // the other's, moved to keep
	Conversations []string                  `json:"conversations"`     // the other's, moved to keep
	OtherClaims   []claimRow                `json:"other_claims"`      // the other's claims, deleted
	AddedClaims   []switchboard.IdentityRef `json:"added_claims"`      // claims keep gained from the other
	DroppedClaims []claimRow                `json:"dropped_claims"`    // keep's claims the merge made true
	Emptied       string                    `json:"emptied,omitempty"` // the other's open conversation, emptied into Into
	EmptiedStatus switchboard.Status        `json:"emptied_status,omitempty"`
	Into          string                    `json:"into,omitempty"`
	Messages      []string                  `json:"messages,omitempty"` // moved from Emptied into Into
	Events        []string                  `json:"events,omitempty"`
	Renamed       bool                      `json:"renamed,omitempty"` // keep had no name and took the other's
}

type claimRow struct {
	switchboard.IdentityRef
	CreatedAt int64 `json:"created_at"`
}

// MergeCustomers folds other into keep: identities and conversations move
// to keep, other is left behind as a redirect. When both have an open
// conversation, the other's messages and events move into keep's and the
// emptied conversation is resolved, so keep still has one open thread.
// What moved is recorded, so that UnmergeCustomers can undo it. It
// returns the conversations that changed: the other's, and keep's open
// one when messages moved into it.
func (db *DB) MergeCustomers(ctx context.Context, keep, other, agentID string) ([]string, error) {
	if keep == other {
		return nil, switchboard.Errorf(switchboard.EINVALID, "cannot merge a customer into itself")
	}
	var changed []string
	err := db.inTx(ctx, func(tx *Tx) error {
		var rec mergeRecord
		now := db.clock.Now()
		names, err := tx.lockPair(ctx, keep, other)
		if err != nil {
			return err
		}
		for id, merged := range names {
			if merged.into != "" {
				return switchboard.Errorf(switchboard.ECONFLICT, "customer %s was already merged into %s", id, merged.into)
			}
		}
		keepOpen, err := tx.openConversationID(ctx, keep)
		if err != nil {
			return err
		}
		otherOpen, err := tx.openConversationID(ctx, other)
		if err != nil {
			return err
		}
		if rec.Conversations, err = tx.strings(ctx, `SELECT id FROM conversations WHERE customer_id = ?`, other); err != nil {
			return err
		}
		changed = append(changed[:0], rec.Conversations...)
		if keepOpen != "" && otherOpen != "" {
			rec.Into, rec.Emptied = keepOpen, otherOpen
			if err := tx.queryRow(ctx, `SELECT status FROM conversations WHERE id = ?`, otherOpen).Scan(&rec.EmptiedStatus); err != nil {
				return err
			}
			if rec.Messages, err = tx.strings(ctx, `SELECT id FROM messages WHERE conversation_id = ?`, otherOpen); err != nil {
				return err
			}
			if rec.Events, err = tx.strings(ctx, `SELECT id FROM events WHERE conversation_id = ?`, otherOpen); err != nil {
				return err
			}
			// Both conversations' customer channels change, and the other's
			// open cycle goes (below): their days' rollups are stale.
			if err := tx.conversationsChanged(ctx, now, cycleKinds, keepOpen, otherOpen); err != nil {
				return err
			}
			for _, q := range []string{
				`UPDATE messages SET conversation_id = ? WHERE conversation_id = ?`,
				`UPDATE events SET conversation_id = ? WHERE conversation_id = ?`,
			} {
				if err := tx.exec(ctx, q, keepOpen, otherOpen); err != nil {
					return err
				}
			}
			if err := tx.recount(ctx, keepOpen); err != nil {
				return err
			}
			// Resolved as SetStatus resolves: what kept it from agents and
			// what it waited for no longer apply.
			if err := tx.exec(ctx, `UPDATE conversations SET status = 'resolved', resolved_at = ?, wait_reason = '' WHERE id = ?`, micros(now), otherOpen); err != nil {
				return err
			}
			// Merged away is not resolved: its open cycle is not a
			// resolution (the kept conversation carries the customer on),
			// and nobody has it any more.
			if err := tx.exec(ctx, `DELETE FROM cycles WHERE conversation_id = ? AND resolved_at IS NULL`, otherOpen); err != nil {
				return err
			}
			if err := tx.exec(ctx, `UPDATE assignments SET ended_at = ? WHERE conversation_id = ? AND ended_at IS NULL`, micros(now), otherOpen); err != nil {
				return err
			}
			if err := tx.exec(ctx, `DELETE FROM routing_exclusions WHERE conversation_id = ?`, otherOpen); err != nil {
				return err
			}
			if err := tx.addEvent(ctx, otherOpen, switchboard.EventMerged, agentID, map[string]any{"into_conversation": keepOpen, "into_customer": keep}, now); err != nil {
				return err
			}
			changed = append(changed, keepOpen)
		}
		if rec.Identities, err = tx.identities(ctx, other); err != nil {
			return err
		}
		if rec.OtherClaims, err = tx.claimRows(ctx, other); err != nil {
			return err
		}
		keepClaims, err := tx.claimRows(ctx, keep)
		if err != nil {
			return err
		}
		for _, q := range []string{
			`UPDATE identities SET customer_id = ? WHERE customer_id = ?`,
			`UPDATE conversations SET customer_id = ? WHERE customer_id = ?`,
		} {
			if err := tx.exec(ctx, q, keep, other); err != nil {
				return err
			}
		}
		if err := tx.exec(ctx, `DELETE FROM identity_claims WHERE customer_id = ?`, other); err != nil {
			return err
		}
		for _, c := range rec.OtherClaims {
			if !hasClaim(keepClaims, c.IdentityRef) {
				rec.AddedClaims = append(rec.AddedClaims, c.IdentityRef)
			}
			if err := tx.insertClaim(ctx, []any{keep, c.Kind, c.Value, c.CreatedAt}); err != nil {
				return err
			}
		}
		// A claim the merge made true is an identity now, not a claim.
		for _, c := range keepClaims {
			if slices.Contains(rec.Identities, c.IdentityRef) {
				rec.DroppedClaims = append(rec.DroppedClaims, c)
			}
		}
		if err := tx.exec(ctx, `DELETE FROM identity_claims WHERE customer_id = ? AND EXISTS
			(SELECT 1 FROM identities i WHERE i.customer_id = identity_claims.customer_id AND i.kind = identity_claims.kind AND i.value = identity_claims.value)`, keep); err != nil {
			return err
		}
		if err := tx.exec(ctx, `UPDATE customers SET merged_into = ? WHERE id = ?`, keep, other); err != nil {
			return err
		}
		if names[keep].name == "" && names[other].name != "" {
			rec.Renamed = true
			if err := tx.exec(ctx, `UPDATE customers SET name = ? WHERE id = ?`, names[other].name, keep); err != nil {
				return err
			}
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := tx.exec(ctx, `INSERT INTO merges (id, keep_id, other_id, agent_id, record, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			newID(now), keep, other, nullString(agentID), string(b), micros(now)); err != nil {
			return fmt.Errorf("record merge: %w", err)
		}
		if open := cmp.Or(keepOpen, otherOpen); open != "" {
			return tx.addEvent(ctx, open, switchboard.EventMerged, agentID, map[string]any{"customer": keep, "merged": other}, now)
		}
		return nil
	})
	return changed, wrap("merge customers", err)
}

// UnmergeCustomers undoes the last merge of other into keep, as it was
// recorded: the other's identities, claims and conversations go back to
// it, messages and events moved between open conversations move back,
// the emptied conversation opens again as it was, and other is a customer
// again. What arrived since stays with keep. A merge a later one built on
// (keep merged away since) must be undone first. It returns the
// conversations that changed.
func (db *DB) UnmergeCustomers(ctx context.Context, keep, other, agentID string) ([]string, error) {
	var changed []string
	err := db.inTx(ctx, func(tx *Tx) error {
		now := db.clock.Now()
		names, err := tx.lockPair(ctx, keep, other)
		if err != nil {
			return err
		}
		if names[other].into != keep {
			return switchboard.Errorf(switchboard.ECONFLICT, "customer %s is not merged into %s", other, keep)
		}
		if names[keep].into != "" {
			return switchboard.Errorf(switchboard.ECONFLICT, "customer %s was merged into %s since: undo that first", keep, names[keep].into)
		}
		var id, raw string
		err = tx.queryRow(ctx, `SELECT id, record FROM merges WHERE keep_id = ? AND other_id = ? AND undone_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1`, keep, other).Scan(&id, &raw)
		if errors.Is(err, sql.ErrNoRows) {
			return switchboard.Errorf(switchboard.ECONFLICT, "the merge of %s into %s was not recorded and cannot be undone", other, keep)
		}
		if err != nil {
			return err
		}
		var rec mergeRecord
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			return fmt.Errorf("merge record %s: %w", id, err)
		}
		for _, i := range rec.Identities {
			if err := tx.exec(ctx, `UPDATE identities SET customer_id = ? WHERE kind = ? AND value = ? AND customer_id = ?`, other, i.Kind, i.Value, keep); err != nil {
				return err
			}
		}
		for _, c := range rec.AddedClaims {
			if err := tx.exec(ctx, `DELETE FROM identity_claims WHERE customer_id = ? AND kind = ? AND value = ?`, keep, c.Kind, c.Value); err != nil {
				return err
			}
		}
		for _, c := range rec.OtherClaims {
			if err := tx.insertClaim(ctx, []any{other, c.Kind, c.Value, c.CreatedAt}); err != nil {
				return err
			}
		}
		for _, c := range rec.DroppedClaims {
			if err := tx.exec(ctx, `INSERT INTO identity_claims (customer_id, kind, value, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, keep, c.Kind, c.Value, c.CreatedAt); err != nil {
				return err
			}
		}
		changed = append(changed[:0], rec.Conversations...)
		for _, conv := range rec.Conversations {
			if err := tx.exec(ctx, `UPDATE conversations SET customer_id = ? WHERE id = ? AND customer_id = ?`, other, conv, keep); err != nil {
				return err
			}
		}
		if rec.Emptied != "" {
			if err := tx.conversationsChanged(ctx, now, migrationKinds, rec.Into, rec.Emptied); err != nil {
				return err
			}
			for _, m := range rec.Messages {
				if err := tx.exec(ctx, `UPDATE messages SET conversation_id = ? WHERE id = ?`, rec.Emptied, m); err != nil {
					return err
				}
			}
			for _, e := range rec.Events {
				if err := tx.exec(ctx, `UPDATE events SET conversation_id = ? WHERE id = ?`, rec.Emptied, e); err != nil {
					return err
				}
			}
			// It opens again only if its customer has no other open one.
			status := rec.EmptiedStatus
			if open, err := tx.openConversationID(ctx, other); err != nil {
				return err
			} else if open != "" {
				status = switchboard.StatusResolved
			}
			if status != switchboard.StatusResolved {
				if err := tx.exec(ctx, `UPDATE conversations SET status = ?, resolved_at = NULL WHERE id = ?`, status, rec.Emptied); err != nil {
					return err
				}
			}
			for _, conv := range []string{rec.Into, rec.Emptied} {
				if err := tx.recount(ctx, conv); err != nil {
					return err
				}
			}
			changed = append(changed, rec.Into)
		}
		if err := tx.exec(ctx, `UPDATE customers SET merged_into = NULL WHERE id = ?`, other); err != nil {
			return err
		}
		if rec.Renamed {
			if err := tx.exec(ctx, `UPDATE customers SET name = '' WHERE id = ?`, keep); err != nil {
				return err
			}
		}
		if err := tx.exec(ctx, `UPDATE merges SET undone_at = ? WHERE id = ?`, micros(now), id); err != nil {
			return err
		}
		for _, conv := range changed {
			if err := tx.addEvent(ctx, conv, switchboard.EventUnmerged, agentID, map[string]any{"customer": keep, "unmerged": other}, now); err != nil {
				return err
			}
		}
		return nil
	})
	return changed, wrap("unmerge customers", err)
}

type lockedCustomer struct{ name, into string }

// lockPair locks two customers' rows, in id order so that two merges
// never deadlock.
func (tx *Tx) lockPair(ctx context.Context, a, b string) (map[string]lockedCustomer, error) {
	pair := []string{a, b}
	sort.Strings(pair)
	out := map[string]lockedCustomer{}
	for _, id := range pair {
		var c lockedCustomer
		var merged sql.NullString
		err := tx.queryRow(ctx, `SELECT name, merged_into FROM customers WHERE id = ?`+tx.db.dialect.lockRow(), id).Scan(&c.name, &merged)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, switchboard.Errorf(switchboard.ENOTFOUND, "customer %s not found", id)
		}
		if err != nil {
			return nil, err
		}
		c.into = merged.String
		out[id] = c
	}
	return out, nil
}

// recount sets a conversation's times and channels from its messages.
func (tx *Tx) recount(ctx context.Context, id string) error {
	if err := tx.exec(ctx, `UPDATE conversations SET
		last_message_at = COALESCE((SELECT MAX(created_at) FROM messages WHERE conversation_id = ?), last_message_at),
		last_inbound_at = (SELECT MAX(created_at) FROM messages WHERE conversation_id = ? AND direction = 'in')
		WHERE id = ?`, id, id, id); err != nil {
		return err
	}
	if err := tx.exec(ctx, `DELETE FROM conversation_channels WHERE conversation_id = ?`, id); err != nil {
		return err
	}
	return tx.exec(ctx, `INSERT INTO conversation_channels (conversation_id, channel)
		SELECT DISTINCT CAST(? AS TEXT), channel FROM messages WHERE conversation_id = ?`, id, id)
}

func (tx *Tx) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (tx *Tx) claimRows(ctx context.Context, customerID string) ([]claimRow, error) {
	rows, err := tx.query(ctx, `SELECT kind, value, created_at FROM identity_claims WHERE customer_id = ?`, customerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []claimRow
	for rows.Next() {
		var c claimRow
		if err := rows.Scan(&c.Kind, &c.Value, &c.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func hasClaim(cs []claimRow, r switchboard.IdentityRef) bool {
	return slices.ContainsFunc(cs, func(c claimRow) bool { return c.IdentityRef == r })
}

func (tx *Tx) openConversationID(ctx context.Context, customerID string) (string, error) {
	var id string
	err := tx.queryRow(ctx, `SELECT id FROM conversations WHERE customer_id = ? AND status <> 'resolved'`, customerID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}
