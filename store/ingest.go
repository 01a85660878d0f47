package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
	"github.com/switchboard-inbox/switchboard/thread"
)

// IngestOptions tune how inbound messages are threaded.
type IngestOptions struct {
	// ReopenWindow is how long after resolution a new message reopens the
	// resolved conversation instead of starting a new one (default 7 days).
	ReopenWindow time.Duration
	// OneByOne skips the set-based fast path and threads each message in
	// its own savepoint, as Ingest does after the fast path fails. Tests
	// use it to hold both paths to the same behaviour.
	OneByOne bool
}

// errIdentityTaken means another transaction claimed an identity between
// our lookup and our insert; the message is threaded again from scratch.
var errIdentityTaken = errors.New("identity claimed concurrently")

// Ingest threads a batch of inbound messages into their customers'
// conversations in one transaction: one commit for the whole batch is what
// lets the embedded default keep up with thousands of messages a second.
// It is idempotent: a (channel, provider id) already stored is reported as
// a duplicate and changes nothing. Results are in the order of items.
//
// The batch first runs on a fast path with no per-message savepoints. If
// any message fails there (a constraint, a concurrent insert of the same
// identity or provider id on PostgreSQL), the transaction is rolled back
// and the batch runs again message by message inside savepoints, so that
// one bad message is dead-lettered without holding back the rest.
func (db *DB) Ingest(ctx context.Context, items []switchboard.Inbound, opts IngestOptions) ([]switchboard.IngestResult, error) {
	if opts.ReopenWindow <= 0 {
		opts.ReopenWindow = 7 * 24 * time.Hour
	}
	// Take customers in a stable order so that concurrent batches on
	// PostgreSQL lock rows in the same order and rarely deadlock.
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return identityKey(items[order[a]]) < identityKey(items[order[b]])
	})
	var results []switchboard.IngestResult
	err := errSlowPath
	for attempt := 0; attempt < 3 && !opts.OneByOne; attempt++ {
		err = db.inTx(ctx, func(tx *Tx) error {
			var err error
			results, err = tx.ingestBatch(ctx, items, order, opts, false)
			return err
		})
		if err == nil {
			db.stats.FastBatches.Add(1)
		}
		if !errors.Is(err, errReplan) {
			break
		}
		db.stats.Replans.Add(1)
		err = errSlowPath // if attempts run out
	}
	if errors.Is(err, errSlowPath) {
		db.stats.SlowBatches.Add(1)
		err = db.inTx(ctx, func(tx *Tx) error {
			var err error
			results, err = tx.ingestBatch(ctx, items, order, opts, true)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: ingest: %w", err)
	}
	return results, nil
}

// errSlowPath asks Ingest to run the batch again message by message.
var errSlowPath = errors.New("a message failed on the fast path")

// errReplan asks Ingest to run the fast path again: a concurrent batch
// stored something this one planned to create, and has committed it.
var errReplan = errors.New("a concurrent batch changed what was planned")

func (tx *Tx) ingestBatch(ctx context.Context, items []switchboard.Inbound, order []int, opts IngestOptions, careful bool) ([]switchboard.IngestResult, error) {
	now := tx.db.clock.Now()
	results := make([]switchboard.IngestResult, len(items))
	known, err := tx.storedProviderIDs(ctx, items)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(items))
	// Replies that name the conversation they answer are threaded one by
	// one after the set-based plan, which only knows customers' open
	// conversations.
	var work, threaded []int
	for _, i := range order {
		in := &items[i]
		key := string(in.Channel) + "\x00" + in.ProviderID
		if id, ok := known[key]; ok {
			results[i] = switchboard.IngestResult{MessageID: id, Duplicate: true}
			continue
		}
		if seen[key] {
			results[i] = switchboard.IngestResult{Duplicate: true}
			continue
		}
		seen[key] = true
		if !careful {
			if err := in.Validate(); err != nil {
				return nil, fmt.Errorf("%w: %w", errSlowPath, err)
			}
			if hinted(in) {
				threaded = append(threaded, i)
				continue
			}
			work = append(work, i)
			continue
		}
		r, err := tx.ingestOne(ctx, in, now, opts)
		if err != nil {
			if tx.db.dialect.isRetryable(err) || ctx.Err() != nil {
				return nil, err
			}
			if err := tx.deadLetter(ctx, in, err, now); err != nil {
				return nil, err
			}
			r = switchboard.IngestResult{Err: err}
		}
		results[i] = r
	}
	if !careful {
		if err := tx.ingestFast(ctx, items, work, now, opts, results); err != nil {
			if tx.db.dialect.isRetryable(err) || ctx.Err() != nil || errors.Is(err, errSlowPath) || errors.Is(err, errReplan) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", errSlowPath, err)
		}
		for _, i := range threaded {
			r, err := tx.thread(ctx, &items[i], now, opts)
			if err == nil && r.Duplicate {
				// Stored concurrently, after what thread wrote before
				// finding out: only the careful path can undo that.
				err = errors.New("stored concurrently")
			}
			if err != nil {
				if tx.db.dialect.isRetryable(err) || ctx.Err() != nil {
					return nil, err
				}
				return nil, fmt.Errorf("%w: %w", errSlowPath, err)
			}
			results[i] = r
		}
	}
	if err := tx.afterReopen(ctx, results, now); err != nil {
		return nil, fmt.Errorf("reopened conversations: %w", err)
	}
	if err := tx.applyPendingTranscripts(ctx, items, results); err != nil {
		return nil, fmt.Errorf("apply transcripts: %w", err)
	}
	return results, nil
}

