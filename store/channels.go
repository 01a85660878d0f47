package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// RecordOptOut notes that the identity opted out of a channel with keyword
// (STOP, or a provider's refusal such as Twilio's 21610). Recording it
// again keeps the first time and updates the keyword.
func (db *DB) RecordOptOut(ctx context.Context, id switchboard.IdentityRef, ch switchboard.Channel, keyword string) error {
	return wrap("record opt-out", db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `INSERT INTO opt_outs (identity_kind, identity_value, channel, keyword, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (identity_kind, identity_value, channel) DO UPDATE SET keyword = excluded.keyword`,
			id.Kind, id.Value, ch, keyword, micros(db.clock.Now()))
	}))
}

// ClearOptOut removes an opt-out (the customer sent START).
func (db *DB) ClearOptOut(ctx context.Context, id switchboard.IdentityRef, ch switchboard.Channel) error {
	return wrap("clear opt-out", db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `DELETE FROM opt_outs WHERE identity_kind = ? AND identity_value = ? AND channel = ?`, id.Kind, id.Value, ch)
	}))
}

// OptOut returns the keyword the identity opted out of ch with, or "".
func (db *DB) OptOut(ctx context.Context, id switchboard.IdentityRef, ch switchboard.Channel) (string, error) {
	var keyword string
	err := db.queryRow(ctx, `SELECT keyword FROM opt_outs WHERE identity_kind = ? AND identity_value = ? AND channel = ?`, id.Kind, id.Value, ch).Scan(&keyword)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return keyword, wrap("opt-out", err)
}

