package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// Live chat (docs/design.md §6.2): sites, their visitors and the files
// visitors upload.

const siteColumns = `id, name, secret, origins, team, created_at`

func scanSite(row interface{ Scan(...any) error }) (switchboard.Site, error) {
	var s switchboard.Site
	var origins string
	var created sql.NullInt64
	if err := row.Scan(&s.Key, &s.Name, &s.Secret, &origins, &s.Team, &created); err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(origins), &s.Origins); err != nil {
		return s, fmt.Errorf("site %s: origins: %w", s.Key, err)
	}
	s.CreatedAt = fromMicros(created)
	return s, nil
}

// CreateSite stores a new site; its key and secret are the caller's.
func (db *DB) CreateSite(ctx context.Context, s switchboard.Site) (switchboard.Site, error) {
	now := db.clock.Now()
	s.CreatedAt = now
	origins, err := json.Marshal(nonNilStrings(s.Origins))
	if err != nil {
		return s, err
	}
	err = db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `INSERT INTO chat_sites (id, name, secret, origins, team, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			s.Key, s.Name, s.Secret, string(origins), s.Team, micros(now), micros(now))
	})
	return s, wrap("create site", err)
}

// GetSite returns the site whose key is key, or ENOTFOUND.
func (db *DB) GetSite(ctx context.Context, key string) (switchboard.Site, error) {
	s, err := scanSite(db.queryRow(ctx, `SELECT `+siteColumns+` FROM chat_sites WHERE id = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return s, switchboard.Errorf(switchboard.ENOTFOUND, "site %q not found", key)
	}
	return s, wrap("get site", err)
}

// ListSites returns every site by name.
func (db *DB) ListSites(ctx context.Context) ([]switchboard.Site, error) {
	rows, err := db.query(ctx, `SELECT `+siteColumns+` FROM chat_sites ORDER BY name, id`)
	if err != nil {
		return nil, wrap("list sites", err)
	}
	defer rows.Close()
	out := []switchboard.Site{}
	for rows.Next() {
		s, err := scanSite(rows)
		if err != nil {
			return nil, wrap("list sites", err)
		}
		out = append(out, s)
	}
	return out, wrap("list sites", rows.Err())
}

// SiteUpdate is a change to a site: nil fields stay as they are.
type SiteUpdate struct {
	Name    *string
	Origins *[]string
	Team    *string
}

// UpdateSite applies u to the site key.
func (db *DB) UpdateSite(ctx context.Context, key string, u SiteUpdate) (switchboard.Site, error) {
	err := db.inTx(ctx, func(tx *Tx) error {
		s, err := scanSite(tx.queryRow(ctx, `SELECT `+siteColumns+` FROM chat_sites WHERE id = ?`+db.dialect.lockRow(), key))
		if errors.Is(err, sql.ErrNoRows) {
			return switchboard.Errorf(switchboard.ENOTFOUND, "site %q not found", key)
		}
		if err != nil {
			return err
		}
		if u.Name != nil {
			s.Name = *u.Name
		}
		if u.Origins != nil {
			s.Origins = *u.Origins
		}
		if u.Team != nil {
			s.Team = *u.Team
		}
		origins, err := json.Marshal(nonNilStrings(s.Origins))
		if err != nil {
			return err
		}
		return tx.exec(ctx, `UPDATE chat_sites SET name = ?, origins = ?, team = ?, updated_at = ? WHERE id = ?`,
			s.Name, string(origins), s.Team, micros(db.clock.Now()), key)
	})
	if err != nil {
		if switchboard.ErrorCode(err) == switchboard.ENOTFOUND {
			return switchboard.Site{}, err
		}
		return switchboard.Site{}, wrap("update site", err)
	}
	return db.GetSite(ctx, key)
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const visitorColumns = `id, site_id, name, email, external_id, last_seen_at, created_at`

func scanVisitor(row interface{ Scan(...any) error }) (switchboard.Visitor, error) {
	var v switchboard.Visitor
	var seen, created sql.NullInt64
	err := row.Scan(&v.ID, &v.SiteKey, &v.Name, &v.Email, &v.ExternalID, &seen, &created)
	v.LastSeenAt, v.CreatedAt = fromMicros(seen), fromMicros(created)
	return v, err
}

// CreateVisitor stores a new visitor of a site and returns it with its id.
func (db *DB) CreateVisitor(ctx context.Context, v switchboard.Visitor) (switchboard.Visitor, error) {
	now := db.clock.Now()
	v.ID, v.CreatedAt, v.LastSeenAt = newID(now), now, now
	err := db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `INSERT INTO chat_visitors (id, site_id, name, email, external_id, last_seen_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			v.ID, v.SiteKey, v.Name, v.Email, v.ExternalID, micros(now), micros(now))
	})
	return v, wrap("create visitor", err)
}

// GetVisitor returns one visitor, or ENOTFOUND.
func (db *DB) GetVisitor(ctx context.Context, id string) (switchboard.Visitor, error) {
	v, err := scanVisitor(db.queryRow(ctx, `SELECT `+visitorColumns+` FROM chat_visitors WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, switchboard.Errorf(switchboard.ENOTFOUND, "visitor not found")
	}
	return v, wrap("get visitor", err)
}

