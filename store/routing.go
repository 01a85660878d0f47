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

// Where a conversation's topic came from (conversations.topic_source);
// "" for topics stored before it was kept.
const (
	TopicByAgent      = "agent"
	TopicByKeyword    = "keyword"
	TopicByClassifier = "classifier"
)

// Who assigned a conversation (conversations.assigned_by).
const (
	AssignedManual = "manual" // a person: the router never undoes it
	AssignedRouter = "router"
)

// Event types the routing writes beside switchboard.EventAssigned and
// EventUnassigned.
const (
	EventWaiting    = "waiting"    // the router found nobody; written when the reason changes
	EventAutoAck    = "auto_ack"   // the after-hours acknowledgement was sent
	EventContinuity = "continuity" // a message on a new channel stayed with the agent
	EventHandoff    = "handoff"    // moved to another team (after hours)
	EventHeld       = "held"       // taken out of, or put back into, automatic routing
)

// Errors AssignRouted returns when it does not assign; the dispatcher
// decides again (ErrAgentFull, ErrAgentUnavailable, ErrExcluded) or moves
// on (ErrNotWaiting).
var (
	ErrNotWaiting       = errors.New("store: conversation is no longer waiting (assigned, resolved, held or claimed by another worker)")
	ErrAgentFull        = errors.New("store: agent full")
	ErrAgentUnavailable = errors.New("store: agent is not online")
	ErrExcluded         = errors.New("store: agent is excluded from this conversation")
)

// chatChannels and emailChannels list the channels of each class, for SQL
// that counts by class.
var chatChannels, emailChannels = channelsOf(switchboard.ClassChat), channelsOf(switchboard.ClassEmail)

func channelsOf(c switchboard.ChannelClass) []any {
	var out []any
	for _, ch := range switchboard.Channels {
		if ch.Class() == c {
			out = append(out, string(ch))
		}
	}
	return out
}

func classChannels(c switchboard.ChannelClass) []any {
	if c == switchboard.ClassEmail {
		return emailChannels
	}
	return chatChannels
}

// capOf returns a stored cap, with 0 meaning the default as the router reads it.
func capOf(c switchboard.ChannelClass, chat, email int) int {
	if c == switchboard.ClassEmail {
		if email > 0 {
			return email
		}
		return DefaultCapEmail
	}
	if chat > 0 {
		return chat
	}
	return DefaultCapChat
}

// RoutingAgent is an agent as the router sees it: what it may take and
// what it has now.
type RoutingAgent struct {
	ID, Name, Status string
	Skills, Teams    []string
	CapChat          int
	CapEmail         int
	Active           map[switchboard.ChannelClass]int // open conversations assigned now
	StatusChangedAt  time.Time
	LastRoutedAt     time.Time // when the router last gave them a conversation
}

