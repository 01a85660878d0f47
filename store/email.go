package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/thread"
)

// hinted reports whether a message names the conversation it answers.
func hinted(in *switchboard.Inbound) bool {
	return in.ConversationHint != "" || len(in.InReplyTo) > 0
}

// namedFacts adds to f the conversation a reply names (see thread.Facts):
// the one its verified token points at, else the one holding a message it
// refers to, and, when that conversation belongs to someone else, their
// open conversation. Whether the name counts is thread.Decide's to say.
func (tx *Tx) namedFacts(ctx context.Context, in *switchboard.Inbound, senderID string, f *thread.Facts) error {
	id, byToken, err := tx.namedConversation(ctx, in.Channel, in.ConversationHint, in.InReplyTo)
	if err != nil || id == "" {
		return err
	}
	// Customer first, then conversation, the order every other path takes
	// its locks in: look the owner up without a lock, lock them, then lock
	// the conversation and check it still belongs to them.
	var owner string
	err = tx.queryRow(ctx, `SELECT customer_id FROM conversations WHERE id = ?`, id).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // e.g. a token for a conversation since deleted
	}
	if err != nil {
		return fmt.Errorf("named conversation: %w", err)
	}
	if owner != senderID {
		// Someone else's conversation: take its customer's lock, as
		// threading their own messages would.
		if _, _, err := tx.lockCustomer(ctx, owner); err != nil {
			return err
		}
	}
	c, err := scanThreadConversation(tx.queryRow(ctx, `SELECT `+threadColumns+` FROM conversations WHERE id = ?`+tx.db.dialect.lockRow(), id))
	if err != nil {
		return fmt.Errorf("named conversation: %w", err)
	}
	if c.CustomerID != owner {
		return nil // merged away between the two reads: thread as if unnamed
	}
	f.Named, f.NamedByToken = c, byToken
	if owner != senderID && c.Status == switchboard.StatusResolved {
		open, err := scanThreadConversation(tx.queryRow(ctx, `SELECT `+threadColumns+` FROM conversations WHERE customer_id = ? AND status <> 'resolved'`, owner))
		switch {
		case err == nil:
			f.NamedOwnerOpen = open
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("open conversation: %w", err)
		}
	}
	return nil
}

// namedConversation is the conversation a mail names: the one a verified
// token points at (byToken), else the one holding the nearest message it
// refers to; "" when it names none.
func (tx *Tx) namedConversation(ctx context.Context, ch switchboard.Channel, token string, refs []string) (id string, byToken bool, err error) {
	if token != "" {
		return token, true, nil
	}
	if len(refs) == 0 {
		return "", false, nil
	}
	id, err = tx.conversationByProviderIDs(ctx, ch, refs)
	return id, false, err
}

// conversationByProviderIDs returns the conversation of the first of ids
// stored as a message on ch, in the order given (nearest reference first).
func (tx *Tx) conversationByProviderIDs(ctx context.Context, ch switchboard.Channel, ids []string) (string, error) {
	if len(ids) > 100 {
		ids = ids[:100] // a References header can be long; the nearest matter
	}
	args := []any{ch}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := tx.query(ctx, `SELECT provider_id, conversation_id FROM messages WHERE channel = ? AND provider_id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return "", fmt.Errorf("referenced messages: %w", err)
	}
	defer rows.Close()
	found := map[string]string{}
	for rows.Next() {
		var pid, conv string
		if err := rows.Scan(&pid, &conv); err != nil {
			return "", fmt.Errorf("referenced messages: %w", err)
		}
		found[pid] = conv
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("referenced messages: %w", err)
	}
	for _, id := range ids {
		if conv, ok := found[id]; ok {
			return conv, nil
		}
	}
	return "", nil
}

// EmailThread returns the thread headers for a reply in a conversation.
func (db *DB) EmailThread(ctx context.Context, conversationID string) (switchboard.EmailThread, error) {
	var t switchboard.EmailThread
	var providerID sql.NullString
	var meta string
	err := db.queryRow(ctx, `SELECT provider_id, subject, metadata FROM messages
		WHERE conversation_id = ? AND direction = 'in' AND channel IN ('email', 'webform') ORDER BY created_at DESC, id DESC LIMIT 1`, conversationID).
		Scan(&providerID, &t.Subject, &meta)
	if errors.Is(err, sql.ErrNoRows) {
		return t, nil
	}
	if err != nil {
		return t, fmt.Errorf("store: email thread: %w", err)
	}
	var m struct {
		MessageID  string   `json:"message_id"`
		References []string `json:"references"`
	}
	if meta != "" {
		if err := json.Unmarshal([]byte(meta), &m); err != nil {
			return t, fmt.Errorf("store: email thread metadata: %w", err)
		}
	}
	if m.MessageID != "" {
		t.InReplyTo = m.MessageID
		t.References = append(m.References, m.MessageID)
	}
	return t, nil
}

// MailboxState returns an IMAP mailbox's UIDVALIDITY and the last UID
// made durable; zeros when the mailbox was never read.
func (db *DB) MailboxState(ctx context.Context, mailbox string) (uidValidity, lastUID uint32, err error) {
	var v, u int64
	err = db.queryRow(ctx, `SELECT uid_validity, last_uid FROM mailbox_state WHERE mailbox = ?`, mailbox).Scan(&v, &u)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: mailbox state: %w", err)
	}
	return uint32(v), uint32(u), nil
}

// SaveMailboxState records an IMAP mailbox's position.
func (db *DB) SaveMailboxState(ctx context.Context, mailbox string, uidValidity, lastUID uint32) error {
	return wrap("save mailbox state", db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `INSERT INTO mailbox_state (mailbox, uid_validity, last_uid, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (mailbox) DO UPDATE SET uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, updated_at = excluded.updated_at`,
			mailbox, int64(uidValidity), int64(lastUID), micros(db.clock.Now()))
	}))
}

// Receipt kinds for mail from robots.
const (
	ReceiptBounce    = "bounce"
	ReceiptAutoReply = "auto_reply"
)

// RecordAutoReply notes an automatic reply on the conversation it answers:
// the one its token or references name, else the sender's latest. It
// returns that conversation ("" when none) and whether this Message-ID was
// new: a refetched one is recorded once.
func (db *DB) RecordAutoReply(ctx context.Context, a switchboard.AutoReply) (conversationID string, isNew bool, err error) {
	err = db.inTx(ctx, func(tx *Tx) error {
		now := db.clock.Now()
		conversationID, isNew = "", false
		// Only a note is written, so a reference from another address (a
		// robot seldom writes from the customer's own) may name it too.
		id, _, err := tx.namedConversation(ctx, switchboard.ChannelEmail, a.ConversationHint, a.InReplyTo)
		if err != nil {
			return err
		}
		if id == "" && a.From.Value != "" {
			err := tx.queryRow(ctx, `SELECT c.id FROM conversations c JOIN identities i ON i.customer_id = c.customer_id
				WHERE i.kind = ? AND i.value = ? ORDER BY c.last_message_at DESC LIMIT 1`, a.From.Kind, a.From.Value).Scan(&id)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		var n int64
		res, err := tx.execResult(ctx, `INSERT INTO email_receipts (message_id, kind, conversation_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			a.MessageID, ReceiptAutoReply, nullString(id), micros(now))
		if err != nil {
			return err
		}
		if n, _ = res.RowsAffected(); n == 0 || id == "" {
			conversationID, isNew = id, n > 0
			return nil
		}
		conversationID, isNew = id, true
		return tx.addEvent(ctx, id, switchboard.EventAutoReply, "", map[string]any{
			"from": a.From.Value, "subject": a.Subject, "reason": a.Reason, "message_id": a.MessageID}, now)
	})
	return conversationID, isNew, wrap("record auto-reply", err)
}