// UpdateVisitor sets a visitor's name and typed e-mail address (a
// session started again with other details); empty values are kept.
func (db *DB) UpdateVisitor(ctx context.Context, id, name, email string) error {
	return wrap("update visitor", db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `UPDATE chat_visitors SET name = CASE WHEN ? = '' THEN name ELSE ? END,
			email = CASE WHEN ? = '' THEN email ELSE ? END WHERE id = ?`, name, name, email, email, id)
	}))
}

// TouchVisitor records that the visitor was connected at at.
func (db *DB) TouchVisitor(ctx context.Context, id string, at time.Time) error {
	return wrap("touch visitor", db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `UPDATE chat_visitors SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?`, micros(at), id, micros(at))
	}))
}

// VisitorsContact returns, of the visitors named, when one was last
// connected and the e-mail address the latest one to type one gave.
func (db *DB) VisitorsContact(ctx context.Context, ids []string) (lastSeen time.Time, email string, err error) {
	if len(ids) == 0 {
		return time.Time{}, "", nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	var seen sql.NullInt64
	err = db.queryRow(ctx, `SELECT MAX(last_seen_at) FROM chat_visitors WHERE id IN (`+placeholders(len(ids))+`)`, args...).Scan(&seen)
	if err != nil {
		return time.Time{}, "", wrap("visitors contact", err)
	}
	err = db.queryRow(ctx, `SELECT email FROM chat_visitors WHERE email <> '' AND id IN (`+placeholders(len(ids))+`) ORDER BY created_at DESC LIMIT 1`, args...).Scan(&email)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	return fromMicros(seen), email, wrap("visitors contact", err)
}

// VisitorCustomer returns the customer a visitor writes as: the one with
// the visitor's own identity, else (a visitor the site's secret proved)
// the one with its external id; "" when neither has written yet. A
// merged-away customer leads to the one that survived.
func (db *DB) VisitorCustomer(ctx context.Context, visitorID, externalID string) (string, error) {
	refs := []switchboard.IdentityRef{{Kind: switchboard.IdentityChatVisitor, Value: visitorID}}
	if externalID != "" {
		refs = append(refs, switchboard.IdentityRef{Kind: switchboard.IdentityExternalID, Value: externalID})
	}
	for _, r := range refs {
		var id string
		var merged sql.NullString
		err := db.queryRow(ctx, `SELECT c.id, c.merged_into FROM identities i JOIN customers c ON c.id = i.customer_id WHERE i.kind = ? AND i.value = ?`, r.Kind, r.Value).Scan(&id, &merged)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return "", wrap("visitor customer", err)
		}
		for hops := 0; merged.Valid && merged.String != "" && hops < 16; hops++ {
			id = merged.String
			if err := db.queryRow(ctx, `SELECT merged_into FROM customers WHERE id = ?`, id).Scan(&merged); err != nil {
				return "", wrap("visitor customer", err)
			}
		}
		return id, nil
	}
	return "", nil
}

