package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// The raw facts analytics are computed from (docs/metrics.md): response
// cycles, inbound channels per conversation, online sessions and
// assignments. The inbox computes the measures; percentiles stay exact
// because each row is one duration.

// CycleFact is one response cycle, as a measure reads it: times in
// microseconds since the Unix epoch, 0 for a first response or resolution
// not yet there.
type CycleFact struct {
	Channel            switchboard.Channel
	Topic              string // resolved cycles only
	Responder          string // the agent of the first response, when asked for
	Started, Responded int64
	Resolved           int64
}

// EachCycleStarted calls fn with each cycle that started in [from, to)
// (its channel, start and first response). Rows stream from a covering
// index; fn must not keep c.
func (db *DB) EachCycleStarted(ctx context.Context, from, to time.Time, responder bool, fn func(c *CycleFact)) error {
	cols := `channel, started_at, first_response_at`
	if responder {
		cols += `, COALESCE(responder_id, '')`
	}
	return db.eachCycle(ctx, false, responder, fn, `SELECT `+cols+` FROM cycles WHERE started_at >= ? AND started_at < ?`, micros(from), micros(to))
}

// EachCycleResolved calls fn with each cycle resolved in [from, to) (its
// channel, start, resolution and topic).
func (db *DB) EachCycleResolved(ctx context.Context, from, to time.Time, responder bool, fn func(c *CycleFact)) error {
	cols := `channel, started_at, resolved_at, topic`
	if responder {
		cols += `, COALESCE(responder_id, '')`
	}
	return db.eachCycle(ctx, true, responder, fn, `SELECT `+cols+` FROM cycles WHERE resolved_at >= ? AND resolved_at < ?`, micros(from), micros(to))
}

// eachCycle scans cycles; with responder (which the covering indexes do
// not hold, so it costs a read of each row) the last column is the
// responder.
func (db *DB) eachCycle(ctx context.Context, resolved, responder bool, fn func(c *CycleFact), q string, args ...any) error {
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return wrap("cycles", err)
	}
	defer rows.Close()
	var c CycleFact
	var ch sql.RawBytes
	var end sql.NullInt64
	var topic string
	dest := []any{&ch, &c.Started, &end}
	if resolved {
		dest = append(dest, &topic)
	}
	if responder {
		dest = append(dest, &c.Responder)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return wrap("scan cycle", err)
		}
		c.Channel = channelOf(ch)
		c.Responded, c.Resolved, c.Topic = 0, 0, topic
		if resolved {
			c.Resolved = end.Int64
		} else {
			c.Responded = end.Int64
		}
		fn(&c)
	}
	return wrap("cycles", rows.Err())
}

// channelOf returns the channel named b without allocating for the known
// ones (a long scan reads one per row).
func channelOf(b []byte) switchboard.Channel {
	for _, ch := range switchboard.Channels {
		if string(ch) == string(b) {
			return ch
		}
	}
	return switchboard.Channel(b)
}

// MigrationFact is a cycle as channel migration reads it: its start, the
// start of its conversation's cycle before it (0 for none), and the
// channels of the conversation's customer messages in the order they
// came, one entry per change of channel.
type MigrationFact struct {
	Started, Previous int64
	Channels          []switchboard.Channel
}