// RecordBounce marks the outbound e-mail a bounce refers to as failed with
// its diagnostic (a temporary "delayed" report is only noted). It returns
// the message and conversation changed, "" when the report names nothing
// we sent.
func (db *DB) RecordBounce(ctx context.Context, b switchboard.Bounce) (messageID, conversationID string, err error) {
	err = db.inTx(ctx, func(tx *Tx) error {
		now := db.clock.Now()
		messageID, conversationID = "", ""
		err := tx.queryRow(ctx, `SELECT id, conversation_id FROM messages WHERE channel = 'email' AND provider_id = ? AND direction = 'out'`, b.Original).
			Scan(&messageID, &conversationID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := tx.execResult(ctx, `INSERT INTO email_receipts (message_id, kind, conversation_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			b.MessageID, ReceiptBounce, nullString(conversationID), micros(now))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 || messageID == "" {
			return nil
		}
		toCustomer := len(b.Recipients) == 0
		if !toCustomer {
			rows, err := tx.query(ctx, `SELECT i.value FROM identities i JOIN conversations c ON c.customer_id = i.customer_id
				WHERE c.id = ? AND i.kind = 'email'`, conversationID)
			if err != nil {
				return err
			}
			for rows.Next() {
				var addr string
				if err := rows.Scan(&addr); err != nil {
					rows.Close()
					return err
				}
				toCustomer = toCustomer || slices.Contains(b.Recipients, addr)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		if b.Permanent && toCustomer {
			if err := tx.exec(ctx, `UPDATE messages SET status = 'failed', error = ? WHERE id = ?`, b.Diagnostic, messageID); err != nil {
				return err
			}
		}
		return tx.addEvent(ctx, conversationID, switchboard.EventBounce, "", map[string]any{
			"message_id": messageID, "permanent": b.Permanent, "diagnostic": b.Diagnostic, "recipients": b.Recipients, "customer": toCustomer}, now)
	})
	return messageID, conversationID, wrap("record bounce", err)
}

// TryAutoMail reserves the right to send the automatic mail messageID to
// address: at most one per address within window (RFC 3834 §2 asks
// responders not to answer the same sender over and over). A retry of the
// same message keeps its reservation. It reports false when another
// automatic mail went to the address within the window.
func (db *DB) TryAutoMail(ctx context.Context, address, messageID string, window time.Duration) (bool, error) {
	var ok bool
	err := db.inTx(ctx, func(tx *Tx) error {
		now := db.clock.Now()
		res, err := tx.execResult(ctx, `INSERT INTO auto_mail_log (address, message_id, sent_at) VALUES (?, ?, ?)
			ON CONFLICT (address) DO UPDATE SET sent_at = excluded.sent_at, message_id = excluded.message_id
			WHERE auto_mail_log.sent_at < ? OR auto_mail_log.message_id = excluded.message_id`,
			strings.ToLower(address), messageID, micros(now), micros(now.Add(-window)))
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		ok = n > 0
		return nil
	})
	return ok, wrap("auto mail", err)
}