// LatestConversation returns a customer's open conversation, else their
// most recent one; "" when they have none.
func (db *DB) LatestConversation(ctx context.Context, customerID string) (string, error) {
	var id string
	err := db.queryRow(ctx, `SELECT id FROM conversations WHERE customer_id = ?
		ORDER BY CASE WHEN status <> 'resolved' THEN 0 ELSE 1 END, last_message_at DESC, id DESC LIMIT 1`, customerID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, wrap("latest conversation", err)
}

// CreateVisitorUpload records a file a visitor stored in the object store.
func (db *DB) CreateVisitorUpload(ctx context.Context, visitorID string, a switchboard.Attachment) (switchboard.Attachment, error) {
	return db.createUpload(ctx, visitorUploads, visitorID, a)
}

// VisitorUploads returns the files visitorID uploaded, by id, in the order
// asked; an id unknown, or another visitor's, is an EINVALID error.
func (db *DB) VisitorUploads(ctx context.Context, visitorID string, ids []string) ([]switchboard.Attachment, error) {
	return db.uploads(ctx, visitorUploads, visitorID, ids)
}

// FirstResponseP50 returns the median time to the first response of the
// conversations on ch created since since, exactly (the mean of the two
// middle values for an even count), and how many there were. Two
// queries, each bounded by the window on conversations_created: a count,
// then the one or two middle values by OFFSET; nothing is loaded whole.
func (db *DB) FirstResponseP50(ctx context.Context, ch switchboard.Channel, since time.Time) (time.Duration, int, error) {
	const from = ` FROM conversations c JOIN conversation_channels cc ON cc.conversation_id = c.id AND cc.channel = ?
		WHERE c.created_at >= ? AND c.first_response_at IS NOT NULL AND c.first_response_at >= c.created_at`
	var n int
	if err := db.queryRow(ctx, `SELECT COUNT(*)`+from, ch, micros(since)).Scan(&n); err != nil {
		return 0, 0, wrap("first response p50", err)
	}
	if n == 0 {
		return 0, 0, nil
	}
	take := 1
	if n%2 == 0 {
		take = 2
	}
	rows, err := db.query(ctx, `SELECT c.first_response_at - c.created_at AS d`+from+` ORDER BY d LIMIT ? OFFSET ?`, ch, micros(since), take, (n-1)/2)
	if err != nil {
		return 0, 0, wrap("first response p50", err)
	}
	defer rows.Close()
	var sum, got int64
	for rows.Next() {
		var d int64
		if err := rows.Scan(&d); err != nil {
			return 0, 0, wrap("first response p50", err)
		}
		sum += d
		got++
	}
	if err := rows.Err(); err != nil || got == 0 {
		return 0, 0, wrap("first response p50", err)
	}
	return time.Duration(sum/got) * time.Microsecond, n, nil
}

// MarkInboundRead marks the customer's messages on ch in a conversation,
// as received, read (an agent has the conversation open) and returns the
// ids of those it moved.
func (db *DB) MarkInboundRead(ctx context.Context, conversationID string, ch switchboard.Channel) ([]string, error) {
	var ids []string
	err := db.inTx(ctx, func(tx *Tx) error {
		rows, err := tx.query(ctx, `UPDATE messages SET status = 'read' WHERE conversation_id = ? AND channel = ? AND direction = 'in' AND status = 'received' RETURNING id`,
			conversationID, ch)
		if err != nil {
			return err
		}
		ids, err = scanStrings(rows)
		return err
	})
	return ids, wrap("mark inbound read", err)
}