// Recipient gathers what channel policies need to know about the customer
// of a conversation: identities, when they last wrote on each channel,
// and their opt-outs.
func (db *DB) Recipient(ctx context.Context, conversationID string) (switchboard.Recipient, error) {
	r := switchboard.Recipient{LastInbound: map[switchboard.Channel]time.Time{}, OptOuts: map[switchboard.Channel]string{}}
	var customerID string
	err := db.queryRow(ctx, `SELECT customer_id FROM conversations WHERE id = ?`, conversationID).Scan(&customerID)
	if errors.Is(err, sql.ErrNoRows) {
		return r, switchboard.Errorf(switchboard.ENOTFOUND, "conversation %s not found", conversationID)
	}
	if err != nil {
		return r, fmt.Errorf("store: recipient: %w", err)
	}
	c, err := db.GetCustomer(ctx, customerID)
	if err != nil {
		return r, err
	}
	r.Identities = c.Identities
	rows, err := db.query(ctx, `SELECT m.channel, MAX(m.created_at) FROM messages m JOIN conversations c ON c.id = m.conversation_id
		WHERE c.customer_id = ? AND m.direction = 'in' GROUP BY m.channel`, customerID)
	if err != nil {
		return r, fmt.Errorf("store: recipient: %w", err)
	}
	for rows.Next() {
		var ch switchboard.Channel
		var at sql.NullInt64
		if err := rows.Scan(&ch, &at); err != nil {
			rows.Close()
			return r, fmt.Errorf("store: recipient: %w", err)
		}
		r.LastInbound[ch] = fromMicros(at)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return r, err
	}
	all, err := db.Templates(ctx)
	if err != nil {
		return r, err
	}
	for _, t := range all {
		if t.Status == "APPROVED" {
			r.Templates = append(r.Templates, t)
		}
	}
	rows, err = db.query(ctx, `SELECT o.channel, o.keyword FROM opt_outs o JOIN identities i ON i.kind = o.identity_kind AND i.value = o.identity_value WHERE i.customer_id = ?`, customerID)
	if err != nil {
		return r, fmt.Errorf("store: recipient: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ch switchboard.Channel
		var kw string
		if err := rows.Scan(&ch, &kw); err != nil {
			return r, fmt.Errorf("store: recipient: %w", err)
		}
		r.OptOuts[ch] = kw
	}
	return r, rows.Err()
}

// ApplyDeliveryStatus records a provider's delivery report for the
// outbound message it sent as providerID. Reports arrive out of order, so
// a status only ever moves a message forward (switchboard.DeliveryRank).
// A report for an id not stored yet (the send's answer is still on its
// way) is kept and applied when the id is recorded. It returns the
// message's id and conversation when the report changed it.
func (db *DB) ApplyDeliveryStatus(ctx context.Context, ch switchboard.Channel, providerID string, status switchboard.DeliveryStatus, errText string) (messageID, conversationID string, err error) {
	if switchboard.DeliveryRank(status) == 0 {
		return "", "", switchboard.Errorf(switchboard.EINVALID, "unknown delivery status %q", status)
	}
	err = db.inTx(ctx, func(tx *Tx) error {
		messageID, conversationID = "", ""
		if err := tx.lockProviderID(ctx, ch, providerID); err != nil {
			return err
		}
		var current switchboard.DeliveryStatus
		var mid, cid string
		err := tx.queryRow(ctx, `SELECT id, conversation_id, status FROM messages WHERE channel = ? AND provider_id = ? AND direction = 'out'`+db.dialect.lockRow(),
			ch, providerID).Scan(&mid, &cid, &current)
		if errors.Is(err, sql.ErrNoRows) {
			return tx.exec(ctx, `INSERT INTO pending_statuses (channel, provider_id, status, error, created_at) VALUES (?, ?, ?, ?, ?)`,
				ch, providerID, status, errText, micros(db.clock.Now()))
		}
		if err != nil {
			return err
		}
		if !advances(current, status) {
			return nil
		}
		messageID, conversationID = mid, cid
		return tx.exec(ctx, `UPDATE messages SET status = ?, error = ? WHERE id = ?`, status, errText, mid)
	})
	return messageID, conversationID, wrap("apply delivery status", err)
}

func advances(current, next switchboard.DeliveryStatus) bool {
	return switchboard.DeliveryRank(next) > switchboard.DeliveryRank(current)
}

// applyPendingStatuses applies, in the send's transaction, the reports that
// arrived before the provider id was known.
func (tx *Tx) applyPendingStatuses(ctx context.Context, ch switchboard.Channel, providerID, messageID string) error {
	rows, err := tx.query(ctx, `SELECT status, error FROM pending_statuses WHERE channel = ? AND provider_id = ?`, ch, providerID)
	if err != nil {
		return err
	}
	var best switchboard.DeliveryStatus
	var bestErr string
	for rows.Next() {
		var s switchboard.DeliveryStatus
		var e string
		if err := rows.Scan(&s, &e); err != nil {
			rows.Close()
			return err
		}
		if advances(best, s) {
			best, bestErr = s, e
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if advances(switchboard.DeliverySent, best) {
		if err := tx.exec(ctx, `UPDATE messages SET status = ?, error = ? WHERE id = ?`, best, bestErr, messageID); err != nil {
			return err
		}
	}
	return tx.exec(ctx, `DELETE FROM pending_statuses WHERE channel = ? AND provider_id = ?`, ch, providerID)
}

// lockProviderID serialises a delivery report with the send that records
// the same provider id, so that a report arriving while the send commits
// is either seen by it or sees it, never neither.
func (tx *Tx) lockProviderID(ctx context.Context, ch switchboard.Channel, providerID string) error {
	q := tx.db.dialect.lockKey()
	if tx.db.dialect.singleWriter() {
		return nil
	}
	_, err := tx.tx.ExecContext(ctx, tx.db.dialect.rebind(q), string(ch)+":"+providerID)
	return err
}

// ApplyWatermark applies a delivery or read watermark (Messenger,
// Instagram): every outbound message on ch to the customer behind the
// identity, sent up to upTo, has reached at least status. It returns the
// messages that moved.
func (db *DB) ApplyWatermark(ctx context.Context, ch switchboard.Channel, id switchboard.IdentityRef, upTo time.Time, status switchboard.DeliveryStatus) ([]string, error) {
	rank := switchboard.DeliveryRank(status)
	if rank == 0 {
		return nil, switchboard.Errorf(switchboard.EINVALID, "unknown delivery status %q", status)
	}
	// Only messages the provider has accepted move: a watermark says
	// nothing of a reply still queued with us, nor revives a failed one.
	var lower []any
	for _, s := range []switchboard.DeliveryStatus{switchboard.DeliverySent, switchboard.DeliveryDelivered} {
		if switchboard.DeliveryRank(s) < rank {
			lower = append(lower, s)
		}
	}
	var moved []string
	err := db.inTx(ctx, func(tx *Tx) error {
		args := append([]any{status, ch, micros(upTo)}, lower...)
		args = append(args, id.Kind, id.Value)
		rows, err := tx.query(ctx, `UPDATE messages SET status = ? WHERE channel = ? AND direction = 'out' AND created_at <= ?
			AND status IN (`+placeholders(len(lower))+`)
			AND conversation_id IN (SELECT c.id FROM conversations c JOIN identities i ON i.customer_id = c.customer_id WHERE i.kind = ? AND i.value = ?)
			RETURNING id`, args...)
		if err != nil {
			return err
		}
		moved, err = scanStrings(rows)
		return err
	})
	return moved, wrap("apply watermark", err)
}

// PutTemplate adds or replaces a message template (name, language).
func (db *DB) PutTemplate(ctx context.Context, t switchboard.MessageTemplate) error {
	if t.Name == "" || t.Language == "" || t.Body == "" || t.Status == "" {
		return switchboard.Errorf(switchboard.EINVALID, "name, language, body and status are required")
	}
	return wrap("put template", db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `INSERT INTO wa_templates (name, language, category, body, status) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (name, language) DO UPDATE SET category = excluded.category, body = excluded.body, status = excluded.status`,
			t.Name, t.Language, t.Category, t.Body, t.Status)
	}))
}