// RoutingAgents returns every agent with their active conversations per
// channel class: two queries, whatever the number of agents.
func (db *DB) RoutingAgents(ctx context.Context) ([]RoutingAgent, error) {
	counts, err := db.ActiveCounts(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := db.query(ctx, `SELECT id, name, status, skills, teams, cap_chat, cap_email, status_changed_at, last_routed_at FROM agents ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: routing agents: %w", err)
	}
	defer rows.Close()
	var out []RoutingAgent
	for rows.Next() {
		var a RoutingAgent
		var skills, teams string
		var changed, routed sql.NullInt64
		if err := rows.Scan(&a.ID, &a.Name, &a.Status, &skills, &teams, &a.CapChat, &a.CapEmail, &changed, &routed); err != nil {
			return nil, fmt.Errorf("store: scan routing agent: %w", err)
		}
		if err := json.Unmarshal([]byte(skills), &a.Skills); err != nil {
			return nil, fmt.Errorf("store: agent %s skills: %w", a.ID, err)
		}
		if err := json.Unmarshal([]byte(teams), &a.Teams); err != nil {
			return nil, fmt.Errorf("store: agent %s teams: %w", a.ID, err)
		}
		a.StatusChangedAt, a.LastRoutedAt = fromMicros(changed), fromMicros(routed)
		a.Active = map[switchboard.ChannelClass]int{switchboard.ClassChat: counts[a.ID][switchboard.ClassChat], switchboard.ClassEmail: counts[a.ID][switchboard.ClassEmail]}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: routing agents: %w", err)
	}
	return out, nil
}

// Waiting is one conversation in the routing queue.
type Waiting struct {
	ID          string
	CustomerID  string
	Team        string // its own team's id ("" for the default team): a hand-off never changes it
	RoutedTeam  string // the after-hours team it was last handed to, "" when with its own team
	Status      string
	Topic       string
	Priority    int
	LastChannel switchboard.Channel
	CreatedAt   time.Time
	WaitReason  string // the waiting reason last written to its events

	// The after-hours acknowledgement: the closed period one was last sent
	// for, the newest inbound message it answered, and the newest inbound
	// message.
	AckedPeriod    string
	AckedInboundAt time.Time
	LastInboundAt  time.Time

	// Filled by FillWaiting.
	Text            string   // the customer's inbound text, oldest first, capped
	Excluded        []string // agents it must not be routed to
	ContinuityAgent string   // assignee of the customer's most recent other conversation
}

// QueueCursor is where a walk of the queue stopped.
type QueueCursor struct {
	Priority  int
	CreatedAt int64
	ID        string
}

// Cursor returns the position just after w.
func (w Waiting) Cursor() *QueueCursor {
	return &QueueCursor{Priority: w.Priority, CreatedAt: micros(w.CreatedAt), ID: w.ID}
}

// waitingWhere selects the queue: conversations not resolved, with no
// assignee, not held. Pending and snoozed ones count: they are open. It
// repeats the WHERE of the partial index conversations_queue, term for
// term, so that both databases can use the index (see 0008_routing.sql
// for the COALESCE).
const waitingWhere = `COALESCE(c.assignee_id, '') = '' AND c.status <> 'resolved' AND c.held = 0`

const waitingSelect = `SELECT c.id, c.customer_id, COALESCE(c.team_id, ''), c.routed_team, c.status, c.topic, c.priority, c.last_channel, c.created_at,
	c.wait_reason, c.acked_period, c.acked_inbound_at, c.last_inbound_at
	FROM conversations c WHERE ` + waitingWhere

// The queue's pages. After a cursor the walk is two range scans of the
// index, the rest of the cursor's priority and then the lower priorities:
// one OR-shaped condition would be a filter over every row before the
// cursor, making a walk of the whole queue quadratic.
const (
	queueFirst       = waitingSelect + ` ORDER BY c.priority DESC, c.created_at, c.id LIMIT ?`
	queueSamePrio    = waitingSelect + ` AND c.priority = ? AND (c.created_at, c.id) > (?, ?) ORDER BY c.priority DESC, c.created_at, c.id LIMIT ?`
	queueLowerPrio   = waitingSelect + ` AND c.priority < ? ORDER BY c.priority DESC, c.created_at, c.id LIMIT ?`
	queueAheadSame   = `SELECT COUNT(*) FROM conversations c WHERE ` + waitingWhere + ` AND c.priority = ? AND (c.created_at, c.id) < (?, ?)`
	queueAheadHigher = `SELECT COUNT(*) FROM conversations c WHERE ` + waitingWhere + ` AND c.priority > ?`
)

// WaitingConversations returns up to limit conversations of the queue after
// the cursor (nil: from the start), in the order they are served: priority
// first, then the oldest.
func (db *DB) WaitingConversations(ctx context.Context, after *QueueCursor, limit int) ([]Waiting, error) {
	if limit <= 0 {
		limit = 500
	}
	if after == nil {
		return db.waiting(ctx, nil, queueFirst, limit)
	}
	out, err := db.waiting(ctx, nil, queueSamePrio, after.Priority, after.CreatedAt, after.ID, limit)
	if err != nil || len(out) == limit {
		return out, err
	}
	return db.waiting(ctx, out, queueLowerPrio, after.Priority, limit-len(out))
}

// waiting appends to out the conversations q selects.
func (db *DB) waiting(ctx context.Context, out []Waiting, q string, args ...any) ([]Waiting, error) {
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return out, fmt.Errorf("store: waiting conversations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var w Waiting
		var created, inbound, acked sql.NullInt64
		if err := rows.Scan(&w.ID, &w.CustomerID, &w.Team, &w.RoutedTeam, &w.Status, &w.Topic, &w.Priority, &w.LastChannel, &created,
			&w.WaitReason, &w.AckedPeriod, &acked, &inbound); err != nil {
			return out, fmt.Errorf("store: scan waiting conversation: %w", err)
		}
		w.CreatedAt, w.LastInboundAt, w.AckedInboundAt = fromMicros(created), fromMicros(inbound), fromMicros(acked)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("store: waiting conversations: %w", err)
	}
	return out, nil
}

// maxRoutingText caps the inbound text handed to topic detection.
const maxRoutingText = 4000

// FillWaiting completes the conversations the router will decide on: their
// inbound text (only where the topic is unknown), exclusions, and the
// continuity agent: the assignee of the customer's most recently resolved
// other conversation, if it was resolved after since. Three queries for
// the lot.
func (db *DB) FillWaiting(ctx context.Context, ws []Waiting, since time.Time) error {
	if len(ws) == 0 {
		return nil
	}
	idx := make(map[string]int, len(ws))
	ids := make([]any, 0, len(ws))
	var untopiced []any
	byCustomer := map[string][]int{}
	var customers []any
	for i := range ws {
		w := &ws[i]
		w.Text, w.Excluded, w.ContinuityAgent = "", nil, ""
		idx[w.ID] = i
		ids = append(ids, w.ID)
		if w.Topic == "" {
			untopiced = append(untopiced, w.ID)
		}
		if _, ok := byCustomer[w.CustomerID]; !ok {
			customers = append(customers, w.CustomerID)
		}
		byCustomer[w.CustomerID] = append(byCustomer[w.CustomerID], i)
	}
	if len(untopiced) > 0 {
		rows, err := db.query(ctx, `SELECT conversation_id, subject, text FROM messages WHERE conversation_id IN (`+placeholders(len(untopiced))+`) AND direction = 'in' ORDER BY created_at, id`, untopiced...)
		if err != nil {
			return fmt.Errorf("store: waiting text: %w", err)
		}
		texts := map[string]*strings.Builder{}
		for rows.Next() {
			var id, subject, text string
			if err := rows.Scan(&id, &subject, &text); err != nil {
				rows.Close()
				return fmt.Errorf("store: scan waiting text: %w", err)
			}
			b := texts[id]
			if b == nil {
				b = &strings.Builder{}
				texts[id] = b
			}
			for _, s := range []string{subject, text} {
				if s != "" && b.Len() < maxRoutingText {
					if b.Len() > 0 {
						b.WriteByte('\n')
					}
					b.WriteString(s)
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: waiting text: %w", err)
		}
		for id, b := range texts {
			s := b.String()
			if len(s) > maxRoutingText {
				s = strings.ToValidUTF8(s[:maxRoutingText], "")
			}
			ws[idx[id]].Text = s
		}
	}
	rows, err := db.query(ctx, `SELECT conversation_id, agent_id FROM routing_exclusions WHERE conversation_id IN (`+placeholders(len(ids))+`) ORDER BY created_at`, ids...)
	if err != nil {
		return fmt.Errorf("store: exclusions: %w", err)
	}
	for rows.Next() {
		var id, agent string
		if err := rows.Scan(&id, &agent); err != nil {
			rows.Close()
			return fmt.Errorf("store: scan exclusion: %w", err)
		}
		w := &ws[idx[id]]
		w.Excluded = append(w.Excluded, agent)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: exclusions: %w", err)
	}
	rows, err = db.query(ctx, `SELECT customer_id, assignee_id, resolved_at, id FROM conversations WHERE customer_id IN (`+placeholders(len(customers))+`)
		AND status = 'resolved' AND assignee_id IS NOT NULL AND resolved_at >= ? ORDER BY resolved_at, id`, append(customers, micros(since))...)
	if err != nil {
		return fmt.Errorf("store: continuity: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var customer, agent, id string
		var resolved sql.NullInt64
		if err := rows.Scan(&customer, &agent, &resolved, &id); err != nil {
			return fmt.Errorf("store: scan continuity: %w", err)
		}
		for _, i := range byCustomer[customer] {
			if ws[i].ID != id {
				ws[i].ContinuityAgent = agent // ordered by time: the last one wins
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: continuity: %w", err)
	}
	return nil
}

// RoutedAssignment is the router's decision to give a conversation to an
// agent, with the explanation that goes into the event log.
type RoutedAssignment struct {
	ConversationID string
	AgentID        string
	Rule, Reason   string
	Trace          any    // the router's steps, stored as JSON
	Topic          string // saved on the conversation when it had none
	TopicSource    string
}

// AssignRouted assigns a waiting conversation for the router, safely
// beside other workers in this and other processes. In one transaction it
// claims the conversation (skipping it if another worker holds it), checks
// it still waits, locks the agent, counts the agent's open conversations of
// the conversation's channel class and assigns only under the cap. Every
// assignment to one agent passes through that agent's row lock, so caps
// hold whatever the number of workers; on SQLite the single writer
// serialises it all.
//
// It returns ErrNotWaiting, ErrAgentUnavailable, ErrExcluded or ErrAgentFull
// (unwrapped) when it does not assign.
func (db *DB) AssignRouted(ctx context.Context, a RoutedAssignment) error {
	err := db.inTx(ctx, func(tx *Tx) error {
		var assignee sql.NullString
		var status string
		var held int
		var ch switchboard.Channel
		err := tx.queryRow(ctx, `SELECT c.assignee_id, c.status, c.held, c.last_channel FROM conversations c WHERE c.id = ?`+db.dialect.skipLocked("c"),
			a.ConversationID).Scan(&assignee, &status, &held, &ch)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotWaiting // gone, or locked by someone else right now
		}
		if err != nil {
			return fmt.Errorf("claim conversation: %w", err)
		}
		if assignee.Valid || status == switchboard.StatusResolved || held != 0 {
			return ErrNotWaiting
		}
		var excluded int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM routing_exclusions WHERE conversation_id = ? AND agent_id = ?`, a.ConversationID, a.AgentID).Scan(&excluded); err != nil {
			return fmt.Errorf("check exclusion: %w", err)
		}
		if excluded > 0 {
			return ErrExcluded
		}
		var agentStatus string
		var capChat, capEmail int
		err = tx.queryRow(ctx, `SELECT status, cap_chat, cap_email FROM agents WHERE id = ?`+db.dialect.lockRow(), a.AgentID).Scan(&agentStatus, &capChat, &capEmail)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrAgentUnavailable
		}
		if err != nil {
			return fmt.Errorf("lock agent: %w", err)
		}
		if agentStatus != switchboard.AgentOnline {
			return ErrAgentUnavailable
		}
		class := ch.Class()
		var active int
		if err := tx.queryRow(ctx, agentActiveQuery(class), append([]any{a.AgentID}, classChannels(class)...)...).Scan(&active); err != nil {
			return fmt.Errorf("count active: %w", err)
		}
		if active >= capOf(class, capChat, capEmail) {
			return ErrAgentFull
		}
		now := db.clock.Now()
		res, err := tx.execResult(ctx, `UPDATE conversations SET assignee_id = ?, assigned_by = ?, wait_reason = '',
			topic_source = CASE WHEN topic = '' AND ? <> '' THEN ? ELSE topic_source END,
			topic = CASE WHEN topic = '' THEN ? ELSE topic END WHERE id = ? AND assignee_id IS NULL`,
			a.AgentID, AssignedRouter, a.Topic, a.TopicSource, a.Topic, a.ConversationID)
		if err != nil {
			return fmt.Errorf("assign: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotWaiting
		}
		if err := tx.exec(ctx, `UPDATE agents SET last_routed_at = ? WHERE id = ?`, micros(now), a.AgentID); err != nil {
			return fmt.Errorf("touch agent: %w", err)
		}
		data := map[string]any{"agent_id": a.AgentID, "from": "", "by": AssignedRouter, "rule": a.Rule, "reason": a.Reason,
			"class": class, "active": active + 1, "trace": a.Trace}
		if a.Topic != "" {
			data["topic"], data["topic_source"] = a.Topic, a.TopicSource
		}
		return tx.addEvent(ctx, a.ConversationID, switchboard.EventAssigned, "", data, now)
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotWaiting), errors.Is(err, ErrAgentFull), errors.Is(err, ErrAgentUnavailable), errors.Is(err, ErrExcluded):
		return err
	}
	return wrap("assign routed", err)
}