// storedProviderIDs returns, keyed by channel and provider id, the
// messages of the batch that are already stored, in one query per channel.
func (tx *Tx) storedProviderIDs(ctx context.Context, items []switchboard.Inbound) (map[string]string, error) {
	byChannel := map[switchboard.Channel][]any{}
	for _, in := range items {
		byChannel[in.Channel] = append(byChannel[in.Channel], in.ProviderID)
	}
	known := map[string]string{}
	for ch, ids := range byChannel {
		rows, err := tx.tx.QueryContext(ctx, tx.db.dialect.rebind(`SELECT provider_id, id FROM messages WHERE channel = ? AND provider_id IN (`+placeholders(len(ids))+`)`),
			append([]any{ch}, ids...)...)
		if err != nil {
			return nil, fmt.Errorf("look up provider ids: %w", err)
		}
		for rows.Next() {
			var pid, id string
			if err := rows.Scan(&pid, &id); err != nil {
				rows.Close()
				return nil, err
			}
			known[string(ch)+"\x00"+pid] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return known, nil
}

func identityKey(in switchboard.Inbound) string {
	if len(in.Identities) == 0 {
		return ""
	}
	return string(in.Identities[0].Kind) + ":" + in.Identities[0].Value
}

// ingestOne stores one message inside a savepoint, so that a message that
// fails (or turns out to be a duplicate) leaves no trace in the batch.
func (tx *Tx) ingestOne(ctx context.Context, in *switchboard.Inbound, now time.Time, opts IngestOptions) (switchboard.IngestResult, error) {
	if err := in.Validate(); err != nil {
		return switchboard.IngestResult{}, err
	}
	for attempt := 0; ; attempt++ {
		if err := tx.exec(ctx, `SAVEPOINT ingest_one`); err != nil {
			return switchboard.IngestResult{}, err
		}
		r, err := tx.thread(ctx, in, now, opts)
		if err == nil && !r.Duplicate {
			return r, tx.exec(ctx, `RELEASE SAVEPOINT ingest_one`)
		}
		if rbErr := tx.exec(ctx, `ROLLBACK TO SAVEPOINT ingest_one`); rbErr != nil {
			return switchboard.IngestResult{}, errors.Join(err, rbErr)
		}
		if err := tx.exec(ctx, `RELEASE SAVEPOINT ingest_one`); err != nil {
			return switchboard.IngestResult{}, err
		}
		if errors.Is(err, errIdentityTaken) && attempt < 3 {
			continue
		}
		return r, err
	}
}

// thread stores one message: it finds or creates the customer, gathers
// the facts thread.Decide needs, carries out its decision, then writes the
// message. The caller has checked the provider id against what was stored
// before the batch.
func (tx *Tx) thread(ctx context.Context, in *switchboard.Inbound, now time.Time, opts IngestOptions) (switchboard.IngestResult, error) {
	customerID, isNew, err := tx.resolveCustomer(ctx, in, now)
	if err != nil {
		return switchboard.IngestResult{}, err
	}
	created := receivedAt(in, now)
	r := switchboard.IngestResult{CustomerID: customerID}
	f := thread.Facts{Customer: customerID, Now: now, ReopenWindow: opts.ReopenWindow}
	if !isNew {
		if f.Current, err = tx.currentConversation(ctx, customerID); err != nil {
			return switchboard.IngestResult{}, err
		}
	}
	if hinted(in) {
		if err := tx.namedFacts(ctx, in, customerID, &f); err != nil {
			return switchboard.IngestResult{}, err
		}
	}
	conv, err := tx.applyThreading(ctx, thread.Decide(f), customerID, in.Channel, created, now, &r)
	if err != nil {
		return switchboard.IngestResult{}, err
	}
	r.ConversationID = conv.id

	m := inboundMessage(in, newID(now), conv.id, created, now)
	r.MessageID, r.Message = m.ID, &m
	var inserted string
	err = tx.queryRow(ctx, `INSERT INTO messages `+inboundMessageColumns+` VALUES (`+placeholders(13)+`)
		ON CONFLICT (channel, provider_id) DO NOTHING RETURNING id`, inboundMessageRow(&m, in.Subject)...).Scan(&inserted)
	if errors.Is(err, sql.ErrNoRows) {
		// Another transaction stored it between our look-up and now.
		return switchboard.IngestResult{Duplicate: true}, nil
	}
	if err != nil {
		return switchboard.IngestResult{}, fmt.Errorf("insert message: %w", err)
	}
	for _, a := range m.Attachments {
		if err := tx.exec(ctx, `INSERT INTO attachments `+attachmentColumns+` VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, attachmentRow(m.ID, a)...); err != nil {
			return switchboard.IngestResult{}, fmt.Errorf("insert attachment: %w", err)
		}
	}
	if len(in.Original) > 0 {
		if err := tx.exec(ctx, `INSERT INTO message_originals (message_id, body) VALUES (?, ?)`, r.MessageID, in.Original); err != nil {
			return switchboard.IngestResult{}, fmt.Errorf("insert original: %w", err)
		}
	}
	if r.NewConversation {
		return r, nil // inserted with this message's time and channel
	}
	if conv.lastChannel != "" && conv.lastChannel != in.Channel {
		r.SwitchedFrom = conv.lastChannel
	}
	// The conversation's customer channels may have changed: this path is
	// the rarer one, so it does not work out whether they did.
	if err := tx.conversationsChanged(ctx, now, migrationKinds, conv.id); err != nil {
		return switchboard.IngestResult{}, err
	}
	return r, tx.touchConversation(ctx, conv, in.Channel, created, true)
}

// inboundMessage is the message both ingest paths store for in, exactly
// as reading it back would return it (defaults filled, time to the
// microsecond, attachments in id order), so that it can be announced
// without a read.
func inboundMessage(in *switchboard.Inbound, id, conversationID string, created, now time.Time) switchboard.Message {
	meta := in.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage("{}")
	}
	contentType := in.ContentType
	if contentType == "" {
		contentType = switchboard.ContentText
	}
	m := switchboard.Message{ID: id, ConversationID: conversationID, Direction: switchboard.DirectionIn, Channel: in.Channel,
		ProviderID: in.ProviderID, Sender: in.Identities[0].Value, ContentType: contentType, Text: in.Text, HTML: in.HTML,
		Status: switchboard.DeliveryReceived, Metadata: meta, CreatedAt: time.UnixMicro(micros(created)).UTC()}
	for _, a := range in.Attachments {
		a.ID = newID(now)
		m.Attachments = append(m.Attachments, a)
	}
	slices.SortFunc(m.Attachments, func(a, b switchboard.Attachment) int { return strings.Compare(a.ID, b.ID) })
	return m
}

// inboundMessageColumns and inboundMessageRow are the one shape both
// ingest paths write an inbound message in; attachmentColumns and
// attachmentRow its attachments.
const (
	inboundMessageColumns = `(id, conversation_id, direction, channel, provider_id, sender, content_type, subject, text, html, status, metadata, created_at)`
	attachmentColumns     = `(id, message_id, object_key, content_type, size, name, transcript, content_id)`
)

func inboundMessageRow(m *switchboard.Message, subject string) []any {
	return []any{m.ID, m.ConversationID, m.Direction, m.Channel, m.ProviderID, m.Sender,
		m.ContentType, subject, m.Text, m.HTML, m.Status, string(m.Metadata), micros(m.CreatedAt)}
}

func attachmentRow(messageID string, a switchboard.Attachment) []any {
	return []any{a.ID, messageID, a.Key, a.ContentType, a.Size, a.Name, a.Transcript, a.ContentID}
}

// receivedAt is the message's time: when the provider says it arrived,
// unless that is missing or in the future.
func receivedAt(in *switchboard.Inbound, now time.Time) time.Time {
	if !in.ReceivedAt.IsZero() && in.ReceivedAt.Before(now) {
		return in.ReceivedAt.UTC()
	}
	return now
}

// resolveCustomer finds the customer behind the sender's identities,
// creating the customer when none is known (isNew) and attaching
// identities not yet known to them. On PostgreSQL it locks the customer row
// for the rest of the transaction, so that one customer's messages are
// threaded one at a time; SQLite has a single writer and needs no lock.
func (tx *Tx) resolveCustomer(ctx context.Context, in *switchboard.Inbound, now time.Time) (customerID string, isNew bool, err error) {
	var unknown []switchboard.IdentityRef
	var name string
	var mergedInto sql.NullString
	for i, id := range in.Identities {
		var cid, cname string
		var merged sql.NullString
		err := tx.queryRow(ctx, `SELECT i.customer_id, c.name, c.merged_into FROM identities i JOIN customers c ON c.id = i.customer_id WHERE i.kind = ? AND i.value = ?`,
			id.Kind, id.Value).Scan(&cid, &cname, &merged)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			unknown = append(unknown, id)
		case err != nil:
			return "", false, fmt.Errorf("look up identity: %w", err)
		case i == 0:
			// Only the primary identity (the one the channel vouches for:
			// the e-mail of a form, an SMS's From) picks the customer. A
			// secondary one that belongs to someone else, say a phone
			// number typed into a web form, is left for an agent to merge:
			// otherwise anyone could write into another customer's thread.
			customerID, name, mergedInto = cid, cname, merged
		}
	}
	if customerID == "" {
		customerID, isNew, name = newID(now), true, in.SenderName
		if err := tx.exec(ctx, `INSERT INTO customers (id, name, created_at) VALUES (?, ?, ?)`, customerID, in.SenderName, micros(now)); err != nil {
			return "", false, fmt.Errorf("insert customer: %w", err)
		}
	} else if !tx.db.dialect.singleWriter() || mergedInto.Valid {
		if customerID, name, err = tx.lockCustomer(ctx, customerID); err != nil {
			return "", false, err
		}
	}
	for _, id := range unknown {
		res, err := tx.execResult(ctx, `INSERT INTO identities (kind, value, customer_id, verified, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, value) DO NOTHING`,
			id.Kind, id.Value, customerID, verifiedFlag(id.Kind), micros(now))
		if err != nil {
			return "", false, fmt.Errorf("insert identity: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return "", false, errIdentityTaken
		}
	}
	if name == "" && in.SenderName != "" {
		if err := tx.exec(ctx, `UPDATE customers SET name = ? WHERE id = ?`, in.SenderName, customerID); err != nil {
			return "", false, fmt.Errorf("name customer: %w", err)
		}
	}
	for _, c := range in.Claims {
		if err := tx.insertClaim(ctx, []any{customerID, c.Kind, c.Value, micros(now)}); err != nil {
			return "", false, err
		}
	}
	return customerID, isNew, nil
}

// insertClaim keeps an identity a customer claimed (customer_id, kind,
// value, created_at), unless it is one of their own already.
func (tx *Tx) insertClaim(ctx context.Context, c []any) error {
	if err := tx.exec(ctx, `INSERT INTO identity_claims (customer_id, kind, value, created_at)
		SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT) WHERE NOT EXISTS (SELECT 1 FROM identities WHERE kind = ? AND value = ? AND customer_id = ?)
		ON CONFLICT DO NOTHING`, append(c, c[1], c[2], c[0])...); err != nil {
		return fmt.Errorf("record claim: %w", err)
	}
	return nil
}

// verifiedFlag is identities.verified for an identity of kind k.
func verifiedFlag(k switchboard.IdentityKind) int {
	if k.Verified() {
		return 1
	}
	return 0
}

// lockCustomer follows merge redirects to the surviving customer and locks
// its row.
func (tx *Tx) lockCustomer(ctx context.Context, id string) (string, string, error) {
	for hops := 0; hops < 16; hops++ {
		var name string
		var mergedInto sql.NullString
		err := tx.queryRow(ctx, `SELECT name, merged_into FROM customers WHERE id = ?`+tx.db.dialect.lockRow(), id).Scan(&name, &mergedInto)
		if err != nil {
			return "", "", fmt.Errorf("lock customer %s: %w", id, err)
		}
		if !mergedInto.Valid {
			return id, name, nil
		}
		id = mergedInto.String
	}
	return "", "", fmt.Errorf("customer %s: merge redirects loop", id)
}

type convRef struct {
	id          string
	lastChannel switchboard.Channel
	status      switchboard.Status
}

const threadColumns = `id, customer_id, status, resolved_at, last_channel`

func scanThreadConversation(row interface{ Scan(...any) error }) (*thread.Conversation, error) {
	c := &thread.Conversation{}
	var resolved sql.NullInt64
	if err := row.Scan(&c.ID, &c.CustomerID, &c.Status, &resolved, &c.LastChannel); err != nil {
		return nil, err
	}
	c.ResolvedAt = fromMicros(resolved)
	return c, nil
}

// currentConversation returns the customer's conversation that is not
// resolved, else the one resolved last; nil when they have none.
func (tx *Tx) currentConversation(ctx context.Context, customerID string) (*thread.Conversation, error) {
	// One look-up serves both cases: the open conversation sorts first.
	c, err := scanThreadConversation(tx.queryRow(ctx, `SELECT `+threadColumns+` FROM conversations WHERE customer_id = ?
		ORDER BY CASE WHEN status = 'resolved' THEN 1 ELSE 0 END, resolved_at DESC LIMIT 1`, customerID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find conversation: %w", err)
	}
	return c, nil
}

// applyThreading carries out a threading decision for a message that came
// on ch: it starts, wakes or reopens the conversation as decided, with the
// events that say so.
func (tx *Tx) applyThreading(ctx context.Context, d thread.Decision, customerID string, ch switchboard.Channel, created, now time.Time, r *switchboard.IngestResult) (convRef, error) {
	if d.Action == thread.Create {
		c := convRef{id: newID(now), lastChannel: ch, status: switchboard.StatusOpen}
		if err := tx.exec(ctx, `INSERT INTO conversations (id, customer_id, status, last_channel, last_message_at, last_inbound_at, created_at) VALUES (?, ?, 'open', ?, ?, ?, ?)`,
			c.id, customerID, ch, micros(created), micros(created), micros(now)); err != nil {
			return c, fmt.Errorf("insert conversation: %w", err)
		}
		if err := tx.exec(ctx, `INSERT INTO conversation_channels (conversation_id, channel) VALUES (?, ?)`, c.id, ch); err != nil {
			return c, fmt.Errorf("record channel: %w", err)
		}
		r.NewConversation = true
		if err := tx.startCycle(ctx, c.id, ch, created, now); err != nil {
			return c, err
		}
		return c, tx.addEvent(ctx, c.id, switchboard.EventCreated, "", map[string]any{"channel": ch, "customer_id": customerID}, now)
	}
	c := convRef{id: d.Conversation.ID, lastChannel: d.Conversation.LastChannel, status: switchboard.StatusOpen}
	switch d.Action {
	case thread.Wake:
		// A customer writing again wakes a pending or snoozed conversation.
		return c, tx.setStatus(ctx, c.id, d.Conversation.Status, switchboard.StatusOpen, "", now)
	case thread.Reopen:
		if err := tx.exec(ctx, `UPDATE conversations SET status = 'open', resolved_at = NULL WHERE id = ?`, c.id); err != nil {
			return c, fmt.Errorf("reopen conversation: %w", err)
		}
		r.Reopened = true
		if err := tx.startCycle(ctx, c.id, ch, created, now); err != nil {
			return c, err
		}
		if err := tx.resumeAssignments(ctx, []any{c.id}, now); err != nil {
			return c, err
		}
		return c, tx.addEvent(ctx, c.id, switchboard.EventReopened, "", reopenedData(ch, d.ByReply), now)
	}
	return c, nil
}

// reopenedData is the reopened event's data, on both ingest paths.
func reopenedData(ch switchboard.Channel, byReply bool) map[string]any {
	if byReply {
		return map[string]any{"channel": ch, "reply_to": true}
	}
	return map[string]any{"channel": ch}
}

// touchConversation records a new message on the conversation: its time,
// the channel it came by, and a channel switch when that changed.
func (tx *Tx) touchConversation(ctx context.Context, c convRef, ch switchboard.Channel, at time.Time, inbound bool) error {
	q := `UPDATE conversations SET last_channel = ?, last_message_at = CASE WHEN last_message_at > ? THEN last_message_at ELSE ? END WHERE id = ?`
	args := []any{ch, micros(at), micros(at), c.id}
	if inbound {
		q = `UPDATE conversations SET last_channel = ?, last_message_at = CASE WHEN last_message_at > ? THEN last_message_at ELSE ? END,
			last_inbound_at = CASE WHEN last_inbound_at > ? THEN last_inbound_at ELSE ? END WHERE id = ?`
		args = []any{ch, micros(at), micros(at), micros(at), micros(at), c.id}
	}
	if err := tx.exec(ctx, q, args...); err != nil {
		return fmt.Errorf("update conversation: %w", err)
	}
	if c.lastChannel == ch {
		return nil // the channel was recorded when it became the last one
	}
	if err := tx.exec(ctx, `INSERT INTO conversation_channels (conversation_id, channel) VALUES (?, ?) ON CONFLICT DO NOTHING`, c.id, ch); err != nil {
		return fmt.Errorf("record channel: %w", err)
	}
	if inbound && c.lastChannel != "" {
		return tx.addEvent(ctx, c.id, switchboard.EventChannelSwitch, "", map[string]any{"from": c.lastChannel, "to": ch}, at)
	}
	return nil
}

func (tx *Tx) addEvent(ctx context.Context, conversationID string, typ switchboard.EventType, agentID string, data any, at time.Time) error {
	if err := tx.trackAssignment(ctx, conversationID, typ, data, at); err != nil {
		return err
	}
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	if err := tx.exec(ctx, `INSERT INTO events (id, conversation_id, type, agent_id, data, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		newID(at), conversationID, typ, nullString(agentID), string(b), micros(at)); err != nil {
		return fmt.Errorf("insert %s event: %w", typ, err)
	}
	return nil
}

// startCycle starts a response cycle: a customer message at created
// created or reopened the conversation.
func (tx *Tx) startCycle(ctx context.Context, conversationID string, ch switchboard.Channel, created, now time.Time) error {
	if err := tx.exec(ctx, `INSERT INTO cycles (id, conversation_id, channel, started_at) VALUES (?, ?, ?, ?)`,
		newID(now), conversationID, ch, micros(created)); err != nil {
		return fmt.Errorf("start cycle: %w", err)
	}
	return tx.bumpRollups(ctx, now, cycleKinds, micros(created))
}

func (tx *Tx) setStatus(ctx context.Context, conversationID string, from, to switchboard.Status, agentID string, now time.Time) error {
	resolved := sql.NullInt64{}
	if to == switchboard.StatusResolved {
		resolved = nullMicros(now)
		// The open cycle ends, with the topic it was resolved under.
		if err := tx.exec(ctx, `UPDATE cycles SET resolved_at = ?, topic = (SELECT topic FROM conversations WHERE id = ?)
			WHERE conversation_id = ? AND resolved_at IS NULL`, micros(now), conversationID, conversationID); err != nil {
			return fmt.Errorf("end cycle: %w", err)
		}
	}
	if err := tx.exec(ctx, `UPDATE conversations SET status = ?, resolved_at = ? WHERE id = ?`, to, resolved, conversationID); err != nil {
		return fmt.Errorf("set status: %w", err)
	}
	return tx.addEvent(ctx, conversationID, switchboard.EventStatus, agentID, map[string]any{"from": from, "to": to}, now)
}

func (tx *Tx) deadLetter(ctx context.Context, in *switchboard.Inbound, cause error, now time.Time) error {
	payload, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	return tx.insertDeadLetter(ctx, in.Channel, payload, cause.Error(), now)
}

func (tx *Tx) insertDeadLetter(ctx context.Context, ch switchboard.Channel, payload []byte, cause string, now time.Time) error {
	sum := sha256.Sum256(payload)
	if err := tx.exec(ctx, `INSERT INTO dead_letters (id, channel, payload, error, created_at, payload_hash) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (channel, payload_hash) DO NOTHING`,
		newID(now), string(ch), payload, cause, micros(now), hex.EncodeToString(sum[:])); err != nil {
		return fmt.Errorf("insert dead letter: %w", err)
	}
	return nil
}

// DeadLetter keeps a queue entry that cannot be processed (it does not
// decode, say) for an operator to inspect, so it is never silently lost.
func (db *DB) DeadLetter(ctx context.Context, ch switchboard.Channel, payload []byte, cause string) error {
	return wrap("dead letter", db.inTx(ctx, func(tx *Tx) error {
		return tx.insertDeadLetter(ctx, ch, payload, cause, db.clock.Now())
	}))
}

// afterReopen settles who has the conversations this batch reopened. The
// agent who had one keeps it while online (continuity), as the router's
// assignment now, so that it may later return to the queue like any other;
// one whose agent is away or offline goes back to the queue at once, with
// an event saying why.
func (tx *Tx) afterReopen(ctx context.Context, results []switchboard.IngestResult, now time.Time) error {
	var ids []any
	for _, r := range results {
		if r.Reopened && r.Err == nil {
			ids = append(ids, r.ConversationID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	// Held conversations are a person's to release; they keep their agent.
	rows, err := tx.query(ctx, `SELECT c.id, a.id, a.name, a.status FROM conversations c JOIN agents a ON a.id = c.assignee_id
		WHERE c.held = 0 AND c.id IN (`+placeholders(len(ids))+`)`, ids...)
	if err != nil {
		return err
	}
	type held struct {
		conv, agent, name string
		status            switchboard.AgentStatus
	}
	var hs []held
	for rows.Next() {
		var h held
		if err := rows.Scan(&h.conv, &h.agent, &h.name, &h.status); err != nil {
			rows.Close()
			return err
		}
		hs = append(hs, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, h := range hs {
		if h.status == switchboard.AgentOnline {
			if err := tx.exec(ctx, `UPDATE conversations SET assigned_by = ? WHERE id = ?`, route.AssignedRouter, h.conv); err != nil {
				return err
			}
			continue
		}
		if err := tx.exec(ctx, `UPDATE conversations SET assignee_id = NULL, assigned_by = '', wait_reason = '' WHERE id = ?`, h.conv); err != nil {
			return err
		}
		reason := fmt.Sprintf("reopened while %s is %s: back to the queue", h.name, h.status)
		if err := tx.returnedEvent(ctx, h.conv, h.agent, reason, now); err != nil {
			return err
		}
	}
	return nil
}

// trackAssignment keeps the assignments table in step with the events
// that change who has a conversation: an assignment or transfer, an
// unassignment, a resolution, a reopening by hand.
func (tx *Tx) trackAssignment(ctx context.Context, conversationID string, typ switchboard.EventType, data any, at time.Time) error {
	d, _ := data.(map[string]any)
	end := func() error {
		return tx.exec(ctx, `UPDATE assignments SET ended_at = ? WHERE conversation_id = ? AND ended_at IS NULL`, micros(at), conversationID)
	}
	var err error
	switch typ {
	case switchboard.EventAssigned:
		if err = end(); err == nil {
			agent, _ := d["agent_id"].(string)
			err = tx.exec(ctx, `INSERT INTO assignments (conversation_id, agent_id, started_at) VALUES (?, ?, ?)`, conversationID, agent, micros(at))
		}
	case switchboard.EventUnassigned:
		err = end()
	case switchboard.EventStatus:
		switch {
		case d["to"] == switchboard.StatusResolved:
			err = end()
		case d["from"] == switchboard.StatusResolved:
			err = tx.resumeAssignments(ctx, []any{conversationID}, at)
		}
	}
	if err != nil {
		return fmt.Errorf("track assignment: %w", err)
	}
	return nil
}

// resumeAssignments restarts the assignment of reopened conversations that
// kept their agent.
func (tx *Tx) resumeAssignments(ctx context.Context, ids []any, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	return tx.exec(ctx, `INSERT INTO assignments (conversation_id, agent_id, started_at)
		SELECT id, assignee_id, ? FROM conversations WHERE id IN (`+placeholders(len(ids))+`) AND assignee_id IS NOT NULL`,
		append([]any{micros(at)}, ids...)...)
}
