package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

const messageColumns = `m.id, m.conversation_id, m.direction, m.channel, COALESCE(m.provider_id, ''), m.sender, m.content_type,
	m.text, m.html, m.status, m.error, m.metadata, m.created_at`

func scanMessages(rows *sql.Rows) ([]switchboard.Message, error) {
	defer rows.Close()
	var out []switchboard.Message
	for rows.Next() {
		var m switchboard.Message
		var meta string
		var at sql.NullInt64
		if err := rows.Scan(&m.ID, &m.ConversationID, &m.Direction, &m.Channel, &m.ProviderID, &m.Sender, &m.ContentType,
			&m.Text, &m.HTML, &m.Status, &m.Error, &meta, &at); err != nil {
			return nil, fmt.Errorf("store: scan message: %w", err)
		}
		m.Metadata, m.CreatedAt = json.RawMessage(meta), fromMicros(at)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read messages: %w", err)
	}
	return out, nil
}

func (db *DB) fillAttachments(ctx context.Context, msgs []switchboard.Message) error {
	idx := make(map[string]int, len(msgs))
	ids := make([]any, len(msgs))
	for i, m := range msgs {
		idx[m.ID] = i
		ids[i] = m.ID
	}
	// In chunks: a long timeline would exceed the databases' limits on
	// bound parameters.
	for _, chunk := range chunks(ids, 500) {
		rows, err := db.query(ctx, `SELECT id, message_id, object_key, content_type, size, name, transcript, content_id FROM attachments WHERE message_id IN (`+placeholders(len(chunk))+`) ORDER BY id`, chunk...)
		if err != nil {
			return fmt.Errorf("store: attachments: %w", err)
		}
		for rows.Next() {
			var a switchboard.Attachment
			var mid string
			if err := rows.Scan(&a.ID, &mid, &a.Key, &a.ContentType, &a.Size, &a.Name, &a.Transcript, &a.ContentID); err != nil {
				rows.Close()
				return fmt.Errorf("store: scan attachment: %w", err)
			}
			m := &msgs[idx[mid]]
			m.Attachments = append(m.Attachments, a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: attachments: %w", err)
		}
	}
	return nil
}

// GetMessage returns one message with its attachments.
func (db *DB) GetMessage(ctx context.Context, id string) (switchboard.Message, error) {
	rows, err := db.query(ctx, `SELECT `+messageColumns+` FROM messages m WHERE m.id = ?`, id)
	if err != nil {
		return switchboard.Message{}, fmt.Errorf("store: get message: %w", err)
	}
	msgs, err := scanMessages(rows)
	if err != nil {
		return switchboard.Message{}, err
	}
	if len(msgs) == 0 {
		return switchboard.Message{}, switchboard.Errorf(switchboard.ENOTFOUND, "message %s not found", id)
	}
	return msgs[0], db.fillAttachments(ctx, msgs)
}

// MessagesByID returns the messages named with their attachments, in no
// particular order; ids not found are left out.
func (db *DB) MessagesByID(ctx context.Context, ids []string) ([]switchboard.Message, error) {
	var out []switchboard.Message
	for _, chunk := range chunks(toAny(ids), 500) {
		rows, err := db.query(ctx, `SELECT `+messageColumns+` FROM messages m WHERE m.id IN (`+placeholders(len(chunk))+`)`, chunk...)
		if err != nil {
			return nil, fmt.Errorf("store: messages by id: %w", err)
		}
		msgs, err := scanMessages(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, db.fillAttachments(ctx, out)
}

// Original returns the message exactly as the provider sent it.
func (db *DB) Original(ctx context.Context, messageID string) ([]byte, error) {
	var body []byte
	err := db.queryRow(ctx, `SELECT body FROM message_originals WHERE message_id = ?`, messageID).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, switchboard.Errorf(switchboard.ENOTFOUND, "message %s has no stored original", messageID)
	}
	if err != nil {
		return nil, fmt.Errorf("store: original: %w", err)
	}
	return body, nil
}

// Search returns messages whose text matches q, newest first.
func (db *DB) Search(ctx context.Context, q string, limit int) ([]switchboard.Message, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, switchboard.Errorf(switchboard.EINVALID, "q is required")
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	from, pred := db.dialect.searchJoin()
	rows, err := db.query(ctx, `SELECT `+messageColumns+` FROM messages m`+from+` WHERE `+pred+` ORDER BY m.created_at DESC, m.id DESC LIMIT ?`,
		ftsQuery(db.dialect, q), limit)
	if err != nil {
		return nil, fmt.Errorf("store: search: %w", err)
	}
	msgs, err := scanMessages(rows)
	if err != nil {
		return nil, err
	}
	return msgs, db.fillAttachments(ctx, msgs)
}

// Reply is an agent's outbound message or internal note.
type Reply struct {
	ConversationID string
	AgentID        string
	Channel        switchboard.Channel // "" means the conversation's last channel
	Text           string
	HTML           string
	Note           bool // an internal note: stored, never sent
	// Auto marks an automatic message (an out-of-hours acknowledgement):
	// sent by the system, AgentID empty, and never the first response.
	Auto        bool
	Metadata    json.RawMessage
	Attachments []switchboard.Attachment
}

// CreateReply stores an agent's reply with status queued and, in the same
// transaction, the outbox row the outbox worker sends it from. Notes are
// stored without an outbox row.
func (db *DB) CreateReply(ctx context.Context, r Reply) (switchboard.Message, error) {
	if strings.TrimSpace(r.Text) == "" && strings.TrimSpace(r.HTML) == "" && len(r.Attachments) == 0 {
		return switchboard.Message{}, switchboard.Errorf(switchboard.EINVALID, "text is required")
	}
	if r.Channel != "" && !r.Channel.Valid() {
		return switchboard.Message{}, switchboard.Errorf(switchboard.EINVALID, "unknown channel %q", r.Channel)
	}
	var id string
	err := db.inTx(ctx, func(tx *Tx) error {
		now := db.clock.Now()
		var c convRef
		var first sql.NullInt64
		var sender string
		err := tx.queryRow(ctx, `SELECT id, last_channel, status, first_response_at FROM conversations WHERE id = ?`+db.dialect.lockRow(),
			r.ConversationID).Scan(&c.id, &c.lastChannel, &c.status, &first)
		if errors.Is(err, sql.ErrNoRows) {
			return switchboard.Errorf(switchboard.ENOTFOUND, "conversation %s not found", r.ConversationID)
		}
		if err != nil {
			return err
		}
		sender = SystemSender
		if !r.Auto {
			err = tx.queryRow(ctx, `SELECT email FROM agents WHERE id = ?`, r.AgentID).Scan(&sender)
			if errors.Is(err, sql.ErrNoRows) {
				return switchboard.Errorf(switchboard.ENOTFOUND, "agent %s not found", r.AgentID)
			}
			if err != nil {
				return err
			}
		}
		ch := r.Channel
		if ch == "" {
			ch = c.lastChannel
		}
		direction, status := switchboard.DirectionOut, switchboard.DeliveryQueued
		if r.Note {
			direction, status = switchboard.DirectionNote, switchboard.DeliverySent
		}
		meta := string(r.Metadata)
		if meta == "" {
			meta = "{}"
		}
		if r.Auto {
			var err error
			if meta, err = withAuto(meta); err != nil {
				return err
			}
		}
		id = newID(now)
		if err := tx.exec(ctx, `INSERT INTO messages (id, conversation_id, direction, channel, sender, content_type, text, html, status, metadata, created_at)
			VALUES (?, ?, ?, ?, ?, 'text', ?, ?, ?, ?, ?)`, id, c.id, direction, ch, sender, r.Text, r.HTML, status, meta, micros(now)); err != nil {
			return fmt.Errorf("insert reply: %w", err)
		}
		for _, a := range r.Attachments {
			if err := tx.exec(ctx, `INSERT INTO attachments (id, message_id, object_key, content_type, size, name, transcript) VALUES (?, ?, ?, ?, ?, ?, '')`,
				newID(now), id, a.Key, a.ContentType, a.Size, a.Name); err != nil {
				return fmt.Errorf("insert attachment: %w", err)
			}
		}
		if r.Note {
			return tx.exec(ctx, `UPDATE conversations SET last_message_at = ? WHERE id = ?`, micros(now), c.id)
		}
		if err := tx.exec(ctx, `INSERT INTO outbox (id, message_id, channel, state, next_attempt_at, created_at) VALUES (?, ?, ?, 'pending', ?, ?)`,
			newID(now), id, ch, micros(now), micros(now)); err != nil {
			return fmt.Errorf("insert outbox: %w", err)
		}
		if err := tx.touchConversation(ctx, c, ch, now, false); err != nil {
			return err
		}
		if !r.Auto {
			// The open cycle's first response, if it has none yet.
			var started int64
			err := tx.queryRow(ctx, `UPDATE cycles SET first_response_at = ?, responder_id = ? WHERE conversation_id = ? AND resolved_at IS NULL AND first_response_at IS NULL RETURNING started_at`,
				micros(now), r.AgentID, c.id).Scan(&started)
			switch {
			case errors.Is(err, sql.ErrNoRows): // answered already, or no customer waiting
			case err != nil:
				return fmt.Errorf("first response: %w", err)
			default:
				if err := tx.bumpRollups(ctx, now, firstResponseKinds, started); err != nil {
					return err
				}
			}
		}
		if !first.Valid && !r.Auto {
			if err := tx.exec(ctx, `UPDATE conversations SET first_response_at = ? WHERE id = ?`, micros(now), c.id); err != nil {
				return err
			}
			if err := tx.addEvent(ctx, c.id, switchboard.EventFirstResponse, r.AgentID, map[string]any{"message_id": id, "channel": ch}, now); err != nil {
				return err
			}
		}
		return tx.addEvent(ctx, c.id, switchboard.EventMessage, r.AgentID, map[string]any{"message_id": id, "direction": direction, "channel": ch}, now)
	})
	if err != nil {
		return switchboard.Message{}, wrap("create reply", err)
	}
	return db.GetMessage(ctx, id)
}

// SystemSender is the sender of automatic messages.
const SystemSender = "switchboard"

// withAuto adds "auto": true to a message's metadata, which senders read
// to mark the message automatic (e-mail: Auto-Submitted, RFC 3834).
func withAuto(meta string) (string, error) {
	m := map[string]any{}
	if err := json.Unmarshal([]byte(meta), &m); err != nil {
		return "", switchboard.Errorf(switchboard.EINVALID, "metadata is not a JSON object")
	}
	m["auto"] = true
	b, err := json.Marshal(m)
	return string(b), err
}

// ClaimOutbox takes up to n due outbox rows for this worker until lease
// has passed. Rows claimed by another instance are skipped, not waited for,
// and a row is not handed out again while its lease runs, so two instances
// never send the same row at once. A worker that dies leaves its rows to be
// claimed again when their lease ends.
func (db *DB) ClaimOutbox(ctx context.Context, n int, lease time.Duration) ([]switchboard.OutboxItem, error) {
	var items []switchboard.OutboxItem
	err := db.inTx(ctx, func(tx *Tx) error {
		items = items[:0]
		now := db.clock.Now()
		rows, err := tx.query(ctx, `SELECT o.id, o.attempts, m.id, m.conversation_id, m.channel, m.text, m.html, m.metadata, c.customer_id
			FROM outbox o JOIN messages m ON m.id = o.message_id JOIN conversations c ON c.id = m.conversation_id
			WHERE o.state = 'pending' AND o.next_attempt_at <= ? AND (o.lease_until IS NULL OR o.lease_until < ?)
			ORDER BY o.next_attempt_at LIMIT ?`+db.dialect.skipLocked("o"), micros(now), micros(now), n)
		if err != nil {
			return err
		}
		var customers []string
		for rows.Next() {
			var it switchboard.OutboxItem
			var meta, customerID string
			if err := rows.Scan(&it.ID, &it.Attempts, &it.Message.MessageID, &it.Message.ConversationID, &it.Message.Channel,
				&it.Message.Text, &it.Message.HTML, &meta, &customerID); err != nil {
				rows.Close()
				return err
			}
			it.Message.Metadata = json.RawMessage(meta)
			items = append(items, it)
			customers = append(customers, customerID)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range items {
			if err := tx.exec(ctx, `UPDATE outbox SET lease_until = ?, attempts = attempts + 1 WHERE id = ?`, micros(now.Add(lease)), items[i].ID); err != nil {
				return err
			}
			items[i].Attempts++
			ids, err := tx.identities(ctx, customers[i])
			if err != nil {
				return err
			}
			items[i].Message.To = ids
		}
		return nil
	})
	if err != nil {
		return nil, wrap("claim outbox", err)
	}
	for i := range items {
		msgs := []switchboard.Message{{ID: items[i].Message.MessageID}}
		if err := db.fillAttachments(ctx, msgs); err != nil {
			return nil, err
		}
		items[i].Message.Attachments = msgs[0].Attachments
	}
	return items, nil
}

func (tx *Tx) identities(ctx context.Context, customerID string) ([]switchboard.IdentityRef, error) {
	rows, err := tx.query(ctx, `SELECT kind, value FROM identities WHERE customer_id = ? ORDER BY created_at, kind`, customerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []switchboard.IdentityRef
	for rows.Next() {
		var r switchboard.IdentityRef
		if err := rows.Scan(&r.Kind, &r.Value); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// CompleteOutbox records a successful send: the outbox row is done and the
// message is sent with the provider's id.
func (db *DB) CompleteOutbox(ctx context.Context, id, providerID string) error {
	return wrap("complete outbox", db.inTx(ctx, func(tx *Tx) error {
		var messageID string
		var ch switchboard.Channel
		if err := tx.queryRow(ctx, `UPDATE outbox SET state = 'done', lease_until = NULL, last_error = '' WHERE id = ? RETURNING message_id, channel`, id).Scan(&messageID, &ch); err != nil {
			return err
		}
		if err := tx.exec(ctx, `UPDATE messages SET status = 'sent', error = '', provider_id = ? WHERE id = ? AND status = 'queued'`, nullString(providerID), messageID); err != nil {
			return err
		}
		if providerID == "" {
			return nil
		}
		if err := tx.lockProviderID(ctx, ch, providerID); err != nil {
			return err
		}
		return tx.applyPendingStatuses(ctx, ch, providerID, messageID)
	}))
}

// FailOutbox records a failed attempt. With retryAt set, the row is tried
// again then; otherwise it is dead and the message failed with the reason.
func (db *DB) FailOutbox(ctx context.Context, id string, cause string, retryAt time.Time) error {
	return wrap("fail outbox", db.inTx(ctx, func(tx *Tx) error {
		if !retryAt.IsZero() {
			return tx.exec(ctx, `UPDATE outbox SET lease_until = NULL, next_attempt_at = ?, last_error = ? WHERE id = ?`, micros(retryAt), cause, id)
		}
		var messageID string
		if err := tx.queryRow(ctx, `UPDATE outbox SET state = 'dead', lease_until = NULL, last_error = ? WHERE id = ? RETURNING message_id`, cause, id).Scan(&messageID); err != nil {
			return err
		}
		return tx.exec(ctx, `UPDATE messages SET status = 'failed', error = ? WHERE id = ?`, cause, messageID)
	}))
}

// Files waiting to be attached to a message belong to whoever uploaded
// them: an agent (uploads) or a live-chat visitor (chat_uploads).
type uploadOwner struct{ table, column, what string }

var (
	agentUploads   = uploadOwner{"uploads", "agent_id", "upload"}
	visitorUploads = uploadOwner{"chat_uploads", "visitor_id", "visitor upload"}
)

// CreateUpload records a file an agent stored in the object store.
func (db *DB) CreateUpload(ctx context.Context, agentID string, a switchboard.Attachment) (switchboard.Attachment, error) {
	return db.createUpload(ctx, agentUploads, agentID, a)
}

// Uploads returns the files agentID uploaded, by id, in the order asked;
// an id unknown, or another agent's upload, is an EINVALID error naming it.
func (db *DB) Uploads(ctx context.Context, agentID string, ids []string) ([]switchboard.Attachment, error) {
	return db.uploads(ctx, agentUploads, agentID, ids)
}

func (db *DB) createUpload(ctx context.Context, o uploadOwner, owner string, a switchboard.Attachment) (switchboard.Attachment, error) {
	now := db.clock.Now()
	a.ID = newID(now)
	err := db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `INSERT INTO `+o.table+` (id, `+o.column+`, object_key, content_type, size, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			a.ID, owner, a.Key, a.ContentType, a.Size, a.Name, micros(now))
	})
	return a, wrap("create "+o.what, err)
}

func (db *DB) uploads(ctx context.Context, o uploadOwner, owner string, ids []string) ([]switchboard.Attachment, error) {
	out := make([]switchboard.Attachment, 0, len(ids))
	for _, id := range ids {
		var a switchboard.Attachment
		err := db.queryRow(ctx, `SELECT id, object_key, content_type, size, name FROM `+o.table+` WHERE id = ? AND `+o.column+` = ?`, id, owner).
			Scan(&a.ID, &a.Key, &a.ContentType, &a.Size, &a.Name)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, switchboard.Errorf(switchboard.EINVALID, "unknown upload %q", id)
		}
		if err != nil {
			return nil, wrap(o.what+"s", err)
		}
		out = append(out, a)
	}
	return out, nil
}
