package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
)

// AssignRouted assigns a waiting conversation for the router, safely
// beside other workers in this and other processes. In one transaction it
// claims the conversation (skipping it if another worker holds it), checks
// it still waits, locks the agent, counts the agent's open conversations of
// the conversation's channel class and assigns only under the cap. Every
// assignment to one agent passes through that agent's row lock, so caps
// hold whatever the number of workers; on SQLite the single writer
// serialises it all.
//
// It returns route.ErrNotWaiting, route.ErrAgentUnavailable, route.ErrExcluded or route.ErrAgentFull
// (unwrapped) when it does not assign.
func (db *DB) AssignRouted(ctx context.Context, a route.Assignment) error {
	err := db.inTx(ctx, func(tx *Tx) error {
		var assignee sql.NullString
		var status switchboard.Status
		var held int
		var ch switchboard.Channel
		err := tx.queryRow(ctx, `SELECT c.assignee_id, c.status, c.held, c.last_channel FROM conversations c WHERE c.id = ?`+db.dialect.skipLocked("c"),
			a.ConversationID).Scan(&assignee, &status, &held, &ch)
		if errors.Is(err, sql.ErrNoRows) {
			return route.ErrNotWaiting // gone, or locked by someone else right now
		}
		if err != nil {
			return fmt.Errorf("claim conversation: %w", err)
		}
		if assignee.Valid || status == switchboard.StatusResolved || held != 0 {
			return route.ErrNotWaiting
		}
		var excluded int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM routing_exclusions WHERE conversation_id = ? AND agent_id = ?`, a.ConversationID, a.AgentID).Scan(&excluded); err != nil {
			return fmt.Errorf("check exclusion: %w", err)
		}
		if excluded > 0 {
			return route.ErrExcluded
		}
		var agentStatus switchboard.AgentStatus
		var capChat, capEmail int
		err = tx.queryRow(ctx, `SELECT status, cap_chat, cap_email FROM agents WHERE id = ?`+db.dialect.lockRow(), a.AgentID).Scan(&agentStatus, &capChat, &capEmail)
		if errors.Is(err, sql.ErrNoRows) {
			return route.ErrAgentUnavailable
		}
		if err != nil {
			return fmt.Errorf("lock agent: %w", err)
		}
		if agentStatus != switchboard.AgentOnline {
			return route.ErrAgentUnavailable
		}
		class := ch.Class()
		var active int
		if err := tx.queryRow(ctx, agentActiveQuery(class), append([]any{a.AgentID}, classChannels(class)...)...).Scan(&active); err != nil {
			return fmt.Errorf("count active: %w", err)
		}
		if active >= capOf(class, capChat, capEmail) {
			return route.ErrAgentFull
		}
		now := db.clock.Now()
		res, err := tx.execResult(ctx, `UPDATE conversations SET assignee_id = ?, assigned_by = ?, wait_reason = '',
			topic_source = CASE WHEN topic = '' AND ? <> '' THEN ? ELSE topic_source END,
			topic = CASE WHEN topic = '' THEN ? ELSE topic END WHERE id = ? AND assignee_id IS NULL`,
			a.AgentID, route.AssignedRouter, a.Topic, a.TopicSource, a.Topic, a.ConversationID)
		if err != nil {
			return fmt.Errorf("assign: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return route.ErrNotWaiting
		}
		if err := tx.exec(ctx, `UPDATE agents SET last_routed_at = ? WHERE id = ?`, micros(now), a.AgentID); err != nil {
			return fmt.Errorf("touch agent: %w", err)
		}
		data := map[string]any{"agent_id": a.AgentID, "from": "", "by": route.AssignedRouter, "rule": a.Rule, "reason": a.Reason,
			"class": class, "active": active + 1, "trace": a.Trace}
		if a.Topic != "" {
			data["topic"], data["topic_source"] = a.Topic, a.TopicSource
		}
		return tx.addEvent(ctx, a.ConversationID, switchboard.EventAssigned, "", data, now)
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, route.ErrNotWaiting), errors.Is(err, route.ErrAgentFull), errors.Is(err, route.ErrAgentUnavailable), errors.Is(err, route.ErrExcluded):
		return err
	}
	return wrap("assign routed", err)
}

// RecordWaiting writes a waiting event when the reason differs from the
// last one written for the conversation (so a retry every second writes
// nothing new), and saves a detected topic when the conversation had none.
// It reports whether an event was written.
func (db *DB) RecordWaiting(ctx context.Context, d route.WaitDecision) (bool, error) {
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
		return tx.addEvent(ctx, d.ConversationID, switchboard.EventWaiting, "", data, db.clock.Now())
	})
	return written, wrap("record waiting", err)
}

// ReturnAbsent puts back in the queue the open chat-like conversations the
// router gave to agents who have not been online for at least grace (by
// status_changed_at, so it holds across restarts and instances). E-mail-like
// conversations stay: they can wait for the agent. Manual assignments stay
// too: a person chose that agent; and held ones, which are out of
// automatic routing. Each returns with an unassigned event saying why.
func (db *DB) ReturnAbsent(ctx context.Context, grace time.Duration) ([]route.Returned, error) {
	now := db.clock.Now()
	cutoff := micros(now.Add(-grace))
	rows, err := db.query(ctx, `SELECT a.id FROM agents a WHERE a.status <> 'online' AND a.status_changed_at <= ?
		AND EXISTS (SELECT 1 FROM conversations c WHERE c.assignee_id = a.id AND c.assigned_by = 'router' AND c.status <> 'resolved' AND c.held = 0
		AND c.last_channel IN (`+placeholders(len(chatChannels))+`))`, append([]any{cutoff}, chatChannels...)...)
	if err != nil {
		return nil, fmt.Errorf("store: absent agents: %w", err)
	}
	agents, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("store: absent agents: %w", err)
	}
	var out []route.Returned
	for _, agentID := range agents {
		var got []route.Returned
		err := db.inTx(ctx, func(tx *Tx) error {
			got = got[:0]
			var name string
			var status switchboard.AgentStatus
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
			ids, err := scanStrings(rows)
			if err != nil {
				return err
			}
			away := now.Sub(fromMicros(changed)).Round(time.Second)
			reason := fmt.Sprintf("returned to the queue: %s has been %s for %s", name, status, away)
			for _, id := range ids {
				if err := tx.returnedEvent(ctx, id, agentID, reason, now); err != nil {
					return err
				}
				got = append(got, route.Returned{ConversationID: id, AgentID: agentID})
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
		var agentName string
		var agentStatus switchboard.AgentStatus
		if err := tx.queryRow(ctx, `SELECT name, status FROM agents WHERE id = ?`, assignee.String).Scan(&agentName, &agentStatus); err != nil {
			return err
		}
		if agentStatus != switchboard.AgentOnline {
			return nil
		}
		var id, data string
		var typ switchboard.EventType
		err = tx.queryRow(ctx, `SELECT id, type, data FROM events WHERE conversation_id = ? AND type IN (?, ?) ORDER BY created_at DESC, id DESC LIMIT 1`,
			conversationID, switchboard.EventChannelSwitch, switchboard.EventContinuity).Scan(&id, &typ, &data)
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
		return tx.addEvent(ctx, conversationID, switchboard.EventContinuity, "", map[string]any{"rule": "continuity", "reason": reason,
			"agent_id": assignee.String, "channel": ch, "switch_event": id}, db.clock.Now())
	})
	return wrote, name, wrap("note continuity", err)
}

// who is not available and put it back in the queue.
func (tx *Tx) returnedEvent(ctx context.Context, conversationID, fromAgent, reason string, at time.Time) error {
	return tx.addEvent(ctx, conversationID, switchboard.EventUnassigned, "", map[string]any{
		"agent_id": "", "from": fromAgent, "by": route.AssignedRouter, "rule": "availability", "reason": reason}, at)
}
