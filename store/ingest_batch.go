package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/thread"
)

// The fast path threads a whole batch with a fixed number of statements:
// it reads every identity and conversation the batch touches in a few
// queries, plans the batch in memory, then writes each table with
// multi-row statements. Statement round trips, not rows, are what bound
// ingestion on both SQLite (per-statement overhead) and PostgreSQL
// (network latency). Anything the plan cannot be sure of (a row another
// transaction wrote meanwhile, a merged customer) returns errSlowPath, and
// Ingest runs the batch again message by message.

type customerInfo struct {
	id   string
	name string
}

type convPlan struct {
	id          string
	customerID  string
	isNew       bool
	status      switchboard.Status // as planned: open once a message arrives
	wasStatus   switchboard.Status
	wasChannel  switchboard.Channel
	resolvedAt  time.Time
	lastChannel switchboard.Channel
	lastMessage time.Time
	lastInbound time.Time
	channels    map[switchboard.Channel]bool
	touched     bool
}

type batchPlan struct {
	customers   [][]any // id, name, created_at
	identities  [][]any // kind, value, customer_id, verified, created_at
	claims      [][]any // customer_id, kind, value, created_at
	names       map[string]string
	convs       map[string]*convPlan // by customer id
	convOrder   []*convPlan
	messages    [][]any
	attachments [][]any
	originals   [][]any
	events      [][]any
	cycles      [][]any // id, conversation_id, channel, started_at
	reopened    []any   // conversation ids
	// mixed are the existing conversations whose customer messages'
	// channels, in order, may have changed (rollups of their cycles).
	mixed []string
}

func (tx *Tx) ingestFast(ctx context.Context, items []switchboard.Inbound, work []int, now time.Time, opts IngestOptions, results []switchboard.IngestResult) error {
	if len(work) == 0 {
		return nil
	}
	idents, err := tx.prefetchIdentities(ctx, items, work)
	if err != nil {
		return err
	}
	var existing []string
	seenCust := map[string]bool{}
	for _, c := range idents {
		if !seenCust[c.id] {
			seenCust[c.id] = true
			existing = append(existing, c.id)
		}
	}
	sort.Strings(existing)
	if err := tx.lockCustomers(ctx, existing); err != nil {
		return err
	}
	p := &batchPlan{names: map[string]string{}, convs: map[string]*convPlan{}}
	if err := tx.prefetchConversations(ctx, existing, now.Add(-opts.ReopenWindow), p); err != nil {
		return err
	}
	for _, i := range work {
		results[i] = p.plan(&items[i], idents, now, opts)
	}
	return tx.writePlan(ctx, p, now)
}