// WaitDecision is the router's decision to leave a conversation waiting.
type WaitDecision struct {
	ConversationID string
	Rule, Reason   string
	Trace          any
	AfterHours     bool
	Topic          string // saved on the conversation when it had none
	TopicSource    string
}

// WaitKey is what RecordWaiting compares to the last reason written.
func (d WaitDecision) WaitKey() string { return d.Rule + ": " + d.Reason }

// RecordWaiting writes a waiting event when the reason differs from the
// last one written for the conversation (so a retry every second writes
// nothing new), and saves a detected topic when the conversation had none.
// It reports whether an event was written.
func (db *DB) RecordWaiting(ctx context.Context, d WaitDecision) (bool, error) {
	written := false
	err := db.inTx(ctx, func(tx *Tx) error {
		written = false
		if d.Topic != "" {
			if err := tx.exec(ctx, `UPDATE conversations SET topic = ?, topic_source = ? WHERE id = ? AND topic = ''`, d.Topic, d.TopicSource, d.ConversationID); err != nil {
				return fmt.Errorf("save topic: %w", err)
			}
		}
		key := d.WaitKey()
		res, err := tx.execResult(ctx, `UPDATE conversations SET wait_reason = ? WHERE id = ? AND wait_reason <> ? AND assignee_id IS NULL AND status <> 'resolved'`,
			key, d.ConversationID, key)
		if err != nil {
			return fmt.Errorf("note wait reason: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		written = true
		data := map[string]any{"rule": d.Rule, "reason": d.Reason, "after_hours": d.AfterHours, "trace": d.Trace}
		if d.Topic != "" {
			data["topic"], data["topic_source"] = d.Topic, d.TopicSource
		}
		return tx.addEvent(ctx, d.ConversationID, EventWaiting, "", data, db.clock.Now())
	})
	return written, wrap("record waiting", err)
}

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
		return tx.addEvent(ctx, conversationID, EventHandoff, by, map[string]any{"from": from.String, "to": team, "home": team, "rule": rule, "reason": reason}, db.clock.Now())
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
		return tx.addEvent(ctx, conversationID, EventHandoff, "", data, db.clock.Now())
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
		return tx.addEvent(ctx, conversationID, EventHeld, by, map[string]any{"held": held}, db.clock.Now())
	})
	return wrap("set held", err)
}