// Templates lists message templates by name and language.
func (db *DB) Templates(ctx context.Context) ([]switchboard.MessageTemplate, error) {
	rows, err := db.query(ctx, `SELECT name, language, category, body, status FROM wa_templates ORDER BY name, language`)
	if err != nil {
		return nil, fmt.Errorf("store: templates: %w", err)
	}
	defer rows.Close()
	out := []switchboard.MessageTemplate{}
	for rows.Next() {
		var t switchboard.MessageTemplate
		if err := rows.Scan(&t.Name, &t.Language, &t.Category, &t.Body, &t.Status); err != nil {
			return nil, fmt.Errorf("store: templates: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RecordCall remembers who is calling, for the voicemail that may follow.
func (db *DB) RecordCall(ctx context.Context, callSID, caller string) error {
	return wrap("record call", db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `INSERT INTO calls (call_sid, caller, created_at) VALUES (?, ?, ?) ON CONFLICT (call_sid) DO NOTHING`,
			callSID, caller, micros(db.clock.Now()))
	}))
}

// Caller returns the number recorded for a call, or "".
func (db *DB) Caller(ctx context.Context, callSID string) (string, error) {
	var caller string
	err := db.queryRow(ctx, `SELECT caller FROM calls WHERE call_sid = ?`, callSID).Scan(&caller)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return caller, wrap("caller", err)
}

// AttachTranscript sets the transcript of the audio stored for the message
// (ch, providerID), whichever of the recording and the transcription
// arrived first: when the message is not stored yet, the transcript waits
// and Ingest applies it. It returns the message changed, "" when the
// transcript waits.
func (db *DB) AttachTranscript(ctx context.Context, ch switchboard.Channel, providerID, transcript string) (string, error) {
	var messageID string
	err := db.inTx(ctx, func(tx *Tx) error {
		messageID = ""
		if err := tx.lockProviderID(ctx, ch, providerID); err != nil {
			return err
		}
		err := tx.queryRow(ctx, `SELECT id FROM messages WHERE channel = ? AND provider_id = ? AND direction = 'in'`, ch, providerID).Scan(&messageID)
		if errors.Is(err, sql.ErrNoRows) {
			return tx.exec(ctx, `INSERT INTO pending_transcripts (channel, provider_id, transcript, created_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (channel, provider_id) DO UPDATE SET transcript = excluded.transcript`, ch, providerID, transcript, micros(db.clock.Now()))
		}
		if err != nil {
			return err
		}
		return tx.setTranscript(ctx, messageID, transcript)
	})
	return messageID, wrap("attach transcript", err)
}

func (tx *Tx) setTranscript(ctx context.Context, messageID, transcript string) error {
	return tx.exec(ctx, `UPDATE attachments SET transcript = ? WHERE message_id = ? AND content_type LIKE 'audio/%'`, transcript, messageID)
}

// applyPendingTranscripts gives newly stored voice messages the
// transcripts that arrived before them.
func (tx *Tx) applyPendingTranscripts(ctx context.Context, items []switchboard.Inbound, results []switchboard.IngestResult) error {
	for i := range items {
		if items[i].Channel != switchboard.ChannelVoice || results[i].MessageID == "" || results[i].Duplicate || results[i].Err != nil {
			continue
		}
		if err := tx.lockProviderID(ctx, items[i].Channel, items[i].ProviderID); err != nil {
			return err
		}
		var transcript string
		err := tx.queryRow(ctx, `SELECT transcript FROM pending_transcripts WHERE channel = ? AND provider_id = ?`, items[i].Channel, items[i].ProviderID).Scan(&transcript)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return err
		}
		if err := tx.setTranscript(ctx, results[i].MessageID, transcript); err != nil {
			return err
		}
		if err := tx.exec(ctx, `DELETE FROM pending_transcripts WHERE channel = ? AND provider_id = ?`, items[i].Channel, items[i].ProviderID); err != nil {
			return err
		}
	}
	return nil
}