func (tx *Tx) prefetchIdentities(ctx context.Context, items []switchboard.Inbound, work []int) (map[switchboard.IdentityRef]customerInfo, error) {
	byKind := map[switchboard.IdentityKind][]any{}
	seen := map[switchboard.IdentityRef]bool{}
	for _, i := range work {
		for _, id := range items[i].Identities {
			if !seen[id] {
				seen[id] = true
				byKind[id.Kind] = append(byKind[id.Kind], id.Value)
			}
		}
	}
	out := map[switchboard.IdentityRef]customerInfo{}
	for kind, values := range byKind {
		for _, chunk := range chunks(values, 500) {
			rows, err := tx.tx.QueryContext(ctx, tx.db.dialect.rebind(`SELECT i.value, i.customer_id, c.name, c.merged_into FROM identities i
				JOIN customers c ON c.id = i.customer_id WHERE i.kind = ? AND i.value IN (`+placeholders(len(chunk))+`)`), append([]any{kind}, chunk...)...)
			if err != nil {
				return nil, fmt.Errorf("look up identities: %w", err)
			}
			for rows.Next() {
				var value string
				var c customerInfo
				var merged sql.NullString
				if err := rows.Scan(&value, &c.id, &c.name, &merged); err != nil {
					rows.Close()
					return nil, err
				}
				if merged.Valid {
					rows.Close()
					return nil, fmt.Errorf("%w: identity of merged customer %s", errSlowPath, c.id)
				}
				out[switchboard.IdentityRef{Kind: kind, Value: value}] = c
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// lockCustomers locks existing customers' rows in id order on PostgreSQL,
// so concurrent batches serialise per customer without deadlocking, and
// checks none was merged away since the identities were read.
func (tx *Tx) lockCustomers(ctx context.Context, ids []string) error {
	if tx.db.dialect.singleWriter() || len(ids) == 0 {
		return nil
	}
	for _, chunk := range chunks(toAny(ids), 500) {
		rows, err := tx.tx.QueryContext(ctx, tx.db.dialect.rebind(`SELECT id FROM customers WHERE id IN (`+placeholders(len(chunk))+`) AND merged_into IS NULL ORDER BY id`+tx.db.dialect.lockRow()), chunk...)
		if err != nil {
			return fmt.Errorf("lock customers: %w", err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n != len(chunk) {
			return fmt.Errorf("%w: a customer was merged concurrently", errSlowPath)
		}
	}
	return nil
}

// prefetchConversations loads, per existing customer, the conversation a
// new message would join: the open one, else the last one resolved inside
// the reopen window.
func (tx *Tx) prefetchConversations(ctx context.Context, customers []string, windowStart time.Time, p *batchPlan) error {
	for _, chunk := range chunks(toAny(customers), 500) {
		args := append(append(make([]any, 0, len(chunk)+1), chunk...), micros(windowStart))
		rows, err := tx.tx.QueryContext(ctx, tx.db.dialect.rebind(`SELECT id, customer_id, status, last_channel, resolved_at, last_message_at, last_inbound_at FROM conversations
			WHERE customer_id IN (`+placeholders(len(chunk))+`) AND (status <> 'resolved' OR resolved_at > ?)`), args...)
		if err != nil {
			return fmt.Errorf("look up conversations: %w", err)
		}
		for rows.Next() {
			c := &convPlan{channels: map[switchboard.Channel]bool{}}
			var resolved, last, inbound sql.NullInt64
			if err := rows.Scan(&c.id, &c.customerID, &c.status, &c.lastChannel, &resolved, &last, &inbound); err != nil {
				rows.Close()
				return err
			}
			c.wasStatus, c.wasChannel, c.resolvedAt, c.lastMessage, c.lastInbound = c.status, c.lastChannel, fromMicros(resolved), fromMicros(last), fromMicros(inbound)
			prev, ok := p.convs[c.customerID]
			// Prefer the open conversation, else the latest resolution.
			if !ok || (prev.status == switchboard.StatusResolved && (c.status != switchboard.StatusResolved || c.resolvedAt.After(prev.resolvedAt))) {
				p.convs[c.customerID] = c
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (p *batchPlan) event(convID string, typ switchboard.EventType, data any, at time.Time) {
	b, _ := json.Marshal(data)
	p.events = append(p.events, []any{newID(at), convID, typ, nil, string(b), micros(at)})
}

// plan threads one message in memory, exactly as thread does in the
// database.
func (p *batchPlan) plan(in *switchboard.Inbound, idents map[switchboard.IdentityRef]customerInfo, now time.Time, opts IngestOptions) switchboard.IngestResult {
	// As in resolveCustomer, only the primary identity picks the customer.
	cust, found := idents[in.Identities[0]]
	if !found {
		cust = customerInfo{id: newID(now), name: in.SenderName}
		p.customers = append(p.customers, []any{cust.id, in.SenderName, micros(now)})
	}
	for _, id := range in.Identities {
		if _, ok := idents[id]; !ok {
			idents[id] = cust
			p.identities = append(p.identities, []any{id.Kind, id.Value, cust.id, verifiedFlag(id.Kind), micros(now)})
		}
	}
	if cust.name == "" && in.SenderName != "" {
		cust.name = in.SenderName
		p.names[cust.id] = in.SenderName
		for _, id := range in.Identities {
			idents[id] = cust
		}
	}
	for _, c := range in.Claims {
		p.claims = append(p.claims, []any{cust.id, c.Kind, c.Value, micros(now)})
	}
	created := receivedAt(in, now)
	r := switchboard.IngestResult{CustomerID: cust.id, MessageID: newID(now)}
	var cur *thread.Conversation
	c := p.convs[cust.id]
	if c != nil {
		cur = &thread.Conversation{ID: c.id, CustomerID: c.customerID, Status: c.status, ResolvedAt: c.resolvedAt, LastChannel: c.lastChannel}
	}
	d := thread.Decide(thread.Facts{Customer: cust.id, Current: cur, Now: now, ReopenWindow: opts.ReopenWindow})
	switch d.Action {
	case thread.Wake:
		p.event(c.id, switchboard.EventStatus, map[string]any{"from": c.status, "to": switchboard.StatusOpen}, now)
		c.status = switchboard.StatusOpen
	case thread.Reopen:
		c.status = switchboard.StatusOpen
		r.Reopened = true
		p.event(c.id, switchboard.EventReopened, reopenedData(in.Channel, d.ByReply), now)
		p.cycles = append(p.cycles, []any{newID(now), c.id, in.Channel, micros(created)})
		p.reopened = append(p.reopened, c.id)
	case thread.Create:
		c = &convPlan{id: newID(now), customerID: cust.id, isNew: true, status: switchboard.StatusOpen, lastChannel: in.Channel,
			channels: map[switchboard.Channel]bool{in.Channel: true}}
		p.convs[cust.id] = c
		r.NewConversation = true
		p.event(c.id, switchboard.EventCreated, map[string]any{"channel": in.Channel, "customer_id": cust.id}, now)
		p.cycles = append(p.cycles, []any{newID(now), c.id, in.Channel, micros(created)})
	}
	if !c.touched {
		c.touched = true
		p.convOrder = append(p.convOrder, c)
	}
	// Rollups hold each conversation's customer channels in order: they
	// change with a message on another channel than the last one (which
	// may have been a reply's: the last message was not the customer's),
	// or one that comes before the last.
	if !c.isNew && (c.lastChannel != in.Channel || c.lastMessage.After(c.lastInbound) || created.Before(c.lastInbound)) {
		p.mixed = append(p.mixed, c.id)
	}
	if c.lastChannel != in.Channel {
		r.SwitchedFrom = c.lastChannel
		p.event(c.id, switchboard.EventChannelSwitch, map[string]any{"from": c.lastChannel, "to": in.Channel}, created)
		c.lastChannel = in.Channel
		c.channels[in.Channel] = true
	}
	if created.After(c.lastMessage) {
		c.lastMessage = created
	}
	if created.After(c.lastInbound) {
		c.lastInbound = created
	}
	r.ConversationID = c.id

	m := inboundMessage(in, r.MessageID, c.id, created, now)
	r.Message = &m
	p.messages = append(p.messages, inboundMessageRow(&m, in.Subject))
	for _, a := range m.Attachments {
		p.attachments = append(p.attachments, attachmentRow(m.ID, a))
	}
	if len(in.Original) > 0 {
		p.originals = append(p.originals, []any{r.MessageID, in.Original})
	}
	return r
}

func (tx *Tx) writePlan(ctx context.Context, p *batchPlan, now time.Time) error {
	// Concurrent batches insert unique keys in one order, so that where
	// they collide one waits for the other instead of deadlocking.
	sortRows(p.identities, 0, 1)
	sortRows(p.messages, 3, 4)
	if err := tx.insertRows(ctx, "customers (id, name, created_at)", p.customers, ""); err != nil {
		return err
	}
	n, err := tx.insertCounted(ctx, "identities (kind, value, customer_id, verified, created_at)", p.identities, " ON CONFLICT (kind, value) DO NOTHING RETURNING kind")
	if err != nil {
		return err
	}
	if n != len(p.identities) {
		// Another batch created one of these customers meanwhile; we waited
		// for it to commit, so a fresh plan will find it.
		return fmt.Errorf("%w: %w", errReplan, errIdentityTaken)
	}
	for _, c := range p.claims {
		if err := tx.insertClaim(ctx, c); err != nil {
			return err
		}
	}
	for id, name := range p.names {
		if err := tx.exec(ctx, `UPDATE customers SET name = ? WHERE id = ?`, name, id); err != nil {
			return fmt.Errorf("name customer: %w", err)
		}
	}
	var newConvs, updates, touches, channels [][]any
	for _, c := range p.convOrder {
		switch {
		case c.isNew:
			newConvs = append(newConvs, []any{c.id, c.customerID, c.status, c.lastChannel, micros(c.lastMessage), micros(c.lastInbound), micros(now)})
		case c.wasStatus == switchboard.StatusOpen && c.wasChannel == c.lastChannel:
			// The common case, a customer writing again: only the times
			// change, and only the indexes on them are written.
			touches = append(touches, []any{c.id, micros(c.lastMessage), micros(c.lastInbound)})
		default:
			updates = append(updates, []any{c.id, c.status, string(c.lastChannel), micros(c.lastMessage), micros(c.lastInbound)})
		}
		for ch := range c.channels {
			channels = append(channels, []any{c.id, ch})
		}
	}
	if err := tx.insertRows(ctx, "conversations (id, customer_id, status, last_channel, last_message_at, last_inbound_at, created_at)", newConvs, ""); err != nil {
		return err
	}
	if err := tx.updateConversations(ctx, updates, false); err != nil {
		return err
	}
	if err := tx.updateConversations(ctx, touches, true); err != nil {
		return err
	}
	if err := tx.insertRows(ctx, "conversation_channels (conversation_id, channel)", channels, " ON CONFLICT DO NOTHING"); err != nil {
		return err
	}
	if err := tx.insertRows(ctx, "cycles (id, conversation_id, channel, started_at)", p.cycles, ""); err != nil {
		return err
	}
	started := make([]int64, len(p.cycles))
	for i, c := range p.cycles {
		started[i] = c[3].(int64)
	}
	if err := tx.bumpRollups(ctx, now, cycleKinds, started...); err != nil {
		return err
	}
	if err := tx.conversationsChanged(ctx, now, migrationKinds, p.mixed...); err != nil {
		return err
	}
	if err := tx.resumeAssignments(ctx, p.reopened, now); err != nil {
		return err
	}
	n, err = tx.insertCounted(ctx, "messages "+inboundMessageColumns,
		p.messages, " ON CONFLICT (channel, provider_id) DO NOTHING RETURNING id")
	if err != nil {
		return err
	}
	if n != len(p.messages) {
		return fmt.Errorf("%w: a message was stored concurrently", errReplan)
	}
	if err := tx.insertRows(ctx, "attachments "+attachmentColumns, p.attachments, ""); err != nil {
		return err
	}
	if err := tx.insertRows(ctx, "message_originals (message_id, body)", p.originals, ""); err != nil {
		return err
	}
	return tx.insertRows(ctx, "events (id, conversation_id, type, agent_id, data, created_at)", p.events, "")
}

// updateConversations applies the planned changes to conversations that
// existed before the batch, in one statement per chunk. Every such
// conversation is open once a message arrives. Rows are id, status,
// channel, last message and last inbound time; with onlyTimes (open
// conversations whose channel stays) id and the two times, and the
// statement sets nothing else, so that SQLite writes only the indexes on
// the times (TestTouchWritesFewIndexes).
func (tx *Tx) updateConversations(ctx context.Context, rows [][]any, onlyTimes bool) error {
	row := `SELECT CAST(? AS TEXT) AS id, CAST(? AS TEXT) AS status, CAST(? AS TEXT) AS ch, CAST(? AS BIGINT) AS lm, CAST(? AS BIGINT) AS li`
	set := `status = v.status, resolved_at = NULL, last_channel = v.ch, `
	if onlyTimes {
		row, set = `SELECT CAST(? AS TEXT) AS id, CAST(? AS BIGINT) AS lm, CAST(? AS BIGINT) AS li`, ""
	}
	for _, chunk := range fixedChunks(rows, 256) {
		sel := make([]string, len(chunk))
		var args []any
		for i, r := range chunk {
			sel[i] = row
			args = append(args, r...)
		}
		if err := tx.exec(ctx, conversationsUpdate(set, strings.Join(sel, " UNION ALL ")), args...); err != nil {
			return fmt.Errorf("update conversations: %w", err)
		}
	}
	return nil
}

// conversationsUpdate is the statement updateConversations runs: set,
// then the times, from the rows of values.
func conversationsUpdate(set, values string) string {
	return `UPDATE conversations SET ` + set + `
			last_message_at = CASE WHEN conversations.last_message_at > v.lm THEN conversations.last_message_at ELSE v.lm END,
			last_inbound_at = CASE WHEN conversations.last_inbound_at > v.li THEN conversations.last_inbound_at ELSE v.li END
			FROM (` + values + `) AS v WHERE conversations.id = v.id`
}

// maxParams keeps multi-row statements under both databases' limits on
// bound parameters.
const maxParams = 30000

func (tx *Tx) insertRows(ctx context.Context, target string, rows [][]any, suffix string) error {
	_, err := tx.insert(ctx, target, rows, suffix, false)
	return err
}

func (tx *Tx) insertCounted(ctx context.Context, target string, rows [][]any, suffix string) (int, error) {
	return tx.insert(ctx, target, rows, suffix, true)
}

func (tx *Tx) insert(ctx context.Context, target string, rows [][]any, suffix string, count bool) (int, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	width := len(rows[0])
	tuple := "(" + placeholders(width) + ")"
	total := 0
	for _, chunk := range fixedChunks(rows, min(256, maxParams/width)) {
		args := make([]any, 0, len(chunk)*width)
		for _, r := range chunk {
			args = append(args, r...)
		}
		q := tx.db.dialect.rebind("INSERT INTO " + target + " VALUES " + strings.Repeat(tuple+",", len(chunk)-1) + tuple + suffix)
		if !count {
			if err := tx.exec(ctx, q, args...); err != nil {
				return 0, fmt.Errorf("insert into %s: %w", strings.Fields(target)[0], err)
			}
			continue
		}
		var rs *sql.Rows
		var err error
		if st := tx.stmt(ctx, q); st != nil {
			rs, err = st.QueryContext(ctx, args...)
		} else {
			rs, err = tx.tx.QueryContext(ctx, q, args...)
		}
		if err != nil {
			return 0, fmt.Errorf("insert into %s: %w", strings.Fields(target)[0], err)
		}
		for rs.Next() {
			total++
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return 0, fmt.Errorf("insert into %s: %w", strings.Fields(target)[0], err)
		}
	}
	return total, nil
}

// sortRows orders rows by the string forms of two of their columns.
func sortRows(rows [][]any, a, b int) {
	sort.Slice(rows, func(i, j int) bool {
		x, y := fmt.Sprint(rows[i][a]), fmt.Sprint(rows[j][a])
		if x != y {
			return x < y
		}
		return fmt.Sprint(rows[i][b]) < fmt.Sprint(rows[j][b])
	})
}

// fixedChunks cuts s into chunks of a few fixed sizes (powers of 4 up to
// max): a multi-row statement of each size is then one statement, parsed
// and prepared once, instead of one per batch size seen.
func fixedChunks[T any](s []T, max int) [][]T {
	size := 1
	for size*4 <= max {
		size *= 4
	}
	var out [][]T
	for len(s) > 0 {
		for size > len(s) {
			size /= 4
		}
		out = append(out, s[:size])
		s = s[size:]
	}
	return out
}

func chunks[T any](s []T, n int) [][]T {
	var out [][]T
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	if len(s) > 0 {
		out = append(out, s)
	}
	return out
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