// AckClaim is the right to send one after-hours acknowledgement, from
// ClaimAck.
type AckClaim struct {
	ConversationID string
	Period         string
	// Send is true when the acknowledgement must go out. False: nothing
	// to acknowledge, or the newest message came in a closed period
	// already acknowledged and is now counted as answered.
	Send bool

	inbound, prevInbound int64 // acked_inbound_at after and before the claim
	prevPeriod           string
}

// ClaimAck reserves the after-hours acknowledgement of a conversation for
// the closed period named period (e.g. the time it opens). One is due
// only for an open (not pending or snoozed), waiting conversation with an
// inbound message newer than the one the last acknowledgement answered,
// and at most one per closed period: a message in a period already
// acknowledged is marked answered without another. Exactly one caller
// gets Send, across workers and restarts; it sends and then calls
// RecordAck, or ReleaseAck when sending failed.
func (db *DB) ClaimAck(ctx context.Context, conversationID, period string) (AckClaim, error) {
	c := AckClaim{ConversationID: conversationID, Period: period}
	err := db.inTx(ctx, func(tx *Tx) error {
		c.Send = false
		var status, acked string
		var inbound sql.NullInt64
		var ackedAt int64
		err := tx.queryRow(ctx, `SELECT c.status, c.acked_period, c.acked_inbound_at, c.last_inbound_at FROM conversations c WHERE c.id = ? AND `+waitingWhere+db.dialect.lockRow(),
			conversationID).Scan(&status, &acked, &ackedAt, &inbound)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // assigned, resolved, held or gone
		}
		if err != nil {
			return err
		}
		if status != switchboard.StatusOpen || !inbound.Valid || inbound.Int64 <= ackedAt {
			return nil
		}
		c.prevPeriod, c.prevInbound, c.inbound = acked, ackedAt, inbound.Int64
		if err := tx.exec(ctx, `UPDATE conversations SET acked_period = ?, acked_inbound_at = ? WHERE id = ?`, period, inbound.Int64, conversationID); err != nil {
			return err
		}
		c.Send = acked != period
		return nil
	})
	if err != nil {
		return AckClaim{}, wrap("claim ack", err)
	}
	return c, nil
}