// EachMigrationFact calls fn with each cycle that started in [from, to).
func (db *DB) EachMigrationFact(ctx context.Context, from, to time.Time, fn func(f *MigrationFact)) error {
	rows, err := db.query(ctx, `SELECT c.conversation_id, c.started_at,
		(SELECT MAX(p.started_at) FROM cycles p WHERE p.conversation_id = c.conversation_id AND p.started_at < c.started_at)
		FROM cycles c WHERE c.started_at >= ? AND c.started_at < ?`, micros(from), micros(to))
	if err != nil {
		return wrap("migration cycles", err)
	}
	type cycle struct {
		conv            string
		started, before int64
	}
	var cycles []cycle
	for rows.Next() {
		var c cycle
		var before sql.NullInt64
		if err := rows.Scan(&c.conv, &c.started, &before); err != nil {
			rows.Close()
			return wrap("scan migration cycle", err)
		}
		c.before = before.Int64
		cycles = append(cycles, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return wrap("migration cycles", err)
	}
	seqs, err := db.inboundChannels(ctx, from, to)
	if err != nil {
		return err
	}
	for _, c := range cycles {
		fn(&MigrationFact{Started: c.started, Previous: c.before, Channels: seqs[c.conv]})
	}
	return nil
}

// inboundChannels returns, for each conversation with a cycle started in
// [from, to), the channels of its customer messages in the order they
// came, one entry per change of channel.
func (db *DB) inboundChannels(ctx context.Context, from, to time.Time) (map[string][]switchboard.Channel, error) {
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
		var ch []byte
		if err := rows.Scan(&conv, &ch); err != nil {
			return nil, wrap("scan inbound channel", err)
		}
		if seq := out[conv]; len(seq) == 0 || string(seq[len(seq)-1]) != string(ch) {
			out[conv] = append(seq, channelOf(ch))
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
	return db.intervals(ctx, `SELECT agent_id, started_at, ended_at FROM agent_sessions WHERE (ended_at > ? OR ended_at IS NULL) AND started_at < ?`, micros(from), micros(to))
}

// AssignmentIntervals returns the assignments that overlap [from, to):
// found by their end (an index on ended_at), as a range is usually recent.
func (db *DB) AssignmentIntervals(ctx context.Context, from, to time.Time) ([]Interval, error) {
	return db.intervals(ctx, `SELECT agent_id, started_at, ended_at FROM assignments WHERE (ended_at > ? OR ended_at IS NULL) AND started_at < ?`, micros(from), micros(to))
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

// E-mail activity kinds EachEmailActivity reports.
const (
	EmailSent    = "sent"    // a reply, automatic mail or survey queued on e-mail
	EmailBounced = "bounced" // a permanent bounce of one of ours
	EmailOptOut  = "opt_out" // an address opted out of e-mail
)

// EachEmailActivity calls fn with the kind and time (microseconds) of each
// outbound e-mail, permanent bounce and e-mail opt-out in [from, to), read
// from the event log's index by type and time and from the opt-outs.
func (db *DB) EachEmailActivity(ctx context.Context, from, to time.Time, fn func(kind string, at int64)) error {
	rows, err := db.query(ctx, `SELECT type, data, created_at FROM events WHERE type IN ('message', 'bounce') AND created_at >= ? AND created_at < ?`, micros(from), micros(to))
	if err != nil {
		return wrap("email activity", err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ string
		var data []byte
		var at int64
		if err := rows.Scan(&typ, &data, &at); err != nil {
			return wrap("scan email activity", err)
		}
		var d struct {
			Direction switchboard.Direction `json:"direction"`
			Channel   switchboard.Channel   `json:"channel"`
			Permanent bool                  `json:"permanent"`
		}
		if json.Unmarshal(data, &d) != nil {
			continue
		}
		switch {
		case typ == "bounce" && d.Permanent:
			fn(EmailBounced, at)
		case typ == "message" && d.Direction == switchboard.DirectionOut && (d.Channel == switchboard.ChannelEmail || d.Channel == switchboard.ChannelWebform):
			fn(EmailSent, at)
		}
	}
	if err := rows.Err(); err != nil {
		return wrap("email activity", err)
	}
	optouts, err := db.query(ctx, `SELECT created_at FROM opt_outs WHERE channel = 'email' AND created_at >= ? AND created_at < ?`, micros(from), micros(to))
	if err != nil {
		return wrap("email opt-outs", err)
	}
	defer optouts.Close()
	for optouts.Next() {
		var at int64
		if err := optouts.Scan(&at); err != nil {
			return wrap("scan email opt-out", err)
		}
		fn(EmailOptOut, at)
	}
	return wrap("email opt-outs", optouts.Err())
}
