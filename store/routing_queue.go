package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
	queueOrder     = ` ORDER BY c.priority DESC, c.created_at, c.id LIMIT ?`
	queueSamePrio  = ` AND c.priority = ? AND (c.created_at, c.id) > (?, ?)`
	queueLowerPrio = ` AND c.priority < ?`
	// queueHead is the ids of the queue's head, in the order served.
	queueHead = `SELECT c.id FROM conversations c WHERE ` + waitingWhere + queueOrder
)

// WaitingConversations returns up to limit conversations of the queue after
// the cursor (nil: from the start), in the order they are served: priority
// first, then the oldest.
func (db *DB) WaitingConversations(ctx context.Context, after *route.QueueCursor, limit int) ([]route.Waiting, error) {
	return db.waitingPage(ctx, "", nil, after, limit)
}

// WaitingInClass is WaitingConversations for the conversations of one
// channel class: the router takes the head of the queue for the class an
// agent has room for.
func (db *DB) WaitingInClass(ctx context.Context, c switchboard.ChannelClass, after *route.QueueCursor, limit int) ([]route.Waiting, error) {
	chs := classChannels(c)
	return db.waitingPage(ctx, ` AND c.last_channel IN (`+placeholders(len(chs))+`)`, chs, after, limit)
}

// waitingPage reads a page of the queue, filter (with its arguments)
// narrowing it.
func (db *DB) waitingPage(ctx context.Context, filter string, fargs []any, after *route.QueueCursor, limit int) ([]route.Waiting, error) {
	if limit <= 0 {
		limit = 500
	}
	args := func(a ...any) []any { return append(slices.Clip(fargs), a...) }
	if after == nil {
		return db.waiting(ctx, nil, waitingSelect+filter+queueOrder, args(limit)...)
	}
	out, err := db.waiting(ctx, nil, waitingSelect+filter+queueSamePrio+queueOrder, args(after.Priority, micros(after.CreatedAt), after.ID, limit)...)
	if err != nil || len(out) == limit {
		return out, err
	}
	return db.waiting(ctx, out, waitingSelect+filter+queueLowerPrio+queueOrder, args(after.Priority, limit-len(out))...)
}

// WaitingByIDs returns those of the conversations that wait, in queue
// order. It reads them by id (a lookup per id) and sorts them here: with
// an ORDER BY, a planner may walk the queue's index in order and filter,
// which costs the whole queue.
func (db *DB) WaitingByIDs(ctx context.Context, ids []string) ([]route.Waiting, error) {
	var out []route.Waiting
	for len(ids) > 0 {
		n := min(len(ids), 500)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		var err error
		if out, err = db.waiting(ctx, out, waitingSelect+` AND c.id IN (`+placeholders(n)+`)`, args...); err != nil {
			return nil, err
		}
		ids = ids[n:]
	}
	slices.SortFunc(out, func(a, b route.Waiting) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
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

// MaxQueuePosition is the furthest place in the queue QueuePosition
// counts to: counting costs the places ahead, and further back the number
// tells nobody more.
const MaxQueuePosition = 100

// QueuePosition returns the conversation's place in the routing queue (1
// is next; -1 further back than MaxQueuePosition), or 0 when it is not
// waiting (assigned, resolved or held). It reads the queue's head in
// index order, as the router does: the cost is the head's, whatever the
// queue's length.
func (db *DB) QueuePosition(ctx context.Context, conversationID string) (int, error) {
	var waiting int
	err := db.queryRow(ctx, `SELECT CASE WHEN `+waitingWhere+` THEN 1 ELSE 0 END FROM conversations c WHERE c.id = ?`, conversationID).Scan(&waiting)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, switchboard.Errorf(switchboard.ENOTFOUND, "conversation %s not found", conversationID)
	}
	if err != nil {
		return 0, fmt.Errorf("store: queue position: %w", err)
	}
	if waiting == 0 {
		return 0, nil
	}
	rows, err := db.query(ctx, queueHead, MaxQueuePosition)
	if err != nil {
		return 0, fmt.Errorf("store: queue position: %w", err)
	}
	defer rows.Close()
	for n := 1; rows.Next(); n++ {
		var id string
		if err := rows.Scan(&id); err != nil {
			return 0, fmt.Errorf("store: queue position: %w", err)
		}
		if id == conversationID {
			return n, nil
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("store: queue position: %w", err)
	}
	return -1, nil
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