// RecordAck writes the auto_ack event of a claim: sent, or skipped (not
// "") with the reason, when the channel could not carry it; a skipped one
// keeps its claim, so it is not tried again for the same message.
func (db *DB) RecordAck(ctx context.Context, c AckClaim, ch switchboard.Channel, text, skipped string) error {
	data := map[string]any{"period": c.Period, "channel": ch, "text": text, "sent": skipped == ""}
	if skipped != "" {
		data["reason"] = skipped
	}
	return wrap("record ack", db.inTx(ctx, func(tx *Tx) error {
		return tx.addEvent(ctx, c.ConversationID, EventAutoAck, "", data, db.clock.Now())
	}))
}

// ReleaseAck gives back a claim whose acknowledgement could not be sent,
// so a later pass tries again.
func (db *DB) ReleaseAck(ctx context.Context, c AckClaim) error {
	return wrap("release ack", db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `UPDATE conversations SET acked_period = ?, acked_inbound_at = ? WHERE id = ? AND acked_period = ? AND acked_inbound_at = ?`,
			c.prevPeriod, c.prevInbound, c.ConversationID, c.Period, c.inbound)
	}))
}

// Returned is one conversation given back to the queue.
type Returned struct {
	ConversationID string
	AgentID        string
}

// ReturnAbsent puts back in the queue the open chat-like conversations the
// router gave to agents who have not been online for at least grace (by
// status_changed_at, so it holds across restarts and instances). E-mail-like
// conversations stay: they can wait for the agent. Manual assignments stay
// too: a person chose that agent; and held ones, which are out of
// automatic routing. Each returns with an unassigned event saying why.
func (db *DB) ReturnAbsent(ctx context.Context, grace time.Duration) ([]Returned, error) {
	now := db.clock.Now()
	cutoff := micros(now.Add(-grace))
	rows, err := db.query(ctx, `SELECT a.id FROM agents a WHERE a.status <> 'online' AND a.status_changed_at <= ?
		AND EXISTS (SELECT 1 FROM conversations c WHERE c.assignee_id = a.id AND c.assigned_by = 'router' AND c.status <> 'resolved' AND c.held = 0
		AND c.last_channel IN (`+placeholders(len(chatChannels))+`))`, append([]any{cutoff}, chatChannels...)...)
	if err != nil {
		return nil, fmt.Errorf("store: absent agents: %w", err)
	}
	var agents []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: scan absent agent: %w", err)
		}
		agents = append(agents, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: absent agents: %w", err)
	}
	var out []Returned
	for _, agentID := range agents {
		var got []Returned
		err := db.inTx(ctx, func(tx *Tx) error {
			got = got[:0]
			var name, status string
			var changed sql.NullInt64
			// Re-check under the agent's lock: they may be back.
			if err := tx.queryRow(ctx, `SELECT name, status, status_changed_at FROM agents WHERE id = ?`+db.dialect.lockRow(), agentID).Scan(&name, &status, &changed); err != nil {
				return err
			}
			if status == switchboard.AgentOnline || changed.Int64 > cutoff {
				return nil
			}
			rows, err := tx.query(ctx, `UPDATE conversations SET assignee_id = NULL, assigned_by = '', wait_reason = ''
				WHERE assignee_id = ? AND assigned_by = 'router' AND status <> 'resolved' AND held = 0 AND last_channel IN (`+placeholders(len(chatChannels))+`) RETURNING id`,
				append([]any{agentID}, chatChannels...)...)
			if err != nil {
				return err
			}
			var ids []string
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			away := now.Sub(fromMicros(changed)).Round(time.Second)
			reason := fmt.Sprintf("returned to the queue: %s has been %s for %s", name, status, away)
			for _, id := range ids {
				if err := tx.returnedEvent(ctx, id, agentID, reason, now); err != nil {
					return err
				}
				got = append(got, Returned{ConversationID: id, AgentID: agentID})
			}
			return nil
		})
		if err != nil {
			return out, wrap("return conversations of absent agent", err)
		}
		out = append(out, got...)
	}
	return out, nil
}

