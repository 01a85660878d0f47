package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
)

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
func (db *DB) WaitingConversations(ctx context.Context, after *route.QueueCursor, limit int) ([]route.Waiting, error) {
	if limit <= 0 {
		limit = 500
	}
	if after == nil {
		return db.waiting(ctx, nil, queueFirst, limit)
	}
	out, err := db.waiting(ctx, nil, queueSamePrio, after.Priority, micros(after.CreatedAt), after.ID, limit)
	if err != nil || len(out) == limit {
		return out, err
	}
	return db.waiting(ctx, out, queueLowerPrio, after.Priority, limit-len(out))
}

// waiting appends to out the conversations q selects.
func (db *DB) waiting(ctx context.Context, out []route.Waiting, q string, args ...any) ([]route.Waiting, error) {
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return out, fmt.Errorf("store: waiting conversations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var w route.Waiting
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
func (db *DB) FillWaiting(ctx context.Context, ws []route.Waiting, since time.Time) error {
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
