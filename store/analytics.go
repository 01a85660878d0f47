package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// The raw facts analytics are computed from (docs/metrics.md): response
// cycles, inbound channels per conversation, online sessions and
// assignments. The inbox computes the measures; percentiles stay exact
// because each row is one duration.

// Cycle is one response cycle.
type Cycle struct {
	ConversationID string
	Channel        switchboard.Channel
	Topic          string
	Started        time.Time
	Responded      time.Time // zero: no agent reply yet
	Resolved       time.Time // zero: not resolved
}

const cycleColumns = `conversation_id, channel, topic, started_at, first_response_at, resolved_at FROM cycles`

// CyclesStarted returns the cycles that started in [from, to).
func (db *DB) CyclesStarted(ctx context.Context, from, to time.Time) ([]Cycle, error) {
	return db.cycles(ctx, `SELECT `+cycleColumns+` WHERE started_at >= ? AND started_at < ?`, micros(from), micros(to))
}

// CyclesResolved returns the cycles resolved in [from, to).
func (db *DB) CyclesResolved(ctx context.Context, from, to time.Time) ([]Cycle, error) {
	return db.cycles(ctx, `SELECT `+cycleColumns+` WHERE resolved_at >= ? AND resolved_at < ?`, micros(from), micros(to))
}

func (db *DB) cycles(ctx context.Context, q string, args ...any) ([]Cycle, error) {
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, wrap("cycles", err)
	}
	defer rows.Close()
	var out []Cycle
	for rows.Next() {
		var c Cycle
		var started int64
		var responded, resolved sql.NullInt64
		if err := rows.Scan(&c.ConversationID, &c.Channel, &c.Topic, &started, &responded, &resolved); err != nil {
			return nil, wrap("scan cycle", err)
		}
		c.Started = fromMicros(sql.NullInt64{Int64: started, Valid: true})
		c.Responded, c.Resolved = fromMicros(responded), fromMicros(resolved)
		out = append(out, c)
	}
	return out, wrap("cycles", rows.Err())
}

// InboundChannels returns, for each conversation with a cycle started in
// [from, to), the channels of its customer messages in the order they
// came, one entry per change of channel.
func (db *DB) InboundChannels(ctx context.Context, from, to time.Time) (map[string][]switchboard.Channel, error) {
	rows, err := db.query(ctx, `SELECT m.conversation_id, m.channel FROM messages m
		JOIN (SELECT DISTINCT conversation_id FROM cycles WHERE started_at >= ? AND started_at < ?) x ON x.conversation_id = m.conversation_id
		WHERE m.direction = 'in' ORDER BY m.conversation_id, m.created_at, m.id`, micros(from), micros(to))
	if err != nil {
		return nil, wrap("inbound channels", err)
	}
	defer rows.Close()
	out := map[string][]switchboard.Channel{}
	for rows.Next() {
		var conv string
		var ch switchboard.Channel
		if err := rows.Scan(&conv, &ch); err != nil {
			return nil, wrap("scan inbound channel", err)
		}
		if seq := out[conv]; len(seq) == 0 || seq[len(seq)-1] != ch {
			out[conv] = append(seq, ch)
		}
	}
	return out, wrap("inbound channels", rows.Err())
}

// Interval is an agent's span of time: online, or having a conversation.
// End is zero while it lasts.
type Interval struct {
	AgentID    string
	Start, End time.Time
}

// OnlineIntervals returns the agents' online sessions that overlap
// [from, to).
func (db *DB) OnlineIntervals(ctx context.Context, from, to time.Time) ([]Interval, error) {
	return db.intervals(ctx, `SELECT agent_id, started_at, ended_at FROM agent_sessions WHERE started_at < ? AND (ended_at IS NULL OR ended_at > ?)`, micros(to), micros(from))
}

// AssignmentIntervals returns the assignments that overlap [from, to).
func (db *DB) AssignmentIntervals(ctx context.Context, from, to time.Time) ([]Interval, error) {
	return db.intervals(ctx, `SELECT agent_id, started_at, ended_at FROM assignments WHERE started_at < ? AND (ended_at IS NULL OR ended_at > ?)`, micros(to), micros(from))
}

func (db *DB) intervals(ctx context.Context, q string, args ...any) ([]Interval, error) {
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, wrap("intervals", err)
	}
	defer rows.Close()
	var out []Interval
	for rows.Next() {
		var iv Interval
		var start int64
		var end sql.NullInt64
		if err := rows.Scan(&iv.AgentID, &start, &end); err != nil {
			return nil, wrap("scan interval", err)
		}
		iv.Start, iv.End = fromMicros(sql.NullInt64{Int64: start, Valid: true}), fromMicros(end)
		out = append(out, iv)
	}
	return out, wrap("intervals", rows.Err())
}