// NoteContinuity writes a continuity event when the conversation's latest
// channel switch (to ch) has none yet and the conversation is assigned to
// an online agent: the agent keeps it whatever the channel. It reports
// whether it wrote one and the agent's name.
func (db *DB) NoteContinuity(ctx context.Context, conversationID string, ch switchboard.Channel) (bool, string, error) {
	var wrote bool
	var name string
	err := db.inTx(ctx, func(tx *Tx) error {
		wrote, name = false, ""
		// The conversation's lock keeps two instances from noting one switch twice.
		var assignee sql.NullString
		err := tx.queryRow(ctx, `SELECT assignee_id FROM conversations WHERE id = ?`+db.dialect.lockRow(), conversationID).Scan(&assignee)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !assignee.Valid) {
			return nil
		}
		if err != nil {
			return err
		}
		var agentName, agentStatus string
		if err := tx.queryRow(ctx, `SELECT name, status FROM agents WHERE id = ?`, assignee.String).Scan(&agentName, &agentStatus); err != nil {
			return err
		}
		if agentStatus != switchboard.AgentOnline {
			return nil
		}
		var id, typ, data string
		err = tx.queryRow(ctx, `SELECT id, type, data FROM events WHERE conversation_id = ? AND type IN (?, ?) ORDER BY created_at DESC, id DESC LIMIT 1`,
			conversationID, switchboard.EventChannelSwitch, EventContinuity).Scan(&id, &typ, &data)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && typ != switchboard.EventChannelSwitch) {
			return nil
		}
		if err != nil {
			return err
		}
		var sw struct {
			To switchboard.Channel `json:"to"`
		}
		if json.Unmarshal([]byte(data), &sw) != nil || sw.To != ch {
			return nil
		}
		name = agentName
		reason := "kept with " + name + ", who has this customer's open conversation"
		wrote = true
		return tx.addEvent(ctx, conversationID, EventContinuity, "", map[string]any{"rule": "continuity", "reason": reason,
			"agent_id": assignee.String, "channel": ch, "switch_event": id}, db.clock.Now())
	})
	return wrote, name, wrap("note continuity", err)
}

// QueuePosition returns the conversation's place in the routing queue (1
// is next), or 0 when it is not waiting (assigned, resolved or held).
func (db *DB) QueuePosition(ctx context.Context, conversationID string) (int, error) {
	var priority int
	var created sql.NullInt64
	var waiting int
	err := db.queryRow(ctx, `SELECT c.priority, c.created_at, CASE WHEN `+waitingWhere+` THEN 1 ELSE 0 END FROM conversations c WHERE c.id = ?`, conversationID).
		Scan(&priority, &created, &waiting)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, switchboard.Errorf(switchboard.ENOTFOUND, "conversation %s not found", conversationID)
	}
	if err != nil {
		return 0, fmt.Errorf("store: queue position: %w", err)
	}
	if waiting == 0 {
		return 0, nil
	}
	// Two counts, each a range of the queue's index (see queueSamePrio).
	var higher, same int
	if err := db.queryRow(ctx, queueAheadHigher, priority).Scan(&higher); err != nil {
		return 0, fmt.Errorf("store: queue position: %w", err)
	}
	if err := db.queryRow(ctx, queueAheadSame, priority, created.Int64, conversationID).Scan(&same); err != nil {
		return 0, fmt.Errorf("store: queue position: %w", err)
	}
	return higher + same + 1, nil
}

