package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
)

const conversationColumns = `c.id, c.customer_id, COALESCE(cu.name, ''), c.status, COALESCE(c.assignee_id, ''), COALESCE(a.name, ''),
	COALESCE(t.name, ''), c.topic, c.priority, c.last_channel, c.last_message_at, c.last_inbound_at, c.first_response_at, c.resolved_at, c.created_at`

const conversationFrom = ` FROM conversations c
	JOIN customers cu ON cu.id = c.customer_id
	LEFT JOIN agents a ON a.id = c.assignee_id
	LEFT JOIN teams t ON t.id = c.team_id`

func scanConversation(row interface{ Scan(...any) error }) (switchboard.Conversation, error) {
	var c switchboard.Conversation
	var last, inbound, first, resolved, created sql.NullInt64
	err := row.Scan(&c.ID, &c.CustomerID, &c.CustomerName, &c.Status, &c.AssigneeID, &c.AssigneeName,
		&c.Team, &c.Topic, &c.Priority, &c.LastChannel, &last, &inbound, &first, &resolved, &created)
	c.LastMessageAt, c.LastInboundAt, c.FirstResponseAt = fromMicros(last), fromMicros(inbound), fromMicros(first)
	c.ResolvedAt, c.CreatedAt = fromMicros(resolved), fromMicros(created)
	return c, err
}

// ListConversations returns conversations newest last_message_at first, and
// the cursor of the next page ("" on the last page).
func (db *DB) ListConversations(ctx context.Context, f switchboard.ConversationFilter) ([]switchboard.Conversation, string, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	var where []string
	var args []any
	if f.Status != "" {
		where, args = append(where, "c.status = ?"), append(args, f.Status)
	}
	switch f.AssigneeID {
	case "":
	case "none":
		where = append(where, "c.assignee_id IS NULL")
	default:
		where, args = append(where, "c.assignee_id = ?"), append(args, f.AssigneeID)
	}
	if f.Channel != "" {
		where = append(where, "EXISTS (SELECT 1 FROM conversation_channels cc WHERE cc.conversation_id = c.id AND cc.channel = ?)")
		args = append(args, f.Channel)
	}
	if f.Topic != "" {
		where, args = append(where, "c.topic = ?"), append(args, f.Topic)
	}
	if f.Team != "" {
		where, args = append(where, "c.team_id = (SELECT id FROM teams WHERE name = ?)"), append(args, f.Team)
	}
	if f.Waiting {
		where = append(where, "c.status = 'open' AND c.last_inbound_at >= c.last_message_at")
	}
	from := conversationFrom
	var searchArgs []any
	if q := strings.TrimSpace(f.Query); q != "" {
		join, pred := db.dialect.searchJoin()
		// Search first and join the matching conversations: left to
		// itself, PostgreSQL's planner misjudges full-text selectivity and
		// walks every conversation in date order, probing each one.
		from = ` FROM (SELECT DISTINCT m.conversation_id AS id FROM messages m` + join + ` WHERE ` + pred + `) matched
	JOIN conversations c ON c.id = matched.id` + strings.TrimPrefix(conversationFrom, " FROM conversations c")
		searchArgs = []any{ftsQuery(db.dialect, q)}
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(c.last_message_at < ? OR (c.last_message_at = ? AND c.id < ?))")
		args = append(args, at, at, id)
	}
	q := "SELECT " + conversationColumns + from
	args = append(searchArgs, args...)
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY c.last_message_at DESC, c.id DESC LIMIT ?"
	args = append(args, f.Limit+1)
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list conversations: %w", err)
	}
	defer rows.Close()
	var out []switchboard.Conversation
	for rows.Next() {
		c, err := scanConversation(rows)
		if err != nil {
			return nil, "", fmt.Errorf("store: scan conversation: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("store: list conversations: %w", err)
	}
	var next string
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		next = encodeCursor(micros(last.LastMessageAt), last.ID)
	}
	if err := db.fillChannels(ctx, out); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

func encodeCursor(at int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at, 10) + ":" + id))
}

func decodeCursor(s string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		at, id, ok := strings.Cut(string(b), ":")
		if n, err := strconv.ParseInt(at, 10, 64); ok && err == nil && id != "" {
			return n, id, nil
		}
	}
	return 0, "", switchboard.Errorf(switchboard.EINVALID, "malformed cursor")
}

