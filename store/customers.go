package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// MergeCustomers folds other into keep: identities and conversations move
// to keep, other is left behind as a redirect. When both have an open
// conversation, the other's messages and events move into keep's and the
// emptied conversation is resolved, so keep still has one open thread.
// It returns the conversations that changed: the other's, and keep's open
// one when messages moved into it.
func (db *DB) MergeCustomers(ctx context.Context, keep, other, agentID string) ([]string, error) {
	if keep == other {
		return nil, switchboard.Errorf(switchboard.EINVALID, "cannot merge a customer into itself")
	}
	var changed []string
	err := db.inTx(ctx, func(tx *Tx) error {
		var openID string
		now := db.clock.Now()
		// Lock in id order so two merges never deadlock.
		pair := []string{keep, other}
		sort.Strings(pair)
		names := map[string]string{}
		for _, id := range pair {
			var name string
			var merged sql.NullString
			err := tx.queryRow(ctx, `SELECT name, merged_into FROM customers WHERE id = ?`+db.dialect.lockRow(), id).Scan(&name, &merged)
			if errors.Is(err, sql.ErrNoRows) {
				return switchboard.Errorf(switchboard.ENOTFOUND, "customer %s not found", id)
			}
			if err != nil {
				return err
			}
			if merged.Valid {
				return switchboard.Errorf(switchboard.ECONFLICT, "customer %s was already merged into %s", id, merged.String)
			}
			names[id] = name
		}
		keepOpen, err := tx.openConversationID(ctx, keep)
		if err != nil {
			return err
		}
		otherOpen, err := tx.openConversationID(ctx, other)
		if err != nil {
			return err
		}
		openID = keepOpen
		if keepOpen != "" && otherOpen != "" {
			for _, q := range []string{
				`UPDATE messages SET conversation_id = ? WHERE conversation_id = ?`,
				`UPDATE events SET conversation_id = ? WHERE conversation_id = ?`,
			} {
				if err := tx.exec(ctx, q, keepOpen, otherOpen); err != nil {
					return err
				}
			}
			if err := tx.exec(ctx, `INSERT INTO conversation_channels (conversation_id, channel) SELECT ?, channel FROM conversation_channels WHERE conversation_id = ? ON CONFLICT DO NOTHING`, keepOpen, otherOpen); err != nil {
				return err
			}
			if err := tx.exec(ctx, `UPDATE conversations SET
				last_message_at = (SELECT MAX(created_at) FROM messages WHERE conversation_id = ?),
				last_inbound_at = (SELECT MAX(created_at) FROM messages WHERE conversation_id = ? AND direction = 'in')
				WHERE id = ?`, keepOpen, keepOpen, keepOpen); err != nil {
				return err
			}
			// Resolved as SetStatus resolves: what kept it from agents and
			// what it waited for no longer apply.
			if err := tx.exec(ctx, `UPDATE conversations SET status = 'resolved', resolved_at = ?, wait_reason = '' WHERE id = ?`, micros(now), otherOpen); err != nil {
				return err
			}
			if err := tx.exec(ctx, `DELETE FROM routing_exclusions WHERE conversation_id = ?`, otherOpen); err != nil {
				return err
			}
			if err := tx.addEvent(ctx, otherOpen, switchboard.EventMerged, agentID, map[string]any{"into_conversation": keepOpen, "into_customer": keep}, now); err != nil {
				return err
			}
		} else if otherOpen != "" {
			openID = otherOpen
		}
		rows, err := tx.query(ctx, `SELECT id FROM conversations WHERE customer_id = ?`, other)
		if err != nil {
			return err
		}
		changed = changed[:0]
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			changed = append(changed, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if keepOpen != "" && otherOpen != "" {
			changed = append(changed, keepOpen)
		}
		for _, q := range []string{
			`UPDATE identities SET customer_id = ? WHERE customer_id = ?`,
			`UPDATE conversations SET customer_id = ? WHERE customer_id = ?`,
			`INSERT INTO identity_claims (customer_id, kind, value, created_at)
				SELECT ?, kind, value, created_at FROM identity_claims WHERE customer_id = ? ON CONFLICT DO NOTHING`,
		} {
			if err := tx.exec(ctx, q, keep, other); err != nil {
				return err
			}
		}
		// A claim the merge made true is an identity now, not a claim.
		if err := tx.exec(ctx, `DELETE FROM identity_claims WHERE customer_id = ? OR (customer_id = ? AND EXISTS
			(SELECT 1 FROM identities i WHERE i.customer_id = identity_claims.customer_id AND i.kind = identity_claims.kind AND i.value = identity_claims.value))`,
			other, keep); err != nil {
			return err
		}
		if err := tx.exec(ctx, `UPDATE customers SET merged_into = ? WHERE id = ?`, keep, other); err != nil {
			return err
		}
		if names[keep] == "" && names[other] != "" {
			if err := tx.exec(ctx, `UPDATE customers SET name = ? WHERE id = ?`, names[other], keep); err != nil {
				return err
			}
		}
		if openID != "" {
			return tx.addEvent(ctx, openID, switchboard.EventMerged, agentID, map[string]any{"customer": keep, "merged": other}, now)
		}
		return nil
	})
	return changed, wrap("merge customers", err)
}

func (tx *Tx) openConversationID(ctx context.Context, customerID string) (string, error) {
	var id string
	err := tx.queryRow(ctx, `SELECT id FROM conversations WHERE customer_id = ? AND status <> 'resolved'`, customerID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}