// RoutingState is what the routing keeps on a conversation beside the
// domain fields.
type RoutingState struct {
	AssignedBy     string // AssignedManual, AssignedRouter or ""
	Held           bool
	WaitReason     string
	RoutedTeam     string // the after-hours team it is handed to, "" for its own
	AckedPeriod    string
	AckedInboundAt time.Time
	TopicSource    string
	Excluded       []string
}

// GetRoutingState returns a conversation's routing state.
func (db *DB) GetRoutingState(ctx context.Context, conversationID string) (RoutingState, error) {
	var s RoutingState
	var held int
	var acked sql.NullInt64
	err := db.queryRow(ctx, `SELECT assigned_by, held, wait_reason, routed_team, acked_period, acked_inbound_at, topic_source FROM conversations WHERE id = ?`, conversationID).
		Scan(&s.AssignedBy, &held, &s.WaitReason, &s.RoutedTeam, &s.AckedPeriod, &acked, &s.TopicSource)
	s.AckedInboundAt = fromMicros(acked)
	if errors.Is(err, sql.ErrNoRows) {
		return s, switchboard.Errorf(switchboard.ENOTFOUND, "conversation %s not found", conversationID)
	}
	if err != nil {
		return s, fmt.Errorf("store: routing state: %w", err)
	}
	s.Held = held != 0
	rows, err := db.query(ctx, `SELECT agent_id FROM routing_exclusions WHERE conversation_id = ? ORDER BY created_at, agent_id`, conversationID)
	if err != nil {
		return s, fmt.Errorf("store: routing state: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return s, fmt.Errorf("store: routing state: %w", err)
		}
		s.Excluded = append(s.Excluded, a)
	}
	return s, rows.Err()
}

// RoutingConfig is the stored routing configuration: one JSON document
// (route.TeamConfig) per team id ("" is the default team) and the topic
// keyword rules (JSON []route.KeywordRule). The store keeps them as opaque
// JSON; the dispatcher decodes and validates them.
type RoutingConfig struct {
	Teams    map[string]json.RawMessage
	Keywords json.RawMessage
}

const teamKeyPrefix = "team:"