// fillChannels sets Channels on each conversation with one query.
func (db *DB) fillChannels(ctx context.Context, convs []switchboard.Conversation) error {
	if len(convs) == 0 {
		return nil
	}
	idx := make(map[string]int, len(convs))
	args := make([]any, len(convs))
	for i, c := range convs {
		idx[c.ID] = i
		args[i] = c.ID
	}
	rows, err := db.query(ctx, `SELECT conversation_id, channel FROM conversation_channels WHERE conversation_id IN (`+placeholders(len(convs))+`) ORDER BY channel`, args...)
	if err != nil {
		return fmt.Errorf("store: conversation channels: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var ch switchboard.Channel
		if err := rows.Scan(&id, &ch); err != nil {
			return fmt.Errorf("store: scan channel: %w", err)
		}
		c := &convs[idx[id]]
		c.Channels = append(c.Channels, ch)
	}
	return rows.Err()
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// GetConversation returns one conversation.
func (db *DB) GetConversation(ctx context.Context, id string) (switchboard.Conversation, error) {
	c, err := scanConversation(db.queryRow(ctx, "SELECT "+conversationColumns+conversationFrom+" WHERE c.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, switchboard.Errorf(switchboard.ENOTFOUND, "conversation %s not found", id)
	}
	if err != nil {
		return c, fmt.Errorf("store: get conversation: %w", err)
	}
	convs := []switchboard.Conversation{c}
	if err := db.fillChannels(ctx, convs); err != nil {
		return c, err
	}
	return convs[0], nil
}

// ConversationsByID returns the conversations named, in no particular
// order; ids not found are left out. Two queries however many there are.
func (db *DB) ConversationsByID(ctx context.Context, ids []string) ([]switchboard.Conversation, error) {
	var out []switchboard.Conversation
	for _, chunk := range chunks(toAny(ids), 500) {
		rows, err := db.query(ctx, "SELECT "+conversationColumns+conversationFrom+" WHERE c.id IN ("+placeholders(len(chunk))+")", chunk...)
		if err != nil {
			return nil, fmt.Errorf("store: conversations by id: %w", err)
		}
		for rows.Next() {
			c, err := scanConversation(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: scan conversation: %w", err)
			}
			out = append(out, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: conversations by id: %w", err)
		}
	}
	return out, db.fillChannels(ctx, out)
}

// Timeline returns a page of the messages of all the customer's
// conversations, so the agent sees the whole story whichever thread they
// open: the newest limit messages before the cursor (""; the newest),
// oldest first, and the cursor of the page before them ("" when there is
// none).
func (db *DB) Timeline(ctx context.Context, customerID, before string, limit int) ([]switchboard.Message, string, error) {
	if limit <= 0 {
		limit = 50
	}
	q := `SELECT ` + messageColumns + ` FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.customer_id = ?`
	args := []any{customerID}
	if before != "" {
		at, id, err := decodeCursor(before)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (m.created_at < ? OR (m.created_at = ? AND m.id < ?))`
		args = append(args, at, at, id)
	}
	rows, err := db.query(ctx, q+` ORDER BY m.created_at DESC, m.id DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("store: timeline: %w", err)
	}
	msgs, err := scanMessages(rows)
	if err != nil {
		return nil, "", err
	}
	var next string
	if len(msgs) > limit {
		msgs = msgs[:limit]
		last := msgs[limit-1]
		next = encodeCursor(micros(last.CreatedAt), last.ID)
	}
	slices.Reverse(msgs)
	return msgs, next, db.fillAttachments(ctx, msgs)
}

// Events returns a conversation's event log, oldest first.
func (db *DB) Events(ctx context.Context, conversationID string) ([]switchboard.Event, error) {
	rows, err := db.query(ctx, `SELECT id, conversation_id, type, COALESCE(agent_id, ''), data, created_at FROM events WHERE conversation_id = ? ORDER BY created_at, id`, conversationID)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	defer rows.Close()
	var out []switchboard.Event
	for rows.Next() {
		var e switchboard.Event
		var data string
		var at sql.NullInt64
		if err := rows.Scan(&e.ID, &e.ConversationID, &e.Type, &e.AgentID, &data, &at); err != nil {
			return nil, fmt.Errorf("store: scan event: %w", err)
		}
		e.Data, e.CreatedAt = []byte(data), fromMicros(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// SetStatus changes a conversation's status, recording who did it.
func (db *DB) SetStatus(ctx context.Context, id string, status switchboard.Status, agentID string) (switchboard.Conversation, error) {
	if !status.Valid() {
		return switchboard.Conversation{}, switchboard.Errorf(switchboard.EINVALID, "unknown status %q", status)
	}
	err := db.inTx(ctx, func(tx *Tx) error {
		var from switchboard.Status
		var customerID string
		err := tx.queryRow(ctx, `SELECT status, customer_id FROM conversations WHERE id = ?`+db.dialect.lockRow(), id).Scan(&from, &customerID)
		if errors.Is(err, sql.ErrNoRows) {
			return switchboard.Errorf(switchboard.ENOTFOUND, "conversation %s not found", id)
		}
		if err != nil {
			return err
		}
		if from == status {
			return nil
		}
		if from == switchboard.StatusResolved {
			// Reopening by hand must respect one open conversation per
			// customer: lock the customer and check.
			if _, _, err := tx.lockCustomer(ctx, customerID); err != nil {
				return err
			}
			var other string
			err := tx.queryRow(ctx, `SELECT id FROM conversations WHERE customer_id = ? AND status <> 'resolved'`, customerID).Scan(&other)
			if err == nil {
				return switchboard.Errorf(switchboard.ECONFLICT, "customer already has open conversation %s", other)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if status == switchboard.StatusResolved {
			// A resolved conversation leaves the queue: what kept it from
			// agents, and what it last waited for, no longer apply if it
			// is reopened.
			if err := tx.exec(ctx, `DELETE FROM routing_exclusions WHERE conversation_id = ?`, id); err != nil {
				return err
			}
			if err := tx.exec(ctx, `UPDATE conversations SET wait_reason = '' WHERE id = ?`, id); err != nil {
				return err
			}
		}
		return tx.setStatus(ctx, id, from, status, agentID, db.clock.Now())
	})
	if err != nil {
		return switchboard.Conversation{}, wrap("set status", err)
	}
	return db.GetConversation(ctx, id)
}

// Assign gives a conversation to an agent, or unassigns it when agentID is
// empty: the manual path (supervisors assigning and transferring, agents
// taking or handing back). by is the agent who made the change ("" for the
// system), and rule and reason say why, for the event log.
//
// A conversation assigned here is marked assigned_by 'manual', and the
// router never takes it away (not even when its agent goes offline). When
// a conversation is unassigned, the agent who had it is excluded from
// routing it again until it is resolved, so one handed back waits for
// someone else rather than coming straight back. A transfer (from one
// agent straight to another) excludes nobody: the agent it was taken from
// did not refuse it, and is the one who knows the customer should it
// come back to the queue.
func (db *DB) Assign(ctx context.Context, id, agentID, by, rule, reason string) (switchboard.Conversation, error) {
	err := db.inTx(ctx, func(tx *Tx) error {
		var current sql.NullString
		err := tx.queryRow(ctx, `SELECT assignee_id FROM conversations WHERE id = ?`+db.dialect.lockRow(), id).Scan(&current)
		if errors.Is(err, sql.ErrNoRows) {
			return switchboard.Errorf(switchboard.ENOTFOUND, "conversation %s not found", id)
		}
		if err != nil {
			return err
		}
		if agentID != "" {
			var n int
			if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM agents WHERE id = ?`, agentID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return switchboard.Errorf(switchboard.ENOTFOUND, "agent %s not found", agentID)
			}
		}
		now := db.clock.Now()
		if current.String == agentID {
			if agentID != "" {
				// Confirming the router's choice by hand makes it manual.
				return tx.exec(ctx, `UPDATE conversations SET assigned_by = ? WHERE id = ?`, route.AssignedManual, id)
			}
			return nil
		}
		assignedBy := route.AssignedManual
		if agentID == "" {
			assignedBy = ""
		}
		if err := tx.exec(ctx, `UPDATE conversations SET assignee_id = ?, assigned_by = ?, wait_reason = '' WHERE id = ?`, nullString(agentID), assignedBy, id); err != nil {
			return err
		}
		if agentID == "" && current.Valid {
			if err := tx.exec(ctx, `INSERT INTO routing_exclusions (conversation_id, agent_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
				id, current.String, micros(now)); err != nil {
				return err
			}
		}
		typ, data := switchboard.EventAssigned, map[string]any{"agent_id": agentID, "from": current.String, "by": by, "rule": rule, "reason": reason}
		if agentID == "" {
			typ = switchboard.EventUnassigned
		}
		return tx.addEvent(ctx, id, typ, by, data, now)
	})
	if err != nil {
		return switchboard.Conversation{}, wrap("assign", err)
	}
	return db.GetConversation(ctx, id)
}

// wrap adds the store's context to err, leaving *switchboard.Error
// messages for the caller to show.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// Summary is what an inbox row shows beside a conversation: its last
// message that is no note, and the customer's first identity (to name a
// customer who gave no name).
type Summary struct {
	Direction    switchboard.Direction
	Channel      switchboard.Channel
	Text         string
	IdentityKind switchboard.IdentityKind
	Identity     string
}

// Summaries returns the summaries of conversations, by id, in two
// queries whatever their number.
func (db *DB) Summaries(ctx context.Context, convs []switchboard.Conversation) (map[string]Summary, error) {
	out := make(map[string]Summary, len(convs))
	if len(convs) == 0 {
		return out, nil
	}
	ids := make([]any, 0, len(convs))
	customers := make([]any, 0, len(convs))
	for _, c := range convs {
		ids = append(ids, c.ID)
		customers = append(customers, c.CustomerID)
	}
	rows, err := db.query(ctx, `SELECT m.conversation_id, m.direction, m.channel, m.text FROM messages m WHERE m.id IN (
		SELECT (SELECT m2.id FROM messages m2 WHERE m2.conversation_id = c.id AND m2.direction <> 'note' ORDER BY m2.created_at DESC, m2.id DESC LIMIT 1)
		FROM conversations c WHERE c.id IN (`+placeholders(len(ids))+`))`, ids...)
	if err != nil {
		return nil, wrap("summaries", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var s Summary
		if err := rows.Scan(&id, &s.Direction, &s.Channel, &s.Text); err != nil {
			return nil, wrap("scan summary", err)
		}
		out[id] = s
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("summaries", err)
	}
	// The identity that best names a customer: a phone or an address
	// before a platform's opaque id.
	idRows, err := db.query(ctx, `SELECT customer_id, kind, value FROM identities WHERE customer_id IN (`+placeholders(len(customers))+`)
		ORDER BY customer_id, CASE kind WHEN 'phone' THEN 0 WHEN 'email' THEN 1 ELSE 2 END, kind, value`, customers...)
	if err != nil {
		return nil, wrap("summary identities", err)
	}
	defer idRows.Close()
	first := map[string][2]string{}
	for idRows.Next() {
		var cust, kind, value string
		if err := idRows.Scan(&cust, &kind, &value); err != nil {
			return nil, wrap("scan summary identity", err)
		}
		if _, ok := first[cust]; !ok {
			first[cust] = [2]string{kind, value}
		}
	}
	if err := idRows.Err(); err != nil {
		return nil, wrap("summary identities", err)
	}
	for _, c := range convs {
		s := out[c.ID]
		if f, ok := first[c.CustomerID]; ok {
			s.IdentityKind, s.Identity = switchboard.IdentityKind(f[0]), f[1]
		}
		out[c.ID] = s
	}
	return out, nil
}

// CountCap is where the header's counts stop counting ("1000+"): what
// a count costs is then bounded, whatever the number of open
// conversations.
const CountCap = 1000

// WaitingCounts counts the open conversations whose customer wrote last:
// those assigned to agentID, and those assigned to nobody, each up to
// CountCap.
func (db *DB) WaitingCounts(ctx context.Context, agentID string) (mine, unassigned int, err error) {
	// The agent's read their (assignee, status) index; the unassigned
	// ones the queue's partial index (see waitingWhere).
	const waiting = `c.status = 'open' AND c.last_inbound_at >= c.last_message_at`
	err = db.queryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM (SELECT 1 FROM conversations c WHERE c.assignee_id = ? AND `+waiting+` LIMIT ?) m),
		(SELECT COUNT(*) FROM (SELECT 1 FROM conversations c WHERE `+waitingWhere+` AND `+waiting+` LIMIT ?) u)`, agentID, CountCap, CountCap).Scan(&mine, &unassigned)
	return mine, unassigned, wrap("waiting counts", err)
}