// GetRoutingConfig returns the routing configuration.
func (db *DB) GetRoutingConfig(ctx context.Context) (RoutingConfig, error) {
	c := RoutingConfig{Teams: map[string]json.RawMessage{}}
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
func (db *DB) PutRoutingConfig(ctx context.Context, c RoutingConfig) error {
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

// TopicSample is one resolved conversation's inbound text and its topic.
type TopicSample struct{ Text, Topic string }

// ResolvedTopics returns up to limit of the most recently resolved
// conversations that have a topic, with their inbound text, for training
// the topic classifier. Topics the classifier guessed are left out: trained
// on, its mistakes would come back as facts.
func (db *DB) ResolvedTopics(ctx context.Context, limit int) ([]TopicSample, error) {
	if limit <= 0 {
		limit = 10000
	}
	rows, err := db.query(ctx, `SELECT id, topic FROM conversations WHERE status = 'resolved' AND topic <> '' AND topic_source <> ? ORDER BY resolved_at DESC, id DESC LIMIT ?`, TopicByClassifier, limit)
	if err != nil {
		return nil, fmt.Errorf("store: resolved topics: %w", err)
	}
	var ws []Waiting
	for rows.Next() {
		var w Waiting
		if err := rows.Scan(&w.ID, &w.Topic); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: scan resolved topic: %w", err)
		}
		ws = append(ws, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: resolved topics: %w", err)
	}
	out := make([]TopicSample, 0, len(ws))
	const chunk = 500
	for start := 0; start < len(ws); start += chunk {
		part := ws[start:min(start+chunk, len(ws))]
		topics := make([]string, len(part))
		for i := range part {
			topics[i], part[i].Topic = part[i].Topic, "" // FillWaiting reads text where the topic is unknown
		}
		if err := db.FillWaiting(ctx, part, time.Time{}); err != nil {
			return nil, err
		}
		for i, w := range part {
			if strings.TrimSpace(w.Text) != "" {
				out = append(out, TopicSample{Text: w.Text, Topic: topics[i]})
			}
		}
	}
	return out, nil
}

// ClassifierModel is a stored topic classifier.
type ClassifierModel struct {
	ID        string
	Model     []byte
	Accuracy  float64
	N         int // training examples
	CreatedAt time.Time
}

// SaveClassifier stores a trained classifier; the newest is the one used.
// Older ones beyond the last few are removed.
func (db *DB) SaveClassifier(ctx context.Context, model []byte, accuracy float64, n int) (string, error) {
	now := db.clock.Now()
	id := newID(now)
	err := db.inTx(ctx, func(tx *Tx) error {
		if err := tx.exec(ctx, `INSERT INTO classifiers (id, model, accuracy, n, created_at) VALUES (?, ?, ?, ?, ?)`, id, model, accuracy, n, micros(now)); err != nil {
			return err
		}
		return tx.exec(ctx, `DELETE FROM classifiers WHERE id NOT IN (SELECT id FROM classifiers ORDER BY created_at DESC, id DESC LIMIT 5)`)
	})
	return id, wrap("save classifier", err)
}

// LatestClassifierID returns the id of the newest classifier, "" if none:
// a cheap check for whether to load it again.
func (db *DB) LatestClassifierID(ctx context.Context) (string, error) {
	var id string
	err := db.queryRow(ctx, `SELECT id FROM classifiers ORDER BY created_at DESC, id DESC LIMIT 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, wrap("latest classifier", err)
}

// LoadClassifier returns the newest classifier, or ENOTFOUND.
func (db *DB) LoadClassifier(ctx context.Context) (ClassifierModel, error) {
	var m ClassifierModel
	var created sql.NullInt64
	err := db.queryRow(ctx, `SELECT id, model, accuracy, n, created_at FROM classifiers ORDER BY created_at DESC, id DESC LIMIT 1`).
		Scan(&m.ID, &m.Model, &m.Accuracy, &m.N, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return m, switchboard.Errorf(switchboard.ENOTFOUND, "no classifier has been trained")
	}
	m.CreatedAt = fromMicros(created)
	return m, wrap("load classifier", err)
}

// SetPriority sets a conversation's priority: higher is served first.
func (db *DB) SetPriority(ctx context.Context, conversationID string, priority int) error {
	return wrap("set priority", db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.execResult(ctx, `UPDATE conversations SET priority = ? WHERE id = ?`, priority, conversationID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return switchboard.Errorf(switchboard.ENOTFOUND, "conversation %s not found", conversationID)
		}
		return nil
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

// RoutingPlans returns how the database runs the routing's hot queries, by
// name: "active_counts" (every agent's load), "agent_active" (one agent's,
// inside each assignment), "queue_first", "queue_same_priority" and
// "queue_lower_priority" (pages of the queue). On SQLite it is EXPLAIN
// QUERY PLAN; on PostgreSQL EXPLAIN with sequential scans discouraged, so
// that the answer says whether an index can serve the query whatever the
// size of the table. Tests and benchmarks use it to check that the indexes
// are used.
func (db *DB) RoutingPlans(ctx context.Context) (map[string]string, error) {
	queries := []struct {
		name, q string
		args    []any
	}{
		{"active_counts", activeCountsQuery, nil},
		{"agent_active", agentActiveQuery(switchboard.ClassChat), append([]any{"agent"}, chatChannels...)},
		{"queue_first", queueFirst, []any{500}},
		{"queue_same_priority", queueSamePrio, []any{0, int64(0), "id", 500}},
		{"queue_lower_priority", queueLowerPrio, []any{0, 500}},
	}
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("store: routing plans: %w", err)
	}
	defer tx.Rollback()
	explain := "EXPLAIN QUERY PLAN "
	if db.dialect.plansBySize() {
		explain = "EXPLAIN "
		if _, err := tx.ExecContext(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return nil, fmt.Errorf("store: routing plans: %w", err)
		}
	}
	out := make(map[string]string, len(queries))
	for _, q := range queries {
		rows, err := tx.QueryContext(ctx, explain+db.dialect.rebind(q.q), q.args...)
		if err != nil {
			return nil, fmt.Errorf("store: routing plan %s: %w", q.name, err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			// SQLite: id, parent, notused, detail; PostgreSQL: one line.
			vals := make([]any, len(cols))
			var line string
			for i := range vals {
				vals[i] = new(any)
			}
			vals[len(vals)-1] = &line
			if err := rows.Scan(vals...); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: routing plan %s: %w", q.name, err)
			}
			lines = append(lines, line)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: routing plan %s: %w", q.name, err)
		}
		out[q.name] = strings.Join(lines, "\n")
	}
	return out, nil
}

// WaitingCount is the number of conversations waiting for an agent.
func (db *DB) WaitingCount(ctx context.Context) (int, error) {
	var n int
	err := db.queryRow(ctx, `SELECT COUNT(*) FROM conversations c WHERE `+waitingWhere).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: waiting count: %w", err)
	}
	return n, nil
}

// returnedEvent records that the router took a conversation from an agent
// who is not available and put it back in the queue.
func (tx *Tx) returnedEvent(ctx context.Context, conversationID, fromAgent, reason string, at time.Time) error {
	return tx.addEvent(ctx, conversationID, switchboard.EventUnassigned, "", map[string]any{
		"agent_id": "", "from": fromAgent, "by": AssignedRouter, "rule": "availability", "reason": reason}, at)
}
